"""JD specifics beyond the golden payloads: privacy, tracking numbers, SKU fallback, event ids."""

from __future__ import annotations

import json
from typing import Any

from streams.normalise.core import Outcome, normalise_record
from tests.helpers import CODEC, FP, fixture_bytes, fixture_json, raw_record


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("jd", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def test_no_personal_data_on_the_canonical_event() -> None:
    doc = fixture_json("jd", "wait_seller_stock_out.json")
    out = _run(doc).orders[0]
    assert out.record["address_fp"]
    for needle in ("张*", "138****1234", "文一西路", "五常街道", doc["open_id_buyer"]):
        assert needle.encode() not in out.value


def test_the_address_fingerprint_follows_the_address() -> None:
    doc = fixture_json("jd", "wait_seller_stock_out.json")
    a = _run(doc).orders[0].record["address_fp"]
    doc["consigneeInfo"]["fullAddress"] = "浙江杭州市西湖区文三路***"
    doc["consigneeInfo"]["countyId"] = "3412"
    assert a != _run(doc).orders[0].record["address_fp"]


def test_waybills_of_several_parcels_are_not_one_tracking_number() -> None:
    doc = fixture_json("jd", "wait_goods_receive_confirm.json")
    assert _run(doc).orders[0].record["tracking_no"] == doc["waybill"]
    for waybill in ("SF1401|JDVA0002", "SF1401,SF1402"):
        doc["waybill"] = waybill
        assert _run(doc).orders[0].record["tracking_no"] is None


def test_product_no_is_the_sku_when_the_outer_sku_id_is_missing() -> None:
    doc = fixture_json("jd", "wait_seller_stock_out.json")
    doc["itemInfoList"][0]["outerSkuId"] = ""
    assert [ln["sku"] for ln in _run(doc).orders[0].record["lines"]] == ["TSHIRT", "SOCKS-5P"]


def test_same_fact_twice_has_the_same_event_id_and_a_new_state_a_new_one() -> None:
    raw = fixture_bytes("jd", "wait_seller_stock_out.json")
    run = lambda value: normalise_record(raw_record("jd", value), codec=CODEC, fingerprint=FP, max_bytes=10**6)  # noqa: E731
    a, b = run(raw).orders[0].record, run(raw).orders[0].record
    doc = json.loads(raw)
    doc["orderState"], doc["modified"] = "WAIT_GOODS_RECEIVE_CONFIRM", "2026-11-11 18:20:00"
    assert a["event_id"] == b["event_id"] != _run(doc).orders[0].record["event_id"]
