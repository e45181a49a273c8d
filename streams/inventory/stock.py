"""Pure stock arithmetic for one SKU across its warehouses; no Kafka, no clocks.

The row (an ``ordertwin.StockState``) holds *state*, never running counters:

- per order line, the reservation change with the greatest stamp ``(event time, version)``
  (last writer wins: a duplicate, a replay or an older change is ignored, so each line
  counts exactly once however often it arrives). Lines of orders that still hold stock
  are kept whole (``open``); once every line of an order holds nothing and none is
  RESERVED, only their stamps are kept (``settled``), for the retention;
- per warehouse, the latest WMS snapshot and the movements after the last snapshot the
  ledger agreed with, deduplicated by event id; a movement older than that snapshot is
  already in it and is dropped;
- per order, the units the WMS ledger shows shipped (OUTBOUND movements naming the order).

What is published is recomputed from that state:

- ``on_hand`` per warehouse = latest snapshot + movements after it (movements alone before
  the first snapshot);
- a RESERVED line *holds* its units (promised, still counted in on hand), less any units
  the WMS's outbound movements for its order show gone beyond what the order's shipped
  lines account for: the movement that ships an order can arrive before the twin's
  release, and must not be subtracted twice. A RELEASED_SHIPPED line holds nothing: the
  WMS movement takes its units off on hand (or the next snapshot does, if it was lost);
- ``reserved`` = units held (never negative), ``available`` = on hand - reserved, with the
  open units per channel.

The ledger chain check (STOCK_DIVERGENCE): a new snapshot must equal the last consistent
one ("base") plus the movements between them. While it does not, ``diverged_ms`` says since
when; a late movement that explains the gap, or a later consistent snapshot, clears it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.inventory.reservations import RELEASED_SHIPPED, RESERVED

State = dict[str, Any]  # ordertwin.StockState
Warehouse = dict[str, Any]  # ordertwin.WarehouseStock
Line = dict[str, Any]  # ordertwin.StockLine
Level = dict[str, Any]  # ordertwin.InventoryLevel

NUMBERS = ("on_hand", "reserved", "available", "open_by_channel")  # what a level change is about
VERSIONS = 1_000_000  # packed stamp = at_ms * VERSIONS + version
HOUR_MS = 3_600_000


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def dt(value_ms: int) -> datetime:
    return datetime.fromtimestamp(value_ms / 1000, UTC)


def empty(sku: str) -> State:
    return {
        "sku": sku,
        "open": {},
        "settled": {},
        "shipped": {},
        "warehouses": {},
        "episodes": {},
        "levels": {},
        "paid": {},
        "locks": {},
        "clock_ms": 0,
    }


def empty_warehouse() -> Warehouse:
    return {
        "base_qty": None,
        "base_ms": None,
        "base_id": None,
        "latest_qty": None,
        "latest_ms": None,
        "latest_id": None,
        "diverged_ms": None,
        "moves": {},
    }


def line_key(order_id: str, line: int) -> str:
    return f"{order_id}|{line}"


def pack(at_ms: int, version: int) -> int:
    return at_ms * VERSIONS + min(max(version, 0), VERSIONS - 1)


def line_of(change: dict[str, Any]) -> Line:
    """ReservationChange (topic record) -> StockLine (row record)."""
    paid, shipped = change.get("paid_at"), change.get("shipped_at")
    return {
        "order_id": change["order_id"],
        "line": int(change["line"]),
        "channel": change["channel"],
        "warehouse": change["warehouse"],
        "qty": int(change["qty"]),
        "state": change["state"],
        "at_ms": ms(change["event_time"]),
        "version": int(change["version"]),
        "paid_ms": ms(paid) if paid is not None else None,
        "shipped_ms": ms(shipped) if shipped is not None else None,
        "order_lines": int(change.get("order_lines") or 0),
        "sku_lines": list(change["sku_lines"]) if change.get("sku_lines") is not None else None,
    }


# --- folding facts in ---------------------------------------------------------------------


def apply_change(state: State, change: dict[str, Any]) -> State:
    """Fold one ReservationChange in; returns ``state`` itself when nothing changes."""
    line = line_of(change)
    key = line_key(line["order_id"], line["line"])
    stamp = pack(line["at_ms"], line["version"])
    current = state["open"].get(key)
    known = pack(current["at_ms"], current["version"]) if current is not None else state["settled"].get(key)
    if known is not None and stamp <= known:
        return state  # duplicate or older
    new = {
        **state,
        "open": {**state["open"], key: line},
        "clock_ms": max(state["clock_ms"], line["at_ms"]),
    }
    if key in state["settled"]:
        new["settled"] = {k: v for k, v in state["settled"].items() if k != key}
    elif known is None and line["state"] in (RESERVED, RELEASED_SHIPPED) and line["paid_ms"] is not None:
        bucket = f"{line['channel']}|{line['paid_ms'] // HOUR_MS * HOUR_MS}"  # first seen paid: count once
        new["paid"] = {**state["paid"], bucket: state["paid"].get(bucket, 0) + line["qty"]}
    return new


def apply_event(state: State, event: dict[str, Any]) -> State:
    """Fold one InventoryEvent (SNAPSHOT or MOVEMENT) in; ``state`` itself when nothing changes."""
    kind = event["kind"]
    if kind not in ("SNAPSHOT", "MOVEMENT"):
        return state
    wh = event["warehouse"]
    at = ms(event["event_time"])
    qty = int(event["quantity"])
    eid = event["event_id"]
    before = state["warehouses"].get(wh) or empty_warehouse()
    after = _snapshot(before, qty, at, eid) if kind == "SNAPSHOT" else _movement(before, qty, at, eid)
    shipped = state["shipped"]
    order = event.get("order_id")
    if kind == "MOVEMENT" and event.get("reason") == "OUTBOUND" and order and qty < 0:
        entry = shipped.get(order) or {"units": {}, "last_ms": 0}
        if eid not in entry["units"]:
            units = {**entry["units"], eid: -qty}
            shipped = {**shipped, order: {"units": units, "last_ms": max(entry["last_ms"], at)}}
    if after is before and shipped is state["shipped"] and wh in state["warehouses"]:
        return state
    return {
        **state,
        "warehouses": {**state["warehouses"], wh: after},
        "shipped": shipped,
        "clock_ms": max(state["clock_ms"], at),
    }


def _snapshot(w: Warehouse, qty: int, at: int, eid: str) -> Warehouse:
    if w["latest_ms"] is not None and (at, eid) <= (w["latest_ms"], w["latest_id"]):
        return w  # duplicate, or older than the count we have
    w = {**w, "latest_qty": qty, "latest_ms": at, "latest_id": eid}
    return _rebase(w) if w["base_ms"] is None else _check(w)


def _movement(w: Warehouse, qty: int, at: int, eid: str) -> Warehouse:
    if eid in w["moves"]:
        return w  # duplicate
    if w["base_ms"] is not None and at <= w["base_ms"]:
        return w  # already counted by the snapshot the ledger agreed with
    w = {**w, "moves": {**w["moves"], eid: {"quantity": qty, "event_time_ms": at}}}
    if w["diverged_ms"] is not None and at <= w["latest_ms"]:
        w = _check(w)  # a late movement may explain the gap
    return w


def ledger_gap(w: Warehouse) -> int:
    """Latest snapshot - (base snapshot + movements between them); 0 when consistent."""
    if w["base_ms"] is None or w["latest_ms"] is None:
        return 0
    between = sum(m["quantity"] for m in w["moves"].values() if w["base_ms"] < m["event_time_ms"] <= w["latest_ms"])
    return int(w["latest_qty"] - (w["base_qty"] + between))


def _check(w: Warehouse) -> Warehouse:
    if ledger_gap(w) == 0:
        return _rebase(w)
    return w if w["diverged_ms"] is not None else {**w, "diverged_ms": w["latest_ms"]}


def _rebase(w: Warehouse) -> Warehouse:
    """The latest snapshot is consistent: it becomes the base; movements it covers go."""
    base = w["latest_ms"]
    moves = {k: m for k, m in w["moves"].items() if m["event_time_ms"] > base}
    return {
        **w,
        "base_qty": w["latest_qty"],
        "base_ms": base,
        "base_id": w["latest_id"],
        "diverged_ms": None,
        "moves": moves,
    }


# --- what it adds up to ------------------------------------------------------------------------


def on_hand(w: Warehouse) -> int:
    if w["latest_ms"] is None:
        return int(sum(m["quantity"] for m in w["moves"].values()))
    after = sum(m["quantity"] for m in w["moves"].values() if m["event_time_ms"] > w["latest_ms"])
    return int(w["latest_qty"] + after)


def _by_order(state: State) -> dict[str, list[tuple[str, Line]]]:
    orders: dict[str, list[tuple[str, Line]]] = defaultdict(list)
    for key, line in state["open"].items():
        orders[line["order_id"]].append((key, line))
    return orders


def _order_holds(state: State, order: str, lines: list[tuple[str, Line]]) -> dict[str, int]:
    """RESERVED line key -> units it holds: its qty, less the WMS's outbound units for the
    order that the order's shipped lines do not account for (shipped without the twin
    knowing yet), consumed in line order."""
    shipped_lines = sum(ln["qty"] for _, ln in lines if ln["state"] == RELEASED_SHIPPED)
    by_ledger = sum(state["shipped"][order]["units"].values()) if order in state["shipped"] else 0
    ahead = max(0, by_ledger - shipped_lines)
    holds: dict[str, int] = {}
    for key, line in sorted(((k, ln) for k, ln in lines if ln["state"] == RESERVED), key=lambda kl: kl[1]["line"]):
        used = min(line["qty"], ahead)
        ahead -= used
        holds[key] = line["qty"] - used
    return holds


def line_holds(state: State) -> dict[str, int]:
    """Open line key -> units it holds (promised, still counted in on hand); nonzero only."""
    out: dict[str, int] = {}
    for order, lines in _by_order(state).items():
        out.update({k: n for k, n in _order_holds(state, order, lines).items() if n})
    return out


def expected_lines(lines: Sequence[Line]) -> set[int]:
    """The lines of one order this SKU's row must have heard of before the order settles:
    its lines on this SKU, as the latest change says (a row only ever hears of those).
    Changes written before ``sku_lines`` existed say only how many lines the order has:
    then every line is waited for (so an order spanning several SKUs never settled)."""
    latest = max(lines, key=lambda ln: (ln["at_ms"], ln["version"]))
    if latest.get("sku_lines") is not None:
        return set(latest["sku_lines"])
    return set(range(max(ln["order_lines"] for ln in lines)))


def settle(state: State) -> State:
    """Move the lines of orders with no RESERVED line left to ``settled`` (only once every
    line of the order is here: a sibling still on its way could need the WMS's shipped
    units that the order's shipped lines account for)."""
    done: list[str] = []
    for lines in _by_order(state).values():
        if any(ln["state"] == RESERVED for _, ln in lines):
            continue
        if expected_lines([ln for _, ln in lines]) <= {ln["line"] for _, ln in lines}:
            done.extend(k for k, _ in lines)
    if not done:
        return state
    gone = set(done)
    stamps = {k: pack(state["open"][k]["at_ms"], state["open"][k]["version"]) for k in done}
    return {
        **state,
        "open": {k: ln for k, ln in state["open"].items() if k not in gone},
        "settled": {**state["settled"], **stamps},
    }


@dataclass(frozen=True)
class Totals:
    on_hand: int
    reserved: int
    available: int
    open_by_channel: dict[str, int]


def held_units(state: State) -> dict[str, dict[str, int]]:
    """Warehouse -> channel -> units held by open lines (only warehouses holding some)."""
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, units in line_holds(state).items():
        line = state["open"][key]
        held[line["warehouse"]][line["channel"]] += units
    return {wh: dict(by) for wh, by in held.items()}


def levels(state: State, held: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Level]:
    """Warehouse -> InventoryLevel ('*' carries demand not allocated to a warehouse yet).

    ``held`` (``held_units(state)`` when not given) lets a caller that keeps it up to date
    (``book.Book``) skip walking every open line."""
    if held is None:
        held = held_units(state)
    out: dict[str, Level] = {}
    for wh in sorted(set(state["warehouses"]) | set(held) | set(state["levels"])):
        w = state["warehouses"].get(wh)
        have = on_hand(w) if w is not None else 0
        by_channel = {ch: n for ch, n in sorted(held.get(wh, {}).items()) if n}
        reserved = sum(by_channel.values())
        out[wh] = {
            "sku": state["sku"],
            "warehouse": wh,
            "on_hand": have,
            "reserved": reserved,
            "available": have - reserved,
            "open_by_channel": by_channel,
            "updated_at": dt(state["clock_ms"]),
        }
    return out


def totals(per_warehouse: Iterable[Level]) -> Totals:
    channels: dict[str, int] = defaultdict(int)
    have = reserved = 0
    for level in per_warehouse:
        have += level["on_hand"]
        reserved += level["reserved"]
        for ch, n in level["open_by_channel"].items():
            channels[ch] += n
    return Totals(have, reserved, have - reserved, dict(sorted(channels.items())))


def known(state: State) -> bool:
    """The WMS has reported this SKU (a snapshot or a movement): on hand means something."""
    return bool(state["warehouses"])


def publish(state: State, current: dict[str, Level]) -> tuple[State, list[Level]]:
    """Levels whose numbers differ from the ones last published; the state remembers them."""
    changed = [
        level
        for wh, level in current.items()
        if wh not in state["levels"] or any(state["levels"][wh][f] != level[f] for f in NUMBERS)
    ]
    if not changed:
        return state, []
    return {**state, "levels": {**state["levels"], **{lv["warehouse"]: lv for lv in changed}}}, changed


def prune(state: State, *, retention_ms: int, window_ms: int) -> State:
    """Forget settled stamps and ledger shipments of closed orders older than the retention,
    and paid-hour buckets older than the guard window."""
    horizon = state["clock_ms"] - retention_ms
    since = state["clock_ms"] - window_ms - HOUR_MS
    open_orders = {ln["order_id"] for ln in state["open"].values()}
    settled = {k: v for k, v in state["settled"].items() if v // VERSIONS >= horizon}
    shipped = {o: e for o, e in state["shipped"].items() if o in open_orders or e["last_ms"] >= horizon}
    paid = {k: v for k, v in state["paid"].items() if int(k.rsplit("|", 1)[1]) >= since}
    if (
        len(settled) == len(state["settled"])
        and len(shipped) == len(state["shipped"])
        and len(paid) == len(state["paid"])
    ):
        return state
    return {**state, "settled": settled, "shipped": shipped, "paid": paid}


def open_reservations(state: State) -> int:
    """Lines currently RESERVED (paid, open)."""
    return sum(1 for line in state["open"].values() if line["state"] == RESERVED)
