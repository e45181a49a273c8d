"""Finance specifics: partial refunds, chargebacks, currency exponents, identity, fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import Outcome, normalise_record
from tests.helpers import CODEC, FP, fixture_bytes, fixture_json, raw_record


def _run(doc: dict[str, Any] | bytes, source: str = "finance") -> Outcome:
    value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return normalise_record(raw_record(source, value), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)


def _event(doc: dict[str, Any]) -> dict[str, Any]:
    outcome = _run(doc)
    assert outcome.rejection is None, outcome.rejection
    (out,) = outcome.orders
    return out.record


def _reason(doc: dict[str, Any]) -> str:
    outcome = _run(doc)
    assert outcome.rejection is not None
    return outcome.rejection.reason


def test_partial_refund_carries_the_refunded_amount_not_the_balance() -> None:
    event = _event(fixture_json("finance", "partial_refund.json"))
    assert (event["status"], event["partial"], event["amount_minor"]) == ("REFUNDED", True, 9000)


def test_partial_refund_without_order_amount_is_taken_as_declared() -> None:
    event = _event(fixture_json("finance", "partial_refund_no_order_amount.json"))
    assert event["partial"] is True and event["amount_minor"] == 3050


@pytest.mark.parametrize(("amount", "partial"), [("19.99", True), ("59.97", False)])
def test_chargeback_is_partial_only_when_it_reverses_less_than_the_order(amount: str, partial: bool) -> None:
    doc = fixture_json("finance", "chargeback_partial.json")
    doc["amount"] = amount
    event = _event(doc)
    assert (event["status"], event["partial"], event["raw_status"]) == ("REFUNDED", partial, "CHARGEBACK")


@pytest.mark.parametrize(
    ("biz", "amount", "order_amount", "reason"),
    [
        ("PARTIAL_REFUND", "257.00", "257.00", "INVALID_VALUE"),  # all of it is not partial
        ("REFUND_POSTED", "100.00", "257.00", "INVALID_VALUE"),  # a "full" refund of less
        ("REFUND_POSTED", "300.00", "257.00", "INVALID_VALUE"),  # more than was paid
        ("CHARGEBACK", "10.00", None, "MISSING_FIELD"),  # full or partial? not guessed
        ("PAYMENT_RECEIVED", "0.00", None, "INVALID_VALUE"),  # a posting moves money
    ],
)
def test_inconsistent_postings_are_rejected(biz: str, amount: str, order_amount: str | None, reason: str) -> None:
    doc = fixture_json("finance", "refund_posted.json")
    doc.update(biz_type=biz, amount=amount, order_amount=order_amount)
    assert _reason(doc) == reason


def test_payment_amount_is_comparable_with_the_channel_amount() -> None:
    channel = _run(fixture_bytes("taobao", "wait_seller_send_goods.json"), source="taobao").orders[0].record
    payment = _event(fixture_json("finance", "payment_received.json"))
    assert payment["order_id"] == channel["order_id"]
    assert (payment["amount_minor"], payment["currency"]) == (channel["amount_minor"], channel["currency"])


@pytest.mark.parametrize(
    ("currency", "amount", "minor"),
    [
        ("VND", "259000", 259000),
        ("JPY", "1200", 1200),
        ("USD", "19.99", 1999),
        ("SGD", "25.9", 2590),
        ("CNY", 257, 25700),
    ],
)
def test_minor_units_follow_the_currency(currency: str, amount: object, minor: int) -> None:
    doc = fixture_json("finance", "payment_received_sgd.json")
    doc.update(currency=currency, amount=amount)
    assert _event(doc)["amount_minor"] == minor


def test_amounts_finer_than_the_currency_allows_are_rejected() -> None:
    doc = fixture_json("finance", "chargeback_full_vnd.json")
    doc.update(amount="259000.5", order_amount="259000.5")
    assert _reason(doc) == "INVALID_VALUE"


def test_a_posting_is_identified_by_voucher_and_entry() -> None:
    first = _event(fixture_json("finance", "payment_received.json"))["event_id"]
    assert _event(fixture_json("finance", "payment_received.json"))["event_id"] == first
    doc = fixture_json("finance", "payment_received.json")
    doc["entry_no"] = 2
    assert _event(doc)["event_id"] != first


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "voucher_no",
        "entry_no",
        "biz_type",
        "channel",
        "platform_order_no",
        "amount",
        "currency",
        "posted_at",
        "order_amount",
        "pay_provider",
        "refund_no",
    ]
)
PLAUSIBLE = st.sampled_from(
    [
        "PAYMENT_RECEIVED",
        "CHARGEBACK",
        "PARTIAL_REFUND",
        "taobao",
        "shopee",
        "CNY",
        "VND",
        "1.00",
        "2026-11-11 00:00:00",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, JSON | PLAUSIBLE, max_size=11))
def test_arbitrary_json_never_crashes(doc: dict[str, object]) -> None:
    outcome = _run(doc)
    assert (outcome.rejection is None) != (not outcome.orders)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["payment_received.json", "partial_refund.json", "chargeback_partial.json"]),
    st.dictionaries(KEYS, JSON, max_size=3),
)
def test_golden_posting_with_fields_replaced_never_crashes(name: str, changes: dict[str, object]) -> None:
    doc = fixture_json("finance", name)
    doc.update(changes)
    outcome = _run(doc)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message
