"""``Book.step`` is ``core.step`` (the specification) in O(lines of the fact's order).

Equivalence on arbitrary arrival sequences (duplicates, replays, reopened lines, orders
whose other lines belong to other SKUs, clocks that run past the retention so stamps,
shipments and paid hours are pruned, guard and low-stock on), also from a Book built
mid-way from a stored row; then deterministic counts showing that the work per fact no
longer grows with the orders a SKU has seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.inventory import rules, stock
from streams.inventory.book import Book
from streams.inventory.core import step
from streams.inventory.rules import Config
from tests.helpers import CODEC
from tests.streams.inventory.facts import SKU, at, change, movement, snapshot

HOUR_MIN = 60
CONFIG = Config(
    oversell_threshold_ms=0,
    divergence_threshold_ms=600_000,
    low_stock={"*": 2},
    guard_share=0.5,
    guard_window_ms=2 * 3_600_000,
    retention_ms=3 * 3_600_000,
)
NOW = at(0) + timedelta(days=3)
WAREHOUSES = ("HZ01", "BJ02")
STATES = ("RESERVED", "RELEASED_SHIPPED", "RELEASED_CANCELLED", "RETURNED")


@st.composite
def facts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Changes of a few orders over a span longer than the retention, stock facts, replays."""
    out: list[dict[str, Any]] = []
    n_orders = draw(st.integers(1, 10))
    for i in range(n_orders):
        order = f"{draw(st.sampled_from(('taobao', 'jd', 'pdd')))}:{i}"
        lines = draw(st.integers(1, 3))
        mine = draw(st.lists(st.integers(0, lines - 1), min_size=1, max_size=lines, unique=True))  # others: other SKUs
        minute = draw(st.integers(0, 12 * HOUR_MIN))
        warehouse = "*"
        for version in range(1, draw(st.integers(1, 4)) + 1):
            minute += draw(st.integers(0, 4 * HOUR_MIN))
            state = draw(st.sampled_from(STATES))
            if draw(st.booleans()):
                warehouse = draw(st.sampled_from(WAREHOUSES))
            for line in mine:
                out.append(
                    change(
                        order,
                        state,
                        minute,
                        version=version,
                        qty=draw(st.integers(1, 3)),
                        line=line,
                        warehouse=warehouse,
                        paid=minute - 1,
                        shipped=minute if state == "RELEASED_SHIPPED" else None,
                        lines=lines,
                    )
                )
        if draw(st.booleans()):
            out.append(
                movement(
                    draw(st.sampled_from(WAREHOUSES)),
                    -draw(st.integers(1, 3)),
                    minute + draw(st.integers(-30, 30)),
                    eid=f"out-{i}",
                    order_id=order,
                )
            )
    for j in range(draw(st.integers(0, 4))):
        out.append(snapshot(draw(st.sampled_from(WAREHOUSES)), draw(st.integers(0, 20)), draw(st.integers(0, 1800))))
        out.append(
            movement(
                draw(st.sampled_from(WAREHOUSES)), draw(st.integers(-3, 3)), draw(st.integers(0, 1800)), eid=f"m{j}"
            )
        )
    replays = draw(st.lists(st.sampled_from(out), max_size=6))
    return list(draw(st.permutations(out + replays)))


def kw(fact: dict[str, Any]) -> dict[str, Any]:
    return {"event": fact} if "kind" in fact else {"change": fact}


def assert_same_steps(arrivals: list[dict[str, Any]], start: stock.State) -> None:
    reference = start
    book = Book(CODEC.decode_as("StockState", CODEC.encode("StockState", start)))  # as loaded from the table
    for fact in arrivals:
        want = step(reference, config=CONFIG, now=NOW, **kw(fact))
        got = book.step(config=CONFIG, now=NOW, **kw(fact))
        assert got.changed == want.changed
        assert got.state == want.state
        assert (got.levels, got.resolved, got.commands) == (want.levels, want.resolved, want.commands)
        assert book.levels() == stock.levels(want.state)
        assert book.open_reservations() == stock.open_reservations(want.state)
        # the agent raises what the WMS watermark allows between facts (later facts resolve it)
        mark = stock.ms(fact["event_time"])
        reference, raised = rules.raise_due(want.state, lambda _source, m=mark: m, NOW, CONFIG)
        again, raised_too = rules.raise_due(book.row, lambda _source, m=mark: m, NOW, CONFIG)
        assert (again, raised_too) == (reference, raised)
        book.replace(again)


@settings(max_examples=400, deadline=None)
@given(facts())
def test_book_steps_are_the_reference_steps(arrivals: list[dict[str, Any]]) -> None:
    assert_same_steps(arrivals, stock.empty(SKU))


@settings(max_examples=200, deadline=None)
@given(facts(), st.integers(0, 100))
def test_a_book_built_from_a_stored_row_continues_as_the_reference(arrivals: list[dict[str, Any]], cut: int) -> None:
    """Also from a row the Book never stepped: folded without settling (as an older worker
    could have left it), so the first change must settle what ``core.step`` would."""
    cut = cut % (len(arrivals) + 1)
    row = stock.empty(SKU)
    for fact in arrivals[:cut]:
        row = stock.apply_event(row, fact) if "kind" in fact else stock.apply_change(row, fact)
    assert_same_steps(arrivals[cut:], row)


# --- the work per fact does not grow with the orders a SKU has seen -------------------------


class Counting(dict[str, Any]):
    """A row map that counts the entries a step reads or walks."""

    reads = 0

    def __getitem__(self, key: str) -> Any:
        Counting.reads += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        Counting.reads += 1
        return super().get(key, default)

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        for item in super().items():
            Counting.reads += 1
            yield item

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for value in super().values():
            Counting.reads += 1
            yield value

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            Counting.reads += 1
            yield key


def busy_row(orders: int) -> stock.State:
    """A SKU that has seen ``orders`` orders in the last hours: half shipped and settled, half
    shipped lines of two-SKU orders (their other line is another SKU's: they stay open)."""
    row = stock.apply_event(stock.empty(SKU), snapshot("HZ01", 10 * orders, 0))
    book = Book(row)
    for i in range(orders):
        lines = 1 if i % 2 else 2
        for version, state in ((1, "RESERVED"), (2, "RELEASED_SHIPPED")):
            fact = change(
                f"taobao:{i}", state, 60 + i % 60 + version, version=version, qty=1, lines=lines, paid=60, shipped=61
            )
            book.step(config=CONFIG, now=NOW, change=fact)
    return book.row


def reads_per_fact(orders: int) -> tuple[int, int]:
    """(map entries read by one Book step, bytes of the row written for it)."""
    row = busy_row(orders)
    assert len(row["settled"]) == orders // 2 and len(row["open"]) == orders // 2
    row = {**row, **{name: Counting(row[name]) for name in ("open", "settled", "shipped", "paid")}}
    book = Book(row)
    book.step(config=CONFIG, now=NOW, change=change("jd:x", "RESERVED", 200, version=1, paid=199))  # settles the rest
    Counting.reads = 0
    book.step(config=CONFIG, now=NOW, change=change("jd:x", "RELEASED_SHIPPED", 201, version=2, paid=199, shipped=201))
    return Counting.reads, len(CODEC.encode("StockState", book.row))


def test_the_work_of_a_fact_does_not_grow_with_the_orders_seen() -> None:
    small, small_bytes = reads_per_fact(10)
    large, large_bytes = reads_per_fact(2000)
    assert large == small and small < 30
    assert large_bytes > 50 * small_bytes  # the row itself still grows: written once per batch (agents.py)


def test_the_reference_walks_every_order() -> None:
    """Negative control for the count above: ``core.step`` reads every open line."""
    counts = []
    for orders in (10, 2000):
        row = busy_row(orders)
        row = {**row, **{name: Counting(row[name]) for name in ("open", "settled", "shipped", "paid")}}
        Counting.reads = 0
        step(row, config=CONFIG, now=NOW, change=change("jd:x", "RESERVED", 200, version=1, paid=199))
        counts.append(Counting.reads)
    assert counts[1] > 100 * counts[0] / 10
