"""Douyin specifics: Unix-second times, amounts already in fen, closed orders, privacy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from streams.normalise.core import Outcome, normalise_record
from tests.helpers import CODEC, FP, fixture_json, raw_record


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("douyin", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def test_update_time_is_unix_seconds_read_as_utc() -> None:
    doc = fixture_json("douyin", "stocking.json")
    rec = _run(doc).orders[0].record
    assert rec["event_time"] == datetime(2026, 11, 11, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    assert rec["event_time"].utcoffset() == timedelta(0)
    assert rec["event_time"] == datetime.fromtimestamp(doc["update_time"], UTC)


def test_fen_amounts_stay_integers_and_yuan_strings_are_refused() -> None:
    doc = fixture_json("douyin", "stocking.json")
    rec = _run(doc).orders[0].record
    assert rec["amount_minor"] == doc["pay_amount"] == 25700
    assert [ln["unit_price_minor"] for ln in rec["lines"]] == [8900, 9000]
    doc["pay_amount"] = 257.5
    outcome = _run(doc)
    assert outcome.rejection is not None and outcome.rejection.reason == "WRONG_TYPE"


def test_a_closed_order_needs_main_status_to_tell_cancel_from_refund() -> None:
    doc = fixture_json("douyin", "refunded_after_shipping.json")
    assert _run(doc).orders[0].record["status"] == "REFUNDED"
    doc["main_status"] = 4
    assert _run(doc).orders[0].record["status"] == "CANCELLED"
    doc["main_status"] = ""
    outcome = _run(doc)
    assert outcome.rejection is not None and outcome.rejection.reason == "MISSING_FIELD"


def test_out_sku_id_is_the_sku_when_the_code_is_unset() -> None:
    doc = fixture_json("douyin", "stocking.json")
    doc["sku_order_list"][0]["code"] = ""
    doc["sku_order_list"][0]["out_sku_id"] = "TSHIRT-WHT-M-OUT"
    assert _run(doc).orders[0].record["lines"][0]["sku"] == "TSHIRT-WHT-M-OUT"


def test_parcels_of_several_tracking_numbers_are_not_one_tracking_number() -> None:
    doc = fixture_json("douyin", "shipped.json")
    parcel = dict(doc["logistics_info"][0])
    parcel["tracking_no"] = "YT8800000001"
    doc["logistics_info"].append(parcel)
    assert _run(doc).orders[0].record["tracking_no"] is None


def test_no_personal_data_on_the_canonical_event() -> None:
    doc = fixture_json("douyin", "stocking.json")
    out = _run(doc).orders[0]
    assert out.record["address_fp"]
    secret = (
        doc["mask_post_receiver"],
        doc["mask_post_tel"],
        "文一西路",
        doc["encrypt_post_tel"],
        doc["doudian_open_id"],
    )
    for needle in secret:
        assert needle.encode() not in out.value
