"""Exactly-once alerts in effect, on an at-least-once pipeline.

A worker can die between sending an alert and persisting the twin row that says it was
sent (or the other way round): Kafka gives no atomicity across the alerts topic and the
table changelog without transactions, which cost too much throughput here. So on every
partition assignment the worker reads what the alerts topic already holds for the orders
it now owns and reconciles the durable episodes with it:

* an episode marked raised whose RAISED never reached the topic is raised now;
* an episode not marked raised whose RAISED is on the topic is marked raised (no repeat);
* a RAISED on the topic with no RESOLVED, whose episode the row records as closed, is
  resolved now. An alert id the row does not know at all means the row is the one behind
  (the crash lost its write, not the alert's): the events after the committed offset are
  read again and re-derive the episode, so nothing is resolved for it.

The emitted (alert id, state) pairs are then remembered so a replayed event cannot emit
the same pair twice. Pure: the Kafka read happens in the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.orders.divergence import make_alert
from streams.orders.rules import RULES_BY_ID
from streams.orders.twin import Twin


@dataclass
class Reconciliation:
    to_send: list[dict[str, Any]] = field(default_factory=list)  # alerts to (re-)emit
    to_store: dict[bytes, Twin] = field(default_factory=dict)  # twins whose episodes were repaired
    emitted: set[tuple[str, str]] = field(default_factory=set)  # (alert id, state) now on the topic


def reconcile(
    twins: Iterable[tuple[bytes, Twin]], on_topic: Iterable[Mapping[str, Any]], now: datetime
) -> Reconciliation:
    """Compare durable episodes with the order alerts already on the topic."""
    out = Reconciliation()
    raised_on_topic: dict[str, Mapping[str, Any]] = {}
    for alert in on_topic:
        if alert["subject_type"] != "order":
            continue
        out.emitted.add((alert["alert_id"], alert["state"]))
        if alert["state"] == "RAISED":
            raised_on_topic[alert["alert_id"]] = alert
    open_ids: set[str] = set()
    closed_ids: set[str] = set()
    for key, twin in twins:
        closed_ids.update(twin.get("closed", []))
        changed = False
        episodes = []
        for ep in twin["episodes"]:
            open_ids.add(ep["alert_id"])
            sent = (ep["alert_id"], "RAISED") in out.emitted
            if ep["raised"] and not sent and ep["rule"] in RULES_BY_ID:
                alert = make_alert(twin, RULES_BY_ID[ep["rule"]], ep, "RAISED", ep["raised_at"] or now)
                out.to_send.append(alert)
                out.emitted.add((ep["alert_id"], "RAISED"))
            elif not ep["raised"] and sent:
                ep = {**ep, "raised": True, "raised_at": raised_on_topic[ep["alert_id"]]["emitted_at"]}
                changed = True
            episodes.append(ep)
        if changed:
            out.to_store[key] = {**twin, "episodes": episodes}
    for alert_id, alert in raised_on_topic.items():
        if alert_id in open_ids or alert_id not in closed_ids or (alert_id, "RESOLVED") in out.emitted:
            continue
        resolved = dict(alert)
        resolved.update(
            state="RESOLVED",
            emitted_at=now,
            resolved_at=now,
            duration_ms=int((now - alert["episode_started_at"]).total_seconds() * 1000),
            details={**alert.get("details", {}), "resolved_by": "recovery"},
        )
        out.to_send.append(resolved)
        out.emitted.add((alert_id, "RESOLVED"))
    return out
