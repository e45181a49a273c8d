"""SKU alerts exactly once in effect, on an at-least-once pipeline (as ``streams.orders.recovery``).

A worker can die between sending a SKU alert and persisting the stock row that says so.
On every assignment the inventory agent reads the SKU alerts already on the topic for the
partitions it now owns and reconciles the durable episodes with them:

* an episode marked raised whose RAISED never reached the topic is raised now;
* an episode not marked raised whose RAISED is on the topic is marked raised;
* a RAISED on the topic, not resolved, that no row holds any more is adopted back into its
  SKU's row (same id, start and deadline): the row was persisted before the episode opened,
  and the facts read again after the restart will bring the condition back. The next fact
  resolves it if they do not. It is resolved at once only if no row holds the SKU at all.

Pure: the Kafka read happens in the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.inventory.rules import STOCK_DIVERGENCE, Config, make_alert
from streams.inventory.stock import State, levels
from streams.orders.recovery import resolved_by_recovery


@dataclass
class Reconciliation:
    to_send: list[dict[str, Any]] = field(default_factory=list)
    to_store: dict[bytes, State] = field(default_factory=dict)
    emitted: set[tuple[str, str]] = field(default_factory=set)


def episode_key(alert: Mapping[str, Any]) -> str:
    if alert["rule"] == STOCK_DIVERGENCE:
        return f"{STOCK_DIVERGENCE}|{alert['details'].get('warehouse', '')}"
    return str(alert["rule"])


def reconcile(
    rows: Iterable[tuple[bytes, State]], on_topic: Iterable[Mapping[str, Any]], now: datetime, config: Config
) -> Reconciliation:
    out = Reconciliation()
    raised_on_topic: dict[str, Mapping[str, Any]] = {}
    for alert in on_topic:
        if alert["subject_type"] != "sku":
            continue
        out.emitted.add((alert["alert_id"], alert["state"]))
        if alert["state"] == "RAISED":
            raised_on_topic[alert["alert_id"]] = alert
    open_ids: set[str] = set()
    by_sku: dict[str, tuple[bytes, State]] = {}
    for key, row in rows:
        by_sku[row["sku"]] = (key, row)
        episodes = dict(row["episodes"])
        changed = False
        for ep_key, ep in row["episodes"].items():
            open_ids.add(ep["alert_id"])
            sent = (ep["alert_id"], "RAISED") in out.emitted
            if ep["raised"] and not sent:
                current = levels(row)
                out.to_send.append(make_alert(row, ep_key, ep, "RAISED", ep["raised_at"] or now, current))
                out.emitted.add((ep["alert_id"], "RAISED"))
            elif not ep["raised"] and sent:
                episodes[ep_key] = {**ep, "raised": True, "raised_at": raised_on_topic[ep["alert_id"]]["emitted_at"]}
                changed = True
        if changed:
            out.to_store[key] = {**row, "episodes": episodes}
    for aid, alert in raised_on_topic.items():
        if aid in open_ids or (aid, "RESOLVED") in out.emitted:
            continue
        held = by_sku.get(alert["subject"])
        ep_key = episode_key(alert)
        if held is not None:
            key, row = held
            row = out.to_store.get(key, row)
            current = row["episodes"].get(ep_key)
            if current is None or not current["raised"]:
                adopted = {
                    "rule": alert["rule"],
                    "subsystem": alert["subsystem"] or "",
                    "started_at": alert["episode_started_at"],
                    "deadline": alert["deadline"],
                    "alert_id": aid,
                    "raised": True,
                    "raised_at": alert["emitted_at"],
                }
                out.to_store[key] = {**row, "episodes": {**row["episodes"], ep_key: adopted}}
                open_ids.add(aid)
                continue
        out.to_send.append(resolved_by_recovery(alert, now))
        out.emitted.add((aid, "RESOLVED"))
    return out
