"""PDD specifics: the order_status x refund_status x confirm_status combinations, deposits, privacy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.normalise.core import Outcome, normalise_record
from streams.normalise.sources.pdd import PDD_STATUS
from tests.helpers import CODEC, FP, fixture_json, raw_record


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("pdd", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def _order(order_status: int, refund_status: int, confirm_status: int = 1) -> dict[str, Any]:
    doc = fixture_json("pdd", "status_1_refund_1.json")
    doc["order_status"], doc["refund_status"], doc["confirm_status"] = order_status, refund_status, confirm_status
    return dict(doc)


def test_every_documented_combination_is_modelled() -> None:
    assert set(PDD_STATUS) == {f"{s}/{r}" for s in (1, 2, 3) for r in (1, 2, 3, 4)}


# Independent statement of the rules: an after-sale/refund in progress keeps the shipping
# state and shows in raw_status; a successful refund ends the order as REFUNDED.
@pytest.mark.parametrize(
    ("order_status", "refund_status", "expected"),
    [
        (1, 1, "PAID"),
        (1, 2, "PAID"),
        (1, 3, "PAID"),
        (1, 4, "REFUNDED"),
        (2, 1, "OUTBOUND"),
        (2, 3, "OUTBOUND"),
        (2, 4, "REFUNDED"),
        (3, 1, "DELIVERED"),
        (3, 2, "DELIVERED"),
        (3, 4, "REFUNDED"),
    ],
)
def test_refund_combinations(order_status: int, refund_status: int, expected: str) -> None:
    rec = _run(_order(order_status, refund_status)).orders[0].record
    assert (rec["status"], rec["raw_status"]) == (expected, f"{order_status}/{refund_status}/1")


@pytest.mark.parametrize(("confirm_status", "expected"), [(0, "PENDING_PAYMENT"), (2, "CANCELLED")])
def test_an_order_that_is_no_deal_wins_over_shipping_and_refund(confirm_status: int, expected: str) -> None:
    rec = _run(_order(1, 4, confirm_status)).orders[0].record
    assert (rec["status"], rec["raw_status"]) == (expected, f"1/4/{confirm_status}")


def test_a_fully_paid_deposit_is_not_shippable_before_the_deal_is_confirmed() -> None:
    doc = fixture_json("pdd", "deposit_step_2.json")
    assert _run(doc).orders[0].record["status"] == "PAID"
    doc["confirm_status"] = 0
    assert _run(doc).orders[0].record["status"] == "PENDING_PAYMENT"


def test_a_shipped_deposit_order_stays_shipped() -> None:
    doc = fixture_json("pdd", "deposit_step_1.json")
    doc["order_status"] = 2
    rec = _run(doc).orders[0].record
    assert (rec["status"], rec["raw_status"]) == ("OUTBOUND", "2/1/1/1")


def test_codes_given_as_digit_strings_are_read_as_numbers() -> None:
    doc = _order(2, 3)
    doc["order_status"], doc["refund_status"], doc["confirm_status"] = "2", "3", "1"
    assert _run(doc).orders[0].record["raw_status"] == "2/3/1"


def test_no_personal_data_on_the_canonical_event() -> None:
    doc = fixture_json("pdd", "status_1_refund_1.json")
    out = _run(doc).orders[0]
    assert out.record["address_fp"]
    for needle in ("张**", "138****1234", "文一西路", doc["receiver_name"], doc["receiver_phone"], doc["address"]):
        assert needle.encode() not in out.value
