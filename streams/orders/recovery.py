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


def resolved_by_recovery(alert: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The RESOLVED of a RAISED alert on the topic whose episode the durable state records
    as closed (the crash fell between closing it and sending this)."""
    resolved = dict(alert)
    resolved.update(
        state="RESOLVED",
        emitted_at=now,
        resolved_at=now,
        duration_ms=int((now - alert["episode_started_at"]).total_seconds() * 1000),
        details={**alert.get("details", {}), "resolved_by": "recovery"},
    )
    return resolved


class Reconciler:
    """``reconcile`` one twin at a time, so a restart never holds every decoded row at once.

    ``visit`` each durable twin once (in any order), then ``finish``; the result is the
    same as ``reconcile`` over the whole table.
    """

    def __init__(self, on_topic: Iterable[Mapping[str, Any]], now: datetime) -> None:
        self.now = now
        self.out = Reconciliation()
        self._raised_on_topic: dict[str, Mapping[str, Any]] = {}
        self._open_ids: set[str] = set()
        self._closed_ids: set[str] = set()
        for alert in on_topic:
            if alert["subject_type"] != "order":
                continue
            self.out.emitted.add((alert["alert_id"], alert["state"]))
            if alert["state"] == "RAISED":
                self._raised_on_topic[alert["alert_id"]] = alert

    def needs_whole(self, twin: Twin) -> bool:
        """Whether ``visit`` may act on this twin (re-emit, repair, or rebuild an open alert
        from it), so it needs the twin decoded whole. Otherwise it only collects ids, and a
        plain decode (timestamps as epoch ms) is enough."""
        emitted = self.out.emitted
        return any(ep["raised"] or (ep["alert_id"], "RAISED") in emitted for ep in twin["episodes"])

    def visit(self, key: bytes, twin: Twin) -> Twin:
        """Compare one twin's episodes with the topic; the twin, repaired if it had to be."""
        out = self.out
        raised = self._raised_on_topic  # only their ids matter to ``finish``: keep the sets small
        self._closed_ids.update(a for a in twin.get("closed", []) if a in raised)
        if not twin["episodes"]:
            return twin
        changed = False
        episodes = []
        for ep in twin["episodes"]:
            if ep["alert_id"] in raised:
                self._open_ids.add(ep["alert_id"])
            sent = (ep["alert_id"], "RAISED") in out.emitted
            if ep["raised"] and not sent and ep["rule"] in RULES_BY_ID:
                alert = make_alert(twin, RULES_BY_ID[ep["rule"]], ep, "RAISED", ep["raised_at"] or self.now)
                out.to_send.append(alert)
                out.emitted.add((ep["alert_id"], "RAISED"))
            elif not ep["raised"] and sent:
                ep = {**ep, "raised": True, "raised_at": self._raised_on_topic[ep["alert_id"]]["emitted_at"]}
                changed = True
            episodes.append(ep)
        if not changed:
            return twin
        repaired = {**twin, "episodes": episodes}
        out.to_store[key] = repaired
        return repaired

    def finish(self) -> Reconciliation:
        """Resolve RAISED alerts whose episode every visited row records as closed."""
        out, now = self.out, self.now
        for alert_id, alert in self._raised_on_topic.items():
            if alert_id in self._open_ids or alert_id not in self._closed_ids or (alert_id, "RESOLVED") in out.emitted:
                continue
            out.to_send.append(resolved_by_recovery(alert, now))
            out.emitted.add((alert_id, "RESOLVED"))
        return out


def reconcile(
    twins: Iterable[tuple[bytes, Twin]], on_topic: Iterable[Mapping[str, Any]], now: datetime
) -> Reconciliation:
    """Compare durable episodes with the order alerts already on the topic."""
    rec = Reconciler(on_topic, now)
    for key, twin in twins:
        rec.visit(key, twin)
    return rec.finish()
