"""Inventory arithmetic without Kafka: any interleaving of snapshots, movements,
reservations and releases, duplicates and replays included, ends at the from-scratch
recomputation; reserved is never negative; a fact seen twice changes nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.inventory import stock
from streams.inventory.core import fold as fold_one
from streams.inventory.rules import Config
from streams.inventory.stock import empty, ledger_gap, levels
from tests.streams.inventory.facts import SKU, change, movement, recompute, snapshot

WAREHOUSES = ("HZ01", "BJ02")
ORDERS = ("taobao:1", "jd:2", "pdd:3", "taobao:4")
CONFIG = Config()
# How an order's lines move, as the twin derives them (all lines of an order together).
PATHS = (
    ("RESERVED",),
    ("RESERVED", "RELEASED_SHIPPED"),
    ("RESERVED", "RELEASED_SHIPPED", "RETURNED"),
    ("RESERVED", "RELEASED_CANCELLED"),
    ("RESERVED", "RELEASED_CANCELLED", "RESERVED"),  # a refund withdrawn
    ("RESERVED", "RESERVED", "RELEASED_SHIPPED"),  # allocated to a warehouse, then shipped
)


def fold(facts: list[dict[str, Any]], state: stock.State | None = None, config: Config = CONFIG) -> stock.State:
    state = state if state is not None else empty(SKU)
    for fact in facts:
        state = fold_one(state, config, event=fact) if "kind" in fact else fold_one(state, config, change=fact)
    return state


def numbers(state: stock.State) -> dict[str, tuple[int, int, int, dict[str, int]]]:
    return {
        wh: (lv["on_hand"], lv["reserved"], lv["available"], lv["open_by_channel"])
        for wh, lv in levels(state).items()
        if lv["reserved"] or wh in state["warehouses"]
    }


@st.composite
def order_changes(draw: st.DrawFn, order: str) -> list[dict[str, Any]]:
    """The reservation changes one twin sends for one order: every line at each step."""
    path = draw(st.sampled_from(PATHS))
    qty = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 2)))]
    out: list[dict[str, Any]] = []
    minute = draw(st.integers(0, 40))
    warehouse = "*"
    shipped: int | None = None
    for version, state in enumerate(path, start=1):
        minute += draw(st.integers(0, 15))
        if warehouse == "*" and (state != "RESERVED" or draw(st.booleans())):
            warehouse = draw(st.sampled_from(WAREHOUSES))
        if state == "RELEASED_SHIPPED" and shipped is None:
            shipped = minute
        for line, units in enumerate(qty):
            out.append(
                change(
                    order,
                    state,
                    minute,
                    version=version,
                    qty=units,
                    line=line,
                    warehouse=warehouse,
                    shipped=shipped if state != "RELEASED_CANCELLED" else None,
                    lines=len(qty),
                )
            )
    return out


@st.composite
def fact_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 5))):
        facts.append(snapshot(draw(st.sampled_from(WAREHOUSES)), draw(st.integers(0, 30)), draw(st.integers(0, 80))))
    for i in range(draw(st.integers(0, 8))):
        order = draw(st.none() | st.sampled_from(ORDERS))
        qty = -draw(st.integers(1, 4)) if order else draw(st.integers(-5, 5).filter(bool))
        facts.append(
            movement(draw(st.sampled_from(WAREHOUSES)), qty, draw(st.integers(0, 80)), eid=f"m{i}", order_id=order)
        )
    for order in draw(st.lists(st.sampled_from(ORDERS), unique=True, max_size=len(ORDERS))):
        sent = draw(order_changes(order))
        facts += draw(st.lists(st.sampled_from(sent), unique_by=id, min_size=1)) if sent else []  # some lost
    return facts


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(distinct facts, an arrival sequence: any order, some facts several times)."""
    facts = draw(fact_sets())
    replays = draw(st.lists(st.sampled_from(facts), max_size=8)) if facts else []
    return facts, draw(st.permutations(facts + replays))


@settings(max_examples=500, deadline=None)
@given(interleavings())
def test_any_interleaving_ends_at_the_from_scratch_recomputation(case: tuple[list[Any], list[Any]]) -> None:
    facts, arrivals = case
    state = fold(arrivals)
    assert numbers(state) == recompute(facts)
    assert all(lv["reserved"] >= 0 for lv in levels(state).values())
    assert all(n > 0 for lv in levels(state).values() for n in lv["open_by_channel"].values())


@settings(max_examples=200, deadline=None)
@given(interleavings())
def test_a_fact_seen_again_changes_nothing(case: tuple[list[Any], list[Any]]) -> None:
    _, arrivals = case
    state = fold(arrivals)
    for fact in arrivals:
        assert fold([fact], state) is state


@settings(max_examples=200, deadline=None)
@given(interleavings(), st.randoms(use_true_random=False))
def test_replaying_everything_onto_the_result_changes_nothing(case: tuple[list[Any], list[Any]], rnd: Any) -> None:
    facts, arrivals = case
    state = fold(arrivals)
    replay = list(facts)
    rnd.shuffle(replay)
    assert fold(replay, state) is state


# --- outbound: subtracted once, whichever arrives first ------------------------------------


def _available_after(order_of_arrival: list[dict[str, Any]]) -> list[int]:
    state = fold([snapshot("HZ01", 4, 0), change("jd:2", "RESERVED", 1, version=1, qty=4)])
    seen = []
    for fact in order_of_arrival:
        state = fold([fact], state)
        seen.append(levels(state)["HZ01"]["available"])
    return seen


def test_an_outbound_is_subtracted_once_whichever_arrives_first() -> None:
    moved = movement("HZ01", -4, 5, eid="out", order_id="jd:2")
    released = change("jd:2", "RELEASED_SHIPPED", 5, version=2, qty=4, shipped=5)
    assert _available_after([moved, released]) == [0, 0]  # the movement consumes the reservation
    assert _available_after([released, moved]) == [4, 0]  # released first: on hand drops with the movement


def test_a_lost_outbound_movement_is_taken_in_by_the_next_snapshot() -> None:
    state = fold(
        [
            snapshot("HZ01", 10, 0),
            change("jd:2", "RESERVED", 1, version=1, qty=3),
            change("jd:2", "RELEASED_SHIPPED", 5, version=2, qty=3, shipped=5),
        ]
    )
    assert levels(state)["HZ01"]["available"] == 10 and state["open"] == {}
    assert list(state["settled"]) == ["jd:2|0"]
    state = fold([snapshot("HZ01", 7, 10)], state)
    assert levels(state)["HZ01"]["available"] == 7


def test_returns_restock_only_with_the_wms_return_movement() -> None:
    state = fold(
        [
            snapshot("HZ01", 10, 0),
            change("jd:2", "RESERVED", 1, version=1, qty=2),
            movement("HZ01", -2, 5, eid="out", order_id="jd:2"),
            change("jd:2", "RELEASED_SHIPPED", 5, version=2, qty=2, shipped=5),
            change("jd:2", "RETURNED", 20, version=3, qty=2, shipped=5),
        ]
    )
    assert levels(state)["HZ01"]["available"] == 8
    state = fold([movement("HZ01", 2, 21, eid="back", reason="RETURN", order_id="jd:2")], state)
    assert levels(state)["HZ01"]["available"] == 10


def test_cancelled_before_outbound_releases_and_unallocated_demand_counts() -> None:
    state = fold(
        [
            snapshot("HZ01", 5, 0),
            change("taobao:1", "RESERVED", 1, version=1, qty=2, warehouse="*"),
            change("pdd:3", "RESERVED", 1, version=1, qty=1),
        ]
    )
    lv = levels(state)
    assert (lv["*"]["reserved"], lv["*"]["available"], lv["HZ01"]["available"]) == (2, -2, 4)
    state = fold([change("taobao:1", "RESERVED", 2, version=2, qty=2, warehouse="HZ01")], state)
    lv = levels(state)
    assert "*" not in lv  # nothing unallocated any more (a published '*' level would go to 0)
    assert (lv["HZ01"]["reserved"], lv["HZ01"]["open_by_channel"]) == (3, {"pdd": 1, "taobao": 2})
    state = fold([change("taobao:1", "RELEASED_CANCELLED", 3, version=3, qty=2)], state)
    assert levels(state)["HZ01"]["available"] == 4
    assert fold([change("taobao:1", "RESERVED", 2, version=2, qty=2)], state) is state  # older: stays released


# --- the ledger chain check -------------------------------------------------------------


def test_a_snapshot_the_movements_do_not_explain_diverges_until_a_late_movement_does() -> None:
    state = fold([snapshot("HZ01", 20, 0), movement("HZ01", -2, 1, eid="a"), snapshot("HZ01", 15, 5)])
    w = state["warehouses"]["HZ01"]
    assert ledger_gap(w) == -3 and w["diverged_ms"] is not None
    assert levels(state)["HZ01"]["on_hand"] == 15  # the count is the truth for on hand
    state = fold([movement("HZ01", -3, 2, eid="b")], state)  # the late movement
    w = state["warehouses"]["HZ01"]
    assert ledger_gap(w) == 0 and w["diverged_ms"] is None and w["moves"] == {}


def test_divergence_persists_across_snapshots_until_explained() -> None:
    state = fold([snapshot("HZ01", 20, 0), snapshot("HZ01", 17, 5)])
    started = state["warehouses"]["HZ01"]["diverged_ms"]
    state = fold([movement("HZ01", 5, 6, eid="r"), snapshot("HZ01", 22, 10)], state)
    assert state["warehouses"]["HZ01"]["diverged_ms"] == started  # still -3 against the base
    state = fold([movement("HZ01", -3, 4, eid="lost-then-found")], state)
    assert state["warehouses"]["HZ01"]["diverged_ms"] is None


def test_older_snapshot_and_movements_it_covers_are_ignored() -> None:
    state = fold([snapshot("HZ01", 9, 10), movement("HZ01", -1, 12, eid="x")])
    assert fold([snapshot("HZ01", 50, 5)], state) is state
    assert fold([movement("HZ01", -4, 8, eid="old")], state) is state
    assert levels(state)["HZ01"]["on_hand"] == 8


# --- settling and pruning -------------------------------------------------------------------


def test_settled_orders_keep_only_a_stamp_and_their_replays_are_ignored() -> None:
    state = fold(
        [
            snapshot("HZ01", 10, 0),
            change("jd:2", "RESERVED", 1, version=1, qty=2),
            change("jd:2", "RELEASED_CANCELLED", 2, version=2, qty=2),
            change("pdd:3", "RESERVED", 3, version=1, qty=1),
        ]
    )
    assert list(state["open"]) == ["pdd:3|0"] and list(state["settled"]) == ["jd:2|0"]
    assert fold([change("jd:2", "RESERVED", 1, version=1, qty=2)], state) is state
    withdrawn = fold([change("jd:2", "RESERVED", 9, version=3, qty=2)], state)  # a newer fact brings it back
    assert levels(withdrawn)["HZ01"]["reserved"] == 3 and "jd:2|0" not in withdrawn["settled"]


def test_prune_forgets_old_stamps_but_never_open_lines() -> None:
    hour = 60
    state = fold(
        [
            snapshot("HZ01", 10, 0),
            change("jd:2", "RESERVED", 1, version=1, qty=2),
            change("jd:2", "RELEASED_CANCELLED", 2, version=2, qty=2),
            change("pdd:3", "RESERVED", 3, version=1, qty=1),
            movement("HZ01", 1, 10 * hour, eid="late-clock"),
        ]
    )
    pruned = stock.prune(state, retention_ms=5 * 3_600_000, window_ms=3_600_000)
    assert pruned["settled"] == {} and set(pruned["open"]) == {"pdd:3|0"}
    assert numbers(pruned) == numbers(state)
