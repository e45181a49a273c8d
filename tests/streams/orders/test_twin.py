"""Twin transitions: idempotent, order-insensitive, regressions only through exits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.orders.twin import apply, derive_state

T0 = datetime(2026, 11, 11, tzinfo=UTC)


def ev(system: str, status: str, minutes: int, *, source: str | None = None, **kw: Any) -> dict[str, Any]:
    src = source or ("taobao" if system == "CHANNEL" else system.lower())
    return {
        "event_id": f"{src}-{status}-{minutes}",
        "order_id": "taobao:1",
        "channel": "taobao",
        "source": src,
        "system": system,
        "status": status,
        "raw_status": status.lower(),
        "partial": False,
        "event_time": T0 + timedelta(minutes=minutes),
        "ingest_time": T0,
        "amount_minor": kw.get("amount_minor"),
        "currency": "CNY" if kw.get("lines") else None,
        "lines": kw.get("lines", []),
        "warehouse": kw.get("warehouse"),
        "carrier": None,
        "tracking_no": kw.get("tracking_no"),
        "address_fp": None,
        "lines_fp": None,
    }


def fold(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    twin = None
    for e in events:
        twin, _ = apply(twin, e)
    return twin


def without_version(twin: dict[str, Any] | None) -> dict[str, Any]:
    assert twin is not None
    return {k: v for k, v in twin.items() if k != "version"}


LINES = [{"line_id": None, "sku": "A", "qty": 1, "unit_price_minor": 100, "raw_status": None}]
HISTORY = [
    ev("CHANNEL", "PENDING_PAYMENT", 0, lines=LINES, amount_minor=100),
    ev("CHANNEL", "PAID", 1, lines=LINES, amount_minor=100),
    ev("OMS", "ALLOCATED", 2, warehouse="HZ1"),
    ev("WMS", "ALLOCATED", 3, warehouse="HZ1"),
    ev("WMS", "OUTBOUND", 30, warehouse="HZ1"),
    ev("CARRIER", "IN_TRANSIT", 60, tracking_no="SF1"),
    ev("CHANNEL", "OUTBOUND", 61, lines=LINES, amount_minor=100, tracking_no="SF1"),
    ev("CARRIER", "DELIVERED", 2000, tracking_no="SF1"),
]


def test_in_order_history_reaches_delivered() -> None:
    twin = fold(HISTORY)
    assert twin is not None
    assert twin["state"] == "DELIVERED"
    assert twin["systems"]["WMS"]["status"] == "OUTBOUND"
    assert twin["lines"] == LINES and twin["amount_minor"] == 100
    assert twin["created_at"] == T0 and twin["updated_at"] == T0 + timedelta(minutes=2000)


def test_duplicate_changes_nothing() -> None:
    twin = fold(HISTORY)
    again, changed = apply(twin, HISTORY[3])
    assert not changed and again == twin


def test_late_older_event_never_moves_back() -> None:
    twin = fold(HISTORY)
    late, changed = apply(twin, ev("WMS", "ALLOCATED", 10))
    assert not changed and late["state"] == "DELIVERED"


def test_channel_cancel_is_an_explicit_exit() -> None:
    twin = fold([*HISTORY[:4], ev("CHANNEL", "CANCELLED", 5)])
    assert twin is not None and twin["state"] == "CANCELLED"


def test_refund_then_warehouse_return_is_returned() -> None:
    twin = fold([*HISTORY, ev("CHANNEL", "REFUNDED", 3000), ev("WMS", "RETURNED", 3100)])
    assert twin is not None and twin["state"] == "RETURNED"


def test_subsystem_cancel_does_not_cancel_the_order() -> None:
    assert derive_state({"CHANNEL": {"status": "PAID"}, "WMS": {"status": "CANCELLED"}}) == "PAID"


@settings(max_examples=200, deadline=None)
@given(st.permutations(HISTORY), st.lists(st.sampled_from(HISTORY), max_size=5))
def test_any_arrival_order_with_duplicates_gives_the_same_twin(
    perm: list[dict[str, Any]], dups: list[dict[str, Any]]
) -> None:
    assert without_version(fold(perm + dups)) == without_version(fold(HISTORY))


def test_all_permutations_of_a_short_history() -> None:
    short = [HISTORY[1], HISTORY[4], ev("CHANNEL", "REFUNDED", 40)]
    finals = [without_version(fold(list(p))) for p in itertools.permutations(short)]
    assert all(f == finals[0] for f in finals)
    assert finals[0]["state"] == "REFUNDED"
