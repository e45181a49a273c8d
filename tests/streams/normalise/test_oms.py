"""OMS (旺店通) specifics beyond the golden payloads: merged/split ERP orders, exceptions, fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import Outcome, normalise_record
from streams.normalise.sources import oms
from tests.helpers import CODEC, FP, fixture_bytes, fixture_json, raw_record


def _run(doc: dict[str, Any] | bytes) -> Outcome:
    value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return normalise_record(raw_record("oms", value), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)


def _records(doc: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = _run(doc)
    assert outcome.rejection is None, outcome.rejection
    return [o.record for o in outcome.orders]


def test_merged_erp_order_gives_one_event_per_channel_order_with_its_own_lines() -> None:
    a, b = _records(fixture_json("oms", "merged_two_channel_orders.json"))
    assert (a["order_id"], b["order_id"]) == ("taobao:3987215540123460001", "taobao:3987215540123460002")
    assert [ln["sku"] for ln in a["lines"]] == ["TSHIRT-WHT-M", "SOCKS-5P"]
    assert [ln["sku"] for ln in b["lines"]] == ["CAP-BLK"]
    assert a["lines_fp"] != b["lines_fp"]
    assert a["event_id"] != b["event_id"]
    # The ERP's receivable covers both orders: not apportioned, not repeated.
    assert a["amount_minor"] is None and b["amount_minor"] is None
    assert not a["partial"] and not b["partial"]


def test_truncated_src_tids_still_reach_every_channel_order_named_by_a_line() -> None:
    doc = fixture_json("oms", "merged_two_channel_orders.json")
    doc["src_tids"] = "3987215540123460001"  # 过长将被裁剪: the ERP cut the list
    orders = [r["order_id"] for r in _records(doc)]
    assert orders == ["taobao:3987215540123460001", "taobao:3987215540123460002"]


def test_split_erp_order_is_partial_with_only_its_lines_and_no_amount() -> None:
    (event,) = _records(fixture_json("oms", "split_part.json"))
    assert event["partial"] is True
    assert [(ln["sku"], ln["qty"]) for ln in event["lines"]] == [("TSHIRT-WHT-M", 2)]
    assert event["amount_minor"] is None
    assert event["status"] == "OUTBOUND" and event["tracking_no"] == "JDVA10000000050"


def test_a_split_part_and_the_whole_order_fingerprint_their_lines_differently() -> None:
    (part,) = _records(fixture_json("oms", "split_part.json"))
    whole = fixture_json("oms", "split_part.json")
    whole["trade_mask"] = 0
    whole["detail_list"] = fixture_json("oms", "status_5.json")["detail_list"]
    for line in whole["detail_list"]:
        line["src_tid"] = whole["src_tids"]
    (full,) = _records(whole)
    assert part["lines_fp"] != full["lines_fp"] and not full["partial"]


def test_exception_order_keeps_the_paid_floor_and_shows_the_reason() -> None:
    doc = fixture_json("oms", "status_23.json")
    doc["bad_reason"] = 2 | 32  # 修改地址 + 更换货品
    (event,) = _records(doc)
    assert event["status"] == "PAID"
    assert event["raw_status"] == "23|bad_reason=34"


@pytest.mark.parametrize("status", sorted(oms.OMS_UNMAPPED_STATUS))
def test_unmapped_statuses_are_rejected_with_their_reason(status: int) -> None:
    doc = fixture_json("oms", "status_55.json")
    doc["trade_status"] = status
    outcome = _run(doc)
    assert outcome.rejection is not None and outcome.rejection.reason == "UNSUPPORTED"
    assert oms.OMS_UNMAPPED_STATUS[status] in outcome.rejection.message


def test_unmapped_and_mapped_statuses_do_not_overlap() -> None:
    assert not set(oms.OMS_UNMAPPED_STATUS) & set(oms.OMS_TRADE_STATUS)


def test_erp_added_gifts_are_left_out_of_the_channel_lines() -> None:
    (event,) = _records(fixture_json("oms", "gift_lines.json"))
    assert [ln["sku"] for ln in event["lines"]] == ["TSHIRT-WHT-M", "GIFT-PLATFORM", "MAIN-NEW", "MAIN-OLD"]


def test_same_fact_twice_has_the_same_event_id_and_a_new_status_a_new_one() -> None:
    first = _records(fixture_json("oms", "status_55.json"))[0]
    again = _records(fixture_json("oms", "status_55.json"))[0]
    doc = fixture_json("oms", "status_55.json")
    doc["trade_status"] = 95
    doc["modified"] = "2026-11-11 09:00:00"
    later = _records(doc)[0]
    assert first["event_id"] == again["event_id"] != later["event_id"]


def test_currency_is_cny_when_the_erp_leaves_it_empty_and_checked_otherwise() -> None:
    doc = fixture_json("oms", "status_30.json")
    assert _records(doc)[0]["currency"] == "CNY"
    doc["currency"] = "cny"
    assert _records(doc)[0]["currency"] == "CNY"
    doc["currency"] = "人民币"
    outcome = _run(doc)
    assert outcome.rejection is not None and outcome.rejection.reason == "INVALID_VALUE"


def test_no_personal_data_on_the_canonical_event() -> None:
    doc = fixture_json("oms", "status_55.json")
    doc.update(receiver_name="张**", receiver_mobile="138****1234", receiver_address="文一西路***号")
    out = _run(doc).orders[0]
    for needle in ("张**", "138****1234", "文一西路", "余杭区"):
        assert needle.encode() not in out.value


def test_untracked_platform_and_after_sales_orders_are_unsupported() -> None:
    assert _run(fixture_bytes("oms", "bad_platform_cross_border.json")).rejection.reason == "UNSUPPORTED"  # type: ignore[union-attr]
    assert _run(fixture_bytes("oms", "bad_after_sales_exchange.json")).rejection.reason == "UNSUPPORTED"  # type: ignore[union-attr]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
TRADE_KEYS = st.sampled_from(
    [
        "trade_no",
        "platform_id",
        "src_tids",
        "trade_status",
        "trade_type",
        "trade_mask",
        "bad_reason",
        "modified",
        "receivable",
        "currency",
        "warehouse_no",
        "logistics_no",
        "detail_list",
    ]
)
DETAIL_KEYS = st.sampled_from(["src_tid", "src_oid", "spec_no", "num", "order_price", "gift_type", "refund_status"])
DETAIL = st.dictionaries(DETAIL_KEYS, JSON, max_size=7)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TRADE_KEYS, JSON | st.lists(DETAIL, max_size=3), max_size=13))
def test_arbitrary_json_never_crashes(doc: dict[str, object]) -> None:
    outcome = _run(doc)
    assert (outcome.rejection is None) != (not outcome.orders)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(oms.OMS_TRADE_STATUS)), st.dictionaries(TRADE_KEYS, JSON, max_size=3))
def test_golden_order_with_fields_replaced_never_crashes(status: int, changes: dict[str, object]) -> None:
    doc = fixture_json("oms", f"status_{status}.json")
    doc.update(changes)
    outcome = _run(doc)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message
