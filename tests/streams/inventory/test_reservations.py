"""Reservation changes derived from twin transitions (pure): targets per canonical state,
one change per line and transition, and the stock side ends at the final twin's targets
whatever order the order's facts arrive in, duplicates and re-assertions included."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.inventory import stock
from streams.inventory.core import fold
from streams.inventory.reservations import line_targets, reservation_changes
from streams.inventory.rules import Config
from streams.orders.twin import Twin, apply
from tests.streams.orders.test_twin import ev

TWO_LINES = [
    {"line_id": None, "sku": "A", "qty": 2, "unit_price_minor": 100, "raw_status": None},
    {"line_id": None, "sku": "B", "qty": 1, "unit_price_minor": 100, "raw_status": None},
]
PAID = ev("CHANNEL", "PAID", 1, lines=TWO_LINES)


def run(events: list[dict[str, Any]]) -> tuple[Twin, list[dict[str, Any]]]:
    """Fold events like the twin agent: changes from (before, after) or re-assert if unchanged."""
    twin: Twin | None = None
    sent: list[dict[str, Any]] = []
    for event in events:
        new, changed = apply(twin, event)
        sent += reservation_changes(twin if changed else None, new)
        twin = new
    assert twin is not None
    return twin, sent


def states(changes: list[dict[str, Any]]) -> list[tuple[str, int, str, str]]:
    return [(c["sku"], c["line"], c["state"], c["warehouse"]) for c in changes]


def test_unpaid_orders_reserve_nothing() -> None:
    _, sent = run([ev("CHANNEL", "PENDING_PAYMENT", 0, lines=TWO_LINES), ev("CHANNEL", "CANCELLED", 5)])
    assert sent == []


def test_lifecycle_reserve_allocate_ship() -> None:
    _, sent = run(
        [
            PAID,
            ev("OMS", "ALLOCATED", 2, warehouse="HZ01"),
            ev("WMS", "ALLOCATED", 3, warehouse="HZ01"),
            ev("WMS", "OUTBOUND", 30, warehouse="HZ01"),
            ev("CARRIER", "IN_TRANSIT", 60),
        ]
    )
    assert states(sent) == [
        ("A", 0, "RESERVED", "*"),
        ("B", 1, "RESERVED", "*"),
        ("A", 0, "RESERVED", "HZ01"),
        ("B", 1, "RESERVED", "HZ01"),
        ("A", 0, "RELEASED_SHIPPED", "HZ01"),
        ("B", 1, "RELEASED_SHIPPED", "HZ01"),
    ]
    shipped = sent[-1]
    assert shipped["shipped_at"] == PAID["event_time"].replace(minute=30) and shipped["paid_at"] == PAID["event_time"]
    assert [c["version"] for c in sent] == [1, 1, 2, 2, 4, 4]  # WMS ALLOCATED at the same warehouse: no change


def test_cancel_before_outbound_and_refund_after_outbound() -> None:
    _, cancelled = run([PAID, ev("CHANNEL", "CANCELLED", 5)])
    assert [c["state"] for c in cancelled[2:]] == ["RELEASED_CANCELLED"] * 2
    _, refunded = run([PAID, ev("WMS", "OUTBOUND", 4, warehouse="HZ01"), ev("CHANNEL", "REFUNDED", 9)])
    assert [c["state"] for c in refunded[2:]] == ["RELEASED_SHIPPED"] * 2  # the refund changes nothing more
    _, returned = run(
        [PAID, ev("WMS", "OUTBOUND", 4, warehouse="HZ01"), ev("CHANNEL", "REFUNDED", 9), ev("WMS", "RETURNED", 20)]
    )
    assert [c["state"] for c in returned[-2:]] == ["RETURNED"] * 2


def test_a_removed_line_is_released_and_a_changed_qty_re_reserved() -> None:
    one_line = [{**TWO_LINES[0], "qty": 3}]
    _, sent = run([PAID, ev("CHANNEL", "PAID", 2, lines=one_line)])
    assert [(c["sku"], c["line"], c["state"], c["qty"]) for c in sent[2:]] == [
        ("A", 0, "RESERVED", 3),
        ("B", 1, "RELEASED_CANCELLED", 1),
    ]


def test_unchanged_twin_reasserts_identical_records() -> None:
    twin, sent = run([PAID, ev("OMS", "ALLOCATED", 2, warehouse="HZ01")])
    _, again = run([PAID, ev("OMS", "ALLOCATED", 2, warehouse="HZ01"), ev("OMS", "ALLOCATED", 2, warehouse="HZ01")])
    assert again[len(sent) :] == reservation_changes(None, twin) == sent[2:]


def test_a_late_fact_that_moves_the_warehouse_wins_despite_its_older_time() -> None:
    twin, sent = run([PAID, ev("CHANNEL", "PAID", 50, lines=TWO_LINES), ev("OMS", "ALLOCATED", 2, warehouse="HZ01")])
    row = fold_changes([c for c in sent if c["sku"] == "A"], stock.empty("A"))
    assert {ln["warehouse"] for ln in row["open"].values()} == {"HZ01"}
    assert twin["updated_at"] == sent[-1]["event_time"]


def fold_changes(changes: list[dict[str, Any]], row: stock.State) -> stock.State:
    for change in changes:
        row = fold(row, CONFIG, change=change)
    return row


CONFIG = Config()
HISTORY = [
    PAID,
    ev("OMS", "ALLOCATED", 2, warehouse="HZ01"),
    ev("WMS", "ALLOCATED", 3, warehouse="BJ02"),
    ev("CHANNEL", "PAID", 4, lines=[{**TWO_LINES[0], "qty": 5}]),
    ev("WMS", "OUTBOUND", 30, warehouse="BJ02"),
    ev("CHANNEL", "REFUNDED", 40),
    ev("WMS", "RETURNED", 70, warehouse="BJ02"),
]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, len(HISTORY)), st.data())
def test_any_arrival_order_ends_at_the_final_twins_targets(prefix: int, data: st.DataObject) -> None:
    facts = HISTORY[:prefix]
    arrivals = data.draw(st.permutations(facts + data.draw(st.lists(st.sampled_from(facts), max_size=4))))
    twin, sent = run(arrivals)
    shuffled = data.draw(st.permutations(sent))  # the repartition topic may reorder across a rebalance
    rows = {sku: fold_changes([c for c in shuffled if c["sku"] == sku], stock.empty(sku)) for sku in ("A", "B")}
    latest: dict[tuple[str, int], int] = {}
    for c in sent:
        key = (c["sku"], c["line"])
        latest[key] = max(latest.get(key, 0), stock.pack(stock.ms(c["event_time"]), c["version"]))
    targets = line_targets(twin)
    for (sku, index), target in targets.items():
        key = stock.line_key(twin["order_id"], index)
        line = rows[sku]["open"].get(key)
        if line is None:
            assert target["state"] != "RESERVED" and rows[sku]["settled"][key] == latest[(sku, index)]
        else:
            assert stock.pack(line["at_ms"], line["version"]) == latest[(sku, index)]
            assert (line["state"], line["warehouse"], line["qty"]) == (
                target["state"],
                target["warehouse"],
                target["qty"],
            )
    for sku, row in rows.items():
        for key, line in row["open"].items():
            if (sku, line["line"]) not in targets:
                assert line["state"] != "RESERVED", key  # nothing stays promised that the twin dropped


def test_an_order_on_two_skus_settles_in_each_skus_row() -> None:
    """Each SKU's row only hears of the order's lines on that SKU: once they are released
    the order settles there (it used to wait for the other SKU's line forever, so every
    multi-SKU order stayed in ``open`` and the row grew without bound)."""
    _, sent = run([PAID, ev("WMS", "OUTBOUND", 30, warehouse="HZ01"), ev("CARRIER", "IN_TRANSIT", 60)])
    assert {(c["sku"], tuple(c["sku_lines"])) for c in sent} == {("A", (0,)), ("B", (1,))}
    for sku in ("A", "B"):
        row = stock.empty(sku)
        for change in (c for c in sent if c["sku"] == sku):
            row = fold(row, CONFIG, change=change)
        assert row["open"] == {} and len(row["settled"]) == 1
        # What a change written before sku_lines existed did: wait for every line of the order.
        old_row = stock.empty(sku)
        for change in (c for c in sent if c["sku"] == sku):
            old_row = fold(old_row, CONFIG, change={**change, "sku_lines": None})
        assert len(old_row["open"]) == 1 and old_row["settled"] == {}


def test_a_line_moved_to_another_sku_leaves_the_old_sku_settled() -> None:
    moved = [{**TWO_LINES[0]}, {**TWO_LINES[1], "sku": "A"}]  # the channel edits line 1 to SKU A
    _, sent = run([PAID, ev("CHANNEL", "PAID", 2, lines=moved), ev("CHANNEL", "CANCELLED", 3)])
    b_changes = [c for c in sent if c["sku"] == "B"]
    assert [(c["state"], c["sku_lines"]) for c in b_changes] == [("RESERVED", [1]), ("RELEASED_CANCELLED", [])]
    row = stock.empty("B")
    for change in b_changes:
        row = fold(row, CONFIG, change=change)
    assert row["open"] == {}
