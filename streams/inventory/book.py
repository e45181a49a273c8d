"""One SKU's row with the indexes that make a fact cost O(lines of its order), not O(row).

``core.step`` is the specification: per fact it walks every open line (holds, settle) and
every settled stamp and shipment (prune), so the agent's cost per fact grew with the
orders a SKU had seen within the retention (bench/PROFILE.md). ``Book.step`` returns the
same ``Outcome`` (property-tested against ``core.step``) by keeping beside the row what
that walk would find:

- the open line keys of each order, and the units each order's lines hold, summed per
  warehouse and channel: a fact changes the holds of its own order only (a change: its
  line's order; an OUTBOUND movement: the order it names);
- settling: only the order a fact touched can become settled (settling depends on the
  order's own lines); after a row is loaded, the orders already settleable are settled at
  the first fact that changes something, as ``core.step`` would;
- pruning: settled stamps and shipments in min-heaps by time (stale entries skipped when
  popped), the oldest paid-hour bucket as a lower bound.

The Book updates its row's maps in place: it owns them (the agent keeps one Book per
cached SKU), and a row it returned before is not to be read after the next ``step``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from streams.inventory import rules, stock
from streams.inventory.core import Outcome
from streams.inventory.reservations import RELEASED_SHIPPED, RESERVED
from streams.inventory.rules import Config
from streams.inventory.stock import HOUR_MS, VERSIONS, Level, Line, State

Hold = tuple[str, str, int]  # warehouse, channel, units


def _bucket_start(bucket: str) -> int:
    return int(bucket.rsplit("|", 1)[1])


def _settleable(lines: Iterable[Line]) -> bool:
    """``stock.settle``'s test for one order: nothing RESERVED, and every line is here."""
    seen = list(lines)
    if not seen or any(ln["state"] == RESERVED for ln in seen):
        return False
    return stock.expected_lines(seen) <= {ln["line"] for ln in seen}


class Book:
    """A SKU's ``StockState`` and what ``core.step`` would otherwise recompute from it."""

    def __init__(self, row: State) -> None:
        self.row = row
        self._lines: dict[str, set[str]] = {}  # order -> its open line keys
        self._holds: dict[str, dict[str, Hold]] = {}  # order -> line key -> what it holds (nonzero)
        self._held: dict[str, dict[str, int]] = {}  # warehouse -> channel -> units held
        self._reserved = 0  # open RESERVED lines
        for key, line in row["open"].items():
            self._lines.setdefault(line["order_id"], set()).add(key)
            self._reserved += line["state"] == RESERVED
        for order in self._lines:
            self._rehold(order)
        self._settled_heap = [(stamp // VERSIONS, key) for key, stamp in row["settled"].items()]
        heapq.heapify(self._settled_heap)
        self._shipped_heap = [(e["last_ms"], o) for o, e in row["shipped"].items() if o not in self._lines]
        heapq.heapify(self._shipped_heap)
        self._paid_floor = min(map(_bucket_start, row["paid"]), default=None)
        # a row that was never stepped here could hold settleable orders: settled at the first change
        self._to_settle = {o for o, keys in self._lines.items() if _settleable(row["open"][k] for k in keys)}

    # --- what the row adds up to --------------------------------------------------------

    def levels(self) -> dict[str, Level]:
        return stock.levels(self.row, self._held)

    def open_reservations(self) -> int:
        return self._reserved

    def conditions(self, config: Config) -> dict[str, rules.Condition]:
        return rules.conditions(self.row, config, self.levels())

    # --- one fact -----------------------------------------------------------------------

    def step(
        self,
        *,
        config: Config,
        now: datetime,
        change: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
    ) -> Outcome:
        """``core.step`` on this SKU's row, in O(lines of the fact's order)."""
        if change is not None:
            touched = self._fold_change(change)
        elif event is not None:
            touched = self._fold_event(event)
        else:
            raise ValueError("step needs a change or an event")
        if touched is None:
            return Outcome(self.row, False)
        self._settle(touched | self._to_settle)
        self._to_settle = set()
        self._prune(retention_ms=max(config.retention_ms, config.guard_window_ms), window_ms=config.guard_window_ms)
        current = self.levels()
        row, resolved = rules.evaluate(self.row, config, now, current)
        row, changed_levels = stock.publish(row, current)
        row, commands = rules.guard(row, config, now, current)
        self.row = row
        return Outcome(row, True, changed_levels, resolved, commands)

    def replace(self, row: State) -> None:
        """Take a row that differs from ours in its episodes only (``rules.raise_due``, recovery)."""
        self.row = row

    def _fold_change(self, change: dict[str, Any]) -> set[str] | None:
        """``stock.apply_change`` in place; the touched order, or None if nothing changed."""
        line = stock.line_of(change)
        order = line["order_id"]
        key = stock.line_key(order, line["line"])
        stamp = stock.pack(line["at_ms"], line["version"])
        open_, settled = self.row["open"], self.row["settled"]
        current = open_.get(key)
        known = stock.pack(current["at_ms"], current["version"]) if current is not None else settled.get(key)
        if known is not None and stamp <= known:
            return None
        row = self.row = {**self.row}  # a new top level: callers may still hold the old one
        open_[key] = line
        row["clock_ms"] = max(row["clock_ms"], line["at_ms"])
        if key in settled:
            del settled[key]  # its heap entry goes stale
        elif known is None and line["state"] in (RESERVED, RELEASED_SHIPPED) and line["paid_ms"] is not None:
            start = line["paid_ms"] // HOUR_MS * HOUR_MS
            bucket = f"{line['channel']}|{start}"
            row["paid"][bucket] = row["paid"].get(bucket, 0) + line["qty"]
            self._paid_floor = start if self._paid_floor is None else min(self._paid_floor, start)
        self._reserved += (line["state"] == RESERVED) - (current is not None and current["state"] == RESERVED)
        self._lines.setdefault(order, set()).add(key)
        self._rehold(order)
        return {order}

    def _fold_event(self, event: dict[str, Any]) -> set[str] | None:
        """``stock.apply_event`` in place; the order whose shipments changed (if any), or None."""
        kind = event["kind"]
        if kind not in ("SNAPSHOT", "MOVEMENT"):
            return None
        wh = event["warehouse"]
        at = stock.ms(event["event_time"])
        qty = int(event["quantity"])
        eid = event["event_id"]
        warehouses, shipped = self.row["warehouses"], self.row["shipped"]
        before = warehouses.get(wh) or stock.empty_warehouse()
        after = stock._snapshot(before, qty, at, eid) if kind == "SNAPSHOT" else stock._movement(before, qty, at, eid)
        order = event.get("order_id")
        ships = None
        if kind == "MOVEMENT" and event.get("reason") == "OUTBOUND" and order and qty < 0:
            entry = shipped.get(order) or {"units": {}, "last_ms": 0}
            if eid not in entry["units"]:
                ships = {"units": {**entry["units"], eid: -qty}, "last_ms": max(entry["last_ms"], at)}
        if after is before and ships is None and wh in warehouses:
            return None
        row = self.row = {**self.row}
        warehouses[wh] = after
        row["clock_ms"] = max(row["clock_ms"], at)
        if ships is None or order is None:
            return set()
        shipped[order] = ships
        heapq.heappush(self._shipped_heap, (ships["last_ms"], order))
        self._rehold(order)
        return {order}

    # --- the indexes --------------------------------------------------------------------

    def _rehold(self, order: str) -> None:
        """Recompute what the order's open lines hold (``stock._order_holds``) and the sums."""
        for wh, ch, units in self._holds.pop(order, {}).values():
            self._add(wh, ch, -units)
        keys = self._lines.get(order)
        if not keys:
            return
        open_ = self.row["open"]
        holds = stock._order_holds(self.row, order, [(k, open_[k]) for k in keys])
        mine = {k: (open_[k]["warehouse"], open_[k]["channel"], n) for k, n in holds.items() if n}
        if mine:
            self._holds[order] = mine
            for wh, ch, units in mine.values():
                self._add(wh, ch, units)

    def _add(self, wh: str, ch: str, units: int) -> None:
        by = self._held.setdefault(wh, {})
        total = by.get(ch, 0) + units
        if total:
            by[ch] = total
        else:
            by.pop(ch, None)
            if not by:
                del self._held[wh]

    def _settle(self, orders: set[str]) -> None:
        """``stock.settle`` for the orders that can have become settleable."""
        open_, settled, shipped = self.row["open"], self.row["settled"], self.row["shipped"]
        for order in orders:
            keys = self._lines.get(order)
            if not keys or not _settleable(open_[k] for k in keys):
                continue
            for key in keys:
                line = open_.pop(key)
                settled[key] = stock.pack(line["at_ms"], line["version"])
                heapq.heappush(self._settled_heap, (line["at_ms"], key))
            del self._lines[order]
            self._rehold(order)
            if order in shipped:  # prunable from now on
                heapq.heappush(self._shipped_heap, (shipped[order]["last_ms"], order))

    def _prune(self, *, retention_ms: int, window_ms: int) -> None:
        """``stock.prune``: pop what fell behind the horizon (O(what is due))."""
        row = self.row
        horizon = row["clock_ms"] - retention_ms
        settled, shipped, paid = row["settled"], row["shipped"], row["paid"]
        heap = self._settled_heap
        while heap and heap[0][0] < horizon:
            _, key = heapq.heappop(heap)
            stamp = settled.get(key)
            if stamp is not None and stamp // VERSIONS < horizon:
                del settled[key]
        heap = self._shipped_heap
        while heap and heap[0][0] < horizon:
            _, order = heapq.heappop(heap)
            entry = shipped.get(order)
            if entry is not None and entry["last_ms"] < horizon and order not in self._lines:
                del shipped[order]  # an open order's goes back on the heap when it settles
        since = row["clock_ms"] - window_ms - HOUR_MS
        if self._paid_floor is not None and self._paid_floor < since:
            for bucket in [b for b in paid if _bucket_start(b) < since]:
                del paid[bucket]
            self._paid_floor = min(map(_bucket_start, paid), default=None)
