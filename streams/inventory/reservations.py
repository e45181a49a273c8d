"""Pure: the stock-relevant state of each order line, and its changes between two twins.

``reservation_changes(old, new)`` is called by the twin agent with the twin before and
after a fact; every line whose target differs is sent to ``inventory.reservations`` keyed
by SKU. Targets are a function of the twin alone:

- never paid: no target (nothing was ever reserved);
- PAID / ALLOCATED: RESERVED;
- OUTBOUND and beyond: RELEASED_SHIPPED (the WMS outbound movement takes the units off on
  hand; the release never does, so nothing is decremented twice);
- CANCELLED / REFUNDED: RELEASED_SHIPPED if the goods had left, else RELEASED_CANCELLED;
- RETURNED: RETURNED (stock comes back only with the WMS return movement);
- a reserved line that disappeared from the twin (the channel changed the lines):
  RELEASED_CANCELLED.

Each change is stamped with the twin's clock (``updated_at``, the latest event time folded
in, which never goes back) and version. The stock side keeps, per line, the change with
the greatest stamp, so a duplicate, a replay or a re-assertion of the current state
changes nothing. The twin's clock rather than the causing fact's own time: a late fact can
change a line's target (say, the warehouse) while being older than the fact that set the
previous target, and must still win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.orders.twin import EXITS, RANK, Twin

Change = dict[str, Any]  # an ordertwin.ReservationChange record

RESERVED = "RESERVED"
RELEASED_SHIPPED = "RELEASED_SHIPPED"
RELEASED_CANCELLED = "RELEASED_CANCELLED"
RETURNED = "RETURNED"
UNALLOCATED = "*"

PAID_RANK = RANK["PAID"]
SHIPPED_RANK = RANK["OUTBOUND"]

# Fields that make a target; the stamp (event_time, version) is not one of them.
TARGET_FIELDS = (
    "sku",
    "order_id",
    "line",
    "channel",
    "warehouse",
    "qty",
    "state",
    "paid_at",
    "shipped_at",
    "order_lines",
    "sku_lines",
)


def _milestone_status(key: str) -> str | None:
    system, _, status = key.partition(":")
    return status if system and status and ":" not in status else None  # skips '<SYSTEM>:addr:<fp>'


def _earliest(twin: Twin, min_rank: int) -> int | None:
    times = [
        at
        for key, at in twin["milestones"].items()
        if (status := _milestone_status(key)) is not None and RANK.get(status, -1) >= min_rank
    ]
    return min(times) if times else None


def paid_at_ms(twin: Twin) -> int | None:
    """When any system first reported the order paid or further along."""
    return _earliest(twin, PAID_RANK)


def shipped_at_ms(twin: Twin) -> int | None:
    """When the goods left: the WMS's own outbound report if any (it shares the snapshots' clock)."""
    wms = twin["milestones"].get("WMS:OUTBOUND")
    return int(wms) if wms is not None else _earliest(twin, SHIPPED_RANK)


def warehouse_of(twin: Twin) -> str:
    for system in ("WMS", "OMS"):
        view = twin["systems"].get(system)
        if view is not None and view.get("warehouse"):
            return str(view["warehouse"])
    return UNALLOCATED


def target_state(twin: Twin) -> str | None:
    """The reservation state every line of the order should be in; None if never paid."""
    if paid_at_ms(twin) is None:
        return None
    state = str(twin["state"])
    if state == "RETURNED":
        return RETURNED
    shipped = shipped_at_ms(twin) is not None
    if state in EXITS:
        return RELEASED_SHIPPED if shipped else RELEASED_CANCELLED
    rank = RANK.get(state, -1)
    if rank >= SHIPPED_RANK:
        return RELEASED_SHIPPED
    if rank >= PAID_RANK:
        return RESERVED
    return RELEASED_CANCELLED  # was paid, the latest views say otherwise: nothing is promised


def _dt(ms: int | None, tz: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz)


def line_targets(twin: Twin) -> dict[tuple[str, int], Change]:
    """(sku, line index) -> the target of each line (without a stamp)."""
    state = target_state(twin)
    if state is None:
        return {}
    tz = twin["updated_at"].tzinfo
    warehouse = warehouse_of(twin)
    paid = _dt(paid_at_ms(twin), tz)
    shipped = _dt(shipped_at_ms(twin), tz)
    out: dict[tuple[str, int], Change] = {}
    on_sku = sku_lines(twin)
    for index, line in enumerate(twin["lines"]):
        qty = int(line["qty"])
        if qty <= 0 or not line.get("sku"):
            continue
        out[(str(line["sku"]), index)] = {
            "sku": str(line["sku"]),
            "order_id": twin["order_id"],
            "line": index,
            "channel": twin["channel"],
            "warehouse": warehouse,
            "qty": qty,
            "state": state,
            "paid_at": paid,
            "shipped_at": shipped if state != RELEASED_CANCELLED else None,
            "order_lines": len(twin["lines"]),
            "sku_lines": on_sku[str(line["sku"])],
        }
    return out


def sku_lines(twin: Twin) -> dict[str, list[int]]:
    """SKU -> indices of the order's lines on it that hold stock (qty > 0): what a SKU's
    stock row will hear of, so it knows when the order is complete there."""
    out: dict[str, list[int]] = {}
    for index, line in enumerate(twin["lines"]):
        if int(line["qty"]) > 0 and line.get("sku"):
            out.setdefault(str(line["sku"]), []).append(index)
    return out


def _same(a: Change, b: Change) -> bool:
    return all(a[f] == b[f] for f in TARGET_FIELDS)


def reservation_changes(old: Twin | None, new: Twin) -> list[Change]:
    """The lines of ``new`` whose target differs from ``old`` (all of them when ``old`` is None).

    Pure and deterministic: the same pair of twins always gives the same records, so a
    re-sent change is a duplicate the stock side ignores.
    """
    before = line_targets(old) if old is not None else {}
    after = line_targets(new)
    stamp = {
        "event_time": new["updated_at"],
        "version": int(new["version"]),
        "order_state": str(new["state"]),
    }
    changes: list[Change] = []
    for key, target in after.items():
        previous = before.get(key)
        if previous is None or not _same(previous, target):
            changes.append({**target, **stamp})
    for key, previous in before.items():
        if key not in after and previous["state"] == RESERVED:  # shipped or returned goods stay so
            removed = {
                "state": RELEASED_CANCELLED,
                "shipped_at": None,
                "order_lines": len(new["lines"]),
                "sku_lines": sku_lines(new).get(previous["sku"], []),
            }
            changes.append({**previous, **removed, **stamp})
    return changes
