"""The live inventory scenario's raw records normalise to the facts it intends (no Kafka):
each sale is a PAID (then CANCELLED) order of its SKU and quantity, allocations and
deliveries are WMS facts of the right order, outbound moves name their order."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record
from tests.streams.inventory.scenario import Raw, build, channel_order, wms_snapshot

AT = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def normalised(raw: Raw) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rec = raw_record(raw.source, raw.value)
    outcome = normalise_record(rec, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
    assert outcome.rejection is None, (raw.source, outcome.rejection)
    orders = [CODEC.decode_as("OrderEvent", o.value) for o in outcome.orders]
    stock = [CODEC.decode_as("InventoryEvent", o.value) for o in outcome.inventory]
    return orders, stock


def test_every_scenario_record_normalises_to_what_it_means() -> None:
    scenario = build(seed=3)
    assert set(scenario.oversold()) == {"INV-OVER", "INV-HEAL"} and scenario.oversold()["INV-HEAL"]
    for sale in scenario.sales:
        (paid,), _ = normalised(channel_order(sale, "paid", AT))
        assert (paid["order_id"], paid["status"], paid["event_time"]) == (sale.order_id, "PAID", AT)
        assert [(ln["sku"], ln["qty"]) for ln in paid["lines"]] == [(sale.sku, sale.qty)]
        for raw in scenario.follow_up(sale, AT):
            orders, stock = normalised(raw)
            for event in orders:
                assert event["order_id"] == sale.order_id
                assert event["status"] in ("ALLOCATED", "OUTBOUND", "CANCELLED")
            for move in stock:
                assert (move["order_id"], move["quantity"], move["reason"]) == (sale.order_id, -sale.qty, "OUTBOUND")
    _, counts = normalised(wms_snapshot(scenario.stock, AT))
    assert {(c["sku"], c["quantity"]) for c in counts} == set(scenario.stock.items())
