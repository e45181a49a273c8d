"""Taobao mapping over golden TOP payloads: every status value, presale, and rejections."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import normalise_record
from streams.normalise.sources.taobao import TAOBAO_STATUS
from tests.helpers import CODEC, FP, NOW, fixture_bytes, fixture_json, raw_record

EXPECTED = fixture_json("taobao", "expected.json")
REJECTED = fixture_json("taobao", "rejected.json")


def _run(value: bytes):  # type: ignore[no-untyped-def]
    return normalise_record(raw_record("taobao", value), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)


def test_fixtures_cover_every_status_value() -> None:
    covered = {exp["raw_status"].split("/")[0] for exp in EXPECTED.values()}
    assert covered == set(TAOBAO_STATUS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_payload_maps_to_expected_event(name: str) -> None:
    exp = EXPECTED[name]
    outcome = _run(fixture_bytes("taobao", name))
    assert outcome.rejection is None
    assert len(outcome.orders) == 1 and not outcome.inventory
    out = outcome.orders[0]
    assert out.key == exp["order_id"].encode()
    # What went on the wire decodes back to the expected canonical event.
    _, ev = CODEC.decode(out.value)
    assert ev["order_id"] == exp["order_id"]
    assert ev["channel"] == ev["source"] == "taobao"
    assert ev["system"] == "CHANNEL"
    assert ev["status"] == exp["status"]
    assert ev["raw_status"] == exp["raw_status"]
    assert ev["partial"] is exp["partial"]
    assert ev["amount_minor"] == exp["amount_minor"] and ev["currency"] == "CNY"
    assert ev["event_time"] == datetime.fromisoformat(exp["event_time"])
    assert ev["ingest_time"] == NOW
    assert [ln["sku"] for ln in ev["lines"]] == exp["skus"]
    assert [ln["qty"] for ln in ev["lines"]] == exp["qty"]
    assert [ln["unit_price_minor"] for ln in ev["lines"]] == exp["unit_price_minor"]
    assert ev["address_fp"] and ev["lines_fp"]
    assert ev["raw_topic"] == "raw.taobao" and ev["raw_offset"] == 0


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


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_bad_payloads_are_rejected_with_a_reason(name: str) -> None:
    outcome = _run(fixture_bytes("taobao", name))
    assert not outcome.orders
    assert outcome.rejection is not None
    assert outcome.rejection.reason == REJECTED[name]
    assert outcome.rejection.message


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
