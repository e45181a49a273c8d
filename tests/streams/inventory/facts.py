"""Builders for inventory facts and an independent from-scratch recomputation (the oracle)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

SKU = "TSHIRT-WHT-M"
T0 = datetime(2026, 11, 11, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def snapshot(wh: str, qty: int, minutes: float, *, sku: str = SKU) -> dict[str, Any]:
    return {
        "event_id": f"snap|{sku}|{wh}|{minutes}|{qty}",
        "sku": sku,
        "warehouse": wh,
        "source": "wms",
        "kind": "SNAPSHOT",
        "reason": "SNAPSHOT",
        "quantity": qty,
        "raw_type": "inventory.query",
        "movement_id": None,
        "order_id": None,
        "event_time": at(minutes),
        "ingest_time": at(minutes),
    }


def movement(
    wh: str,
    qty: int,
    minutes: float,
    *,
    eid: str,
    reason: str | None = None,
    order_id: str | None = None,
    sku: str = SKU,
) -> dict[str, Any]:
    return {
        **snapshot(wh, qty, minutes, sku=sku),
        "event_id": eid,
        "kind": "MOVEMENT",
        "reason": reason or ("OUTBOUND" if order_id else "RECEIPT" if qty > 0 else "ADJUSTMENT"),
        "raw_type": "JYCK" if order_id else "QTRK",
        "movement_id": eid,
        "order_id": order_id,
    }


def change(
    order_id: str,
    state: str,
    minutes: float,
    *,
    version: int,
    qty: int = 1,
    line: int = 0,
    warehouse: str = "HZ01",
    channel: str | None = None,
    paid: float | None = 0.0,
    shipped: float | None = None,
    sku: str = SKU,
    lines: int = 1,
) -> dict[str, Any]:
    return {
        "sku": sku,
        "order_id": order_id,
        "line": line,
        "channel": channel or order_id.split(":", 1)[0],
        "warehouse": warehouse,
        "qty": qty,
        "state": state,
        "event_time": at(minutes),
        "version": version,
        "paid_at": at(paid) if paid is not None else None,
        "shipped_at": at(shipped) if shipped is not None else None,
        "order_lines": lines,
        "order_state": "",
    }


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def recompute(facts: Iterable[dict[str, Any]]) -> dict[str, tuple[int, int, int, dict[str, int]]]:
    """Warehouse -> (on hand, reserved, available, open by channel), from the set of distinct
    facts, written independently of ``streams.inventory.stock`` from the definitions."""
    lines: dict[tuple[str, int], dict[str, Any]] = {}
    snaps: dict[str, dict[str, Any]] = {}
    moves: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    shipped: dict[str, dict[str, int]] = defaultdict(dict)
    for fact in facts:
        if "kind" not in fact:
            key = (fact["order_id"], fact["line"])
            mine = (_ms(fact["event_time"]), fact["version"])
            if key not in lines or mine > (_ms(lines[key]["event_time"]), lines[key]["version"]):
                lines[key] = fact
        elif fact["kind"] == "SNAPSHOT":
            wh = fact["warehouse"]
            mine = (_ms(fact["event_time"]), fact["event_id"])
            if wh not in snaps or mine > (_ms(snaps[wh]["event_time"]), snaps[wh]["event_id"]):
                snaps[wh] = fact
        else:
            moves[fact["warehouse"]][fact["event_id"]] = fact
            if fact["reason"] == "OUTBOUND" and fact["order_id"] and fact["quantity"] < 0:
                shipped[fact["order_id"]][fact["event_id"]] = -fact["quantity"]
    have: dict[str, int] = {}
    for wh in set(snaps) | set(moves):
        snap = snaps.get(wh)
        since = _ms(snap["event_time"]) if snap else None
        after = sum(m["quantity"] for m in moves[wh].values() if since is None or _ms(m["event_time"]) > since)
        have[wh] = (snap["quantity"] if snap else 0) + after
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines.values():
        orders[line["order_id"]].append(line)
    for order, order_lines in orders.items():
        # outbound units the WMS reports beyond the lines the twin already shows shipped
        ahead = sum(shipped[order].values()) - sum(ln["qty"] for ln in order_lines if ln["state"] == "RELEASED_SHIPPED")
        ahead = max(ahead, 0)
        for ln in sorted((ln for ln in order_lines if ln["state"] == "RESERVED"), key=lambda ln: ln["line"]):
            used = min(ln["qty"], ahead)
            ahead -= used
            held[ln["warehouse"]][ln["channel"]] += ln["qty"] - used
    out: dict[str, tuple[int, int, int, dict[str, int]]] = {}
    for wh in set(have) | {wh for wh, by in held.items() if any(by.values())}:
        channels = {ch: n for ch, n in held[wh].items() if n}
        reserved = sum(channels.values())
        out[wh] = (have.get(wh, 0), reserved, have.get(wh, 0) - reserved, channels)
    return out
