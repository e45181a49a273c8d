"""Shopify specifics: the financial x fulfillment x cancelled product, offsets, privacy."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from streams.normalise.core import Outcome, normalise_record
from streams.normalise.sources.shopify import (
    FINANCIAL_STATUSES,
    FULFILLMENT_STATUSES,
    SHOPIFY_STATUS,
    SHOPIFY_UNSUPPORTED,
)
from tests.helpers import CODEC, FP, fixture_json, raw_record

PRODUCT = {
    f"{fin}/{ful}" + ("/cancelled" if cancelled else "")
    for fin, ful, cancelled in itertools.product(FINANCIAL_STATUSES, FULFILLMENT_STATUSES, (False, True))
}


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("shopify", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def _order(combination: str) -> dict[str, Any]:
    fin, ful, *cancelled = combination.split("/")
    doc = fixture_json("shopify", "paid__null.json")
    doc["financial_status"] = fin
    doc["fulfillment_status"] = None if ful == "null" else ful
    doc["cancelled_at"] = "2026-11-12T09:00:00-05:00" if cancelled else None
    return dict(doc)


def test_every_combination_is_either_modelled_or_explicitly_unsupported() -> None:
    assert len(PRODUCT) == 7 * 4 * 2
    assert set(SHOPIFY_STATUS) | set(SHOPIFY_UNSUPPORTED) == PRODUCT
    assert not set(SHOPIFY_STATUS) & set(SHOPIFY_UNSUPPORTED)


@pytest.mark.parametrize("combination", sorted(SHOPIFY_UNSUPPORTED))
def test_unsupported_combinations_are_rejected_not_guessed(combination: str) -> None:
    outcome = _run(_order(combination))
    assert outcome.rejection is not None and outcome.rejection.reason == "UNSUPPORTED"
    assert combination in outcome.rejection.message


@pytest.mark.parametrize("combination", sorted(SHOPIFY_STATUS))
def test_modelled_combinations_map_with_their_raw_status(combination: str) -> None:
    rec = _run(_order(combination)).orders[0].record
    assert rec["raw_status"] == combination
    assert (rec["status"], rec["partial"]) == SHOPIFY_STATUS[combination]


def test_partially_refunded_keeps_the_order_going() -> None:
    rec = _run(fixture_json("shopify", "partially_refunded__fulfilled.json")).orders[0].record
    assert (rec["status"], rec["raw_status"]) == ("OUTBOUND", "partially_refunded/fulfilled")


def test_offsets_are_kept_as_instants() -> None:
    doc = fixture_json("shopify", "paid__null.json")
    a = _run(doc).orders[0].record["event_time"]
    doc["updated_at"] = "2026-11-11T00:05:00+08:00"  # the same instant, other offset
    assert _run(doc).orders[0].record["event_time"] == a


def test_tracking_ignores_cancelled_fulfilments_and_several_numbers_are_none() -> None:
    doc = fixture_json("shopify", "paid__fulfilled.json")
    good = doc["fulfillments"][0]["tracking_number"]
    cancelled = dict(doc["fulfillments"][0], status="cancelled", tracking_number="1ZCANCELLED", tracking_numbers=[])
    doc["fulfillments"].append(cancelled)
    assert _run(doc).orders[0].record["tracking_no"] == good
    doc["fulfillments"].append(dict(doc["fulfillments"][0], tracking_number="1ZSECOND", tracking_numbers=["1ZSECOND"]))
    assert _run(doc).orders[0].record["tracking_no"] is None


def test_no_personal_data_on_the_canonical_event() -> None:
    doc = fixture_json("shopify", "paid__null.json")
    out = _run(doc).orders[0]
    assert out.record["address_fp"]
    for needle in ("Jane", "Doe", "123 Main Street", "jane.doe@example.com", "555-0100", "Springfield", "62701"):
        assert needle.encode() not in out.value


def test_the_address_fingerprint_follows_the_shipping_address() -> None:
    doc = fixture_json("shopify", "paid__null.json")
    a = _run(doc).orders[0].record["address_fp"]
    doc["billing_address"]["address1"] = "789 Oak Street"  # billing is not where goods go
    assert _run(doc).orders[0].record["address_fp"] == a
    doc["shipping_address"]["address1"] = "456 Elm Street"
    assert _run(doc).orders[0].record["address_fp"] != a
