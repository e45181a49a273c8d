"""Taobao specifics beyond the golden payloads: privacy, event ids, malformed values, fuzzing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, fixture_bytes, fixture_json, raw_record


def _run(value: bytes):  # type: ignore[no-untyped-def]
    return normalise_record(raw_record("taobao", value), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)


def test_no_personal_data_on_the_canonical_event() -> None:
    out = _run(fixture_bytes("taobao", "wait_seller_send_goods.json")).orders[0]
    for needle in ("张**", "138****1234", "文一西路", "杭州市"):
        assert needle.encode() not in out.value


def test_same_fact_twice_has_the_same_event_id_and_a_new_status_a_new_one() -> None:
    a = _run(fixture_bytes("taobao", "wait_seller_send_goods.json")).orders[0].record
    b = _run(fixture_bytes("taobao", "wait_seller_send_goods.json")).orders[0].record
    doc = fixture_json("taobao", "wait_seller_send_goods.json")
    doc["status"] = "WAIT_BUYER_CONFIRM_GOODS"
    doc["modified"] = "2026-11-11 09:00:00"
    c = _run(json.dumps(doc).encode()).orders[0].record
    assert a["event_id"] == b["event_id"] != c["event_id"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "INVALID_JSON"),
        (b"\xff\xfe", "INVALID_JSON"),
        (b"[1,2]", "NOT_AN_OBJECT"),
        (None, "NOT_AN_OBJECT"),
        (b"{}", "MISSING_FIELD"),
        (
            b'{"tid": 1, "status": "WAIT_SELLER_SEND_GOODS", "modified": "2026-11-11 00:00:00",'
            b' "payment": "1.00", "orders": {"order": "x"}}',
            "WRONG_TYPE",
        ),
    ],
)
def test_malformed_values(value: bytes | None, reason: str) -> None:
    outcome = _run(value)  # type: ignore[arg-type]
    assert outcome.rejection is not None and outcome.rejection.reason == reason


def test_oversize_and_unknown_source() -> None:
    big = normalise_record(raw_record("taobao", b" " * 100), codec=CODEC, fingerprint=FP, max_bytes=10)
    assert big.rejection is not None and big.rejection.reason == "OVERSIZE"
    unk = normalise_record(raw_record(None, b"{}", topic="raw.nowhere"), codec=CODEC, fingerprint=FP, max_bytes=10)
    assert unk.rejection is not None and unk.rejection.reason == "UNKNOWN_SOURCE"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=30,
)
TRADE_KEYS = st.sampled_from(["tid", "status", "modified", "payment", "orders", "step_trade_status", "oaid"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TRADE_KEYS, JSON, max_size=7))
def test_arbitrary_json_never_crashes(doc: dict[str, object]) -> None:
    outcome = _run(json.dumps(doc).encode())
    assert (outcome.rejection is None) != (not outcome.orders)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message
