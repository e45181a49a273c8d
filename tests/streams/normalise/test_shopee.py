"""Shopee specifics: push vs detail shapes, currencies with and without minor units."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.normalise.core import Outcome, normalise_record
from tests.helpers import CODEC, FP, fixture_json, raw_record


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("shopee", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def test_push_and_detail_of_the_same_change_are_the_same_fact() -> None:
    push = _run(fixture_json("shopee", "push_shipped.json")).orders[0].record
    detail = _run(fixture_json("shopee", "shipped.json")).orders[0].record
    assert push["order_id"] == detail["order_id"]
    assert push["event_id"] == detail["event_id"]
    assert (push["status"], push["raw_status"], push["event_time"]) == (
        detail["status"],
        detail["raw_status"],
        detail["event_time"],
    )


def test_a_status_push_carries_no_lines_amount_or_address() -> None:
    rec = _run(fixture_json("shopee", "push_completed.json")).orders[0].record
    assert rec["lines"] == [] and rec["lines_fp"] is None
    assert rec["amount_minor"] is None and rec["currency"] is None and rec["address_fp"] is None


@pytest.mark.parametrize("code", [0, 4, 5, 15, "3x"])
def test_other_pushes_are_not_order_status_facts(code: object) -> None:
    push = fixture_json("shopee", "push_shipped.json")
    push["code"] = code
    outcome = _run(push)
    assert outcome.rejection is not None and outcome.rejection.reason in ("UNSUPPORTED", "WRONG_TYPE")


@pytest.mark.parametrize(
    ("currency", "total", "price", "expected_total", "expected_price"),
    [
        ("SGD", 35.8, 12.9, 3580, 1290),
        ("MYR", 35.8, 12.9, 3580, 1290),
        ("PHP", 1790.0, 695.5, 179000, 69550),
        ("TWD", 590.0, 199.0, 59000, 19900),
        ("IDR", 259000.0, 89000.0, 259000, 89000),  # no minor unit
        ("VND", 399000.0, 150000.0, 399000, 150000),  # no minor unit
    ],
)
def test_money_is_exact_in_the_minor_unit_of_the_payload_currency(
    currency: str, total: float, price: float, expected_total: int, expected_price: int
) -> None:
    doc = fixture_json("shopee", "ready_to_ship.json")
    doc["currency"], doc["total_amount"] = currency, total
    doc["item_list"][0]["model_discounted_price"] = price
    rec = _run(doc).orders[0].record
    assert (rec["currency"], rec["amount_minor"], rec["lines"][0]["unit_price_minor"]) == (
        currency,
        expected_total,
        expected_price,
    )


def test_a_fraction_of_a_dong_is_refused_not_rounded() -> None:
    doc = fixture_json("shopee", "ready_to_ship_vnd.json")
    doc["item_list"][0]["model_discounted_price"] = 150000.5
    outcome = _run(doc)
    assert outcome.rejection is not None and outcome.rejection.reason == "INVALID_VALUE"


def test_item_sku_is_the_sku_of_an_item_without_variations() -> None:
    doc = fixture_json("shopee", "ready_to_ship.json")
    doc["item_list"][1]["model_sku"] = ""
    assert _run(doc).orders[0].record["lines"][1]["sku"] == "SOCKS"
