"""Kuaishou specifics: millisecond times, refunds on live and failed orders, privacy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.normalise.core import Outcome, normalise_record
from tests.helpers import CODEC, FP, fixture_json, raw_record


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("kuaishou", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def test_update_time_is_unix_milliseconds() -> None:
    doc = fixture_json("kuaishou", "paid.json")
    rec = _run(doc).orders[0].record
    ms = doc["orderBaseInfo"]["updateTime"]
    assert rec["event_time"] == datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


@pytest.mark.parametrize(
    ("status", "refund", "expected"),
    [
        (70, 60, "COMPLETED"),  # a refund on a successful order may be partial: the order goes on
        (40, 60, "OUTBOUND"),
        (80, 60, "REFUNDED"),  # the order failed and its money went back
        (80, 50, "CANCELLED"),  # refund still executing
        (80, 70, "CANCELLED"),  # refund failed
    ],
)
def test_only_a_succeeded_refund_of_a_failed_order_is_a_refund(status: int, refund: int, expected: str) -> None:
    doc = fixture_json("kuaishou", "paid.json")
    doc["orderBaseInfo"]["status"] = status
    doc["orderRefundList"] = [{"refundId": 1, "refundStatus": refund}]
    rec = _run(doc).orders[0].record
    assert (rec["status"], rec["raw_status"]) == (expected, f"{status}/{refund}")


def test_the_latest_refund_comes_first() -> None:
    doc = fixture_json("kuaishou", "failed.json")
    doc["orderRefundList"] = [{"refundId": 2, "refundStatus": 60}, {"refundId": 1, "refundStatus": 70}]
    assert _run(doc).orders[0].record["raw_status"] == "80/60"


def test_goods_code_is_the_sku_when_sku_nick_is_empty() -> None:
    doc = fixture_json("kuaishou", "paid.json")
    doc["orderItemInfo"]["skuNick"] = ""
    assert _run(doc).orders[0].record["lines"][0]["sku"] == "TSHIRT"


def test_no_personal_data_on_the_canonical_event() -> None:
    doc = fixture_json("kuaishou", "paid.json")
    out = _run(doc).orders[0]
    assert out.record["address_fp"]
    addr = doc["orderAddress"]
    for needle in ("张**", "138****1234", "文一西路", addr["encryptedMobile"], doc["orderBaseInfo"]["buyerOpenId"]):
        assert needle.encode() not in out.value
