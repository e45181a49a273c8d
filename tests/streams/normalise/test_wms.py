"""WMS (Qimen) specifics: stock golden payloads, movement signs and sums, merged delivery
orders, exceptions, address comparability with the channel, fuzzing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import Outcome, normalise_record
from streams.normalise.sources import wms
from tests.helpers import CODEC, FIXTURES, FP, fixture_bytes, fixture_json, raw_record

STOCK_EXPECTED = json.loads((FIXTURES / "wms" / "expected_inventory.json").read_text())


def _run(doc: dict[str, Any] | bytes, source: str = "wms") -> Outcome:
    value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return normalise_record(raw_record(source, value), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)


def _orders(doc: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = _run(doc)
    assert outcome.rejection is None, outcome.rejection
    return [o.record for o in outcome.orders]


def _stock(doc: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = _run(doc)
    assert outcome.rejection is None, outcome.rejection
    return [o.record for o in outcome.inventory]


def _reason(doc: dict[str, Any]) -> str:
    outcome = _run(doc)
    assert outcome.rejection is not None and not outcome.orders and not outcome.inventory
    return outcome.rejection.reason


# --- stock golden payloads (the generic golden test's contract, for InventoryEvents) ----------


def _matches(expected: Any, actual: Any, path: str) -> None:
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            _matches(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _matches(e, a, f"{path}[{i}]")
    elif isinstance(actual, datetime):
        assert actual == datetime.fromisoformat(expected), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("name", sorted(STOCK_EXPECTED))
def test_stock_golden_payload(name: str) -> None:
    spec = STOCK_EXPECTED[name]
    outcome = _run(fixture_bytes("wms", name))
    assert outcome.rejection is None, outcome.rejection
    assert not outcome.orders
    decoded = [CODEC.decode_as("InventoryEvent", out.value) for out in outcome.inventory]
    assert len(decoded) == len(spec["events"])
    for i, (exp, got, out) in enumerate(zip(spec["events"], decoded, outcome.inventory, strict=True)):
        _matches(exp, got, f"{name}[{i}]")
        assert out.key == got["sku"].encode() and got["event_id"] and got["source"] == "wms"


def test_stock_fixtures_cover_every_stock_table_value() -> None:
    covered: dict[str, set[str]] = {}
    for spec in STOCK_EXPECTED.values():
        for table, values in spec["covers"].items():
            covered.setdefault(table, set()).update(values)
    for table, mapping in wms.STOCK_TABLES.items():
        missing = set(map(str, mapping)) - covered.get(table, set())
        assert not missing, f"wms.{table}: no golden payload for {sorted(missing)}"


def test_every_qimen_method_is_mapped_exactly_once() -> None:
    assert not set(wms.WMS_ORDER_MESSAGE) & set(wms.WMS_STOCK_MESSAGE)


# --- movement arithmetic ---------------------------------------------------------------------


def _one_move(order_type: str, quantity: int | str, **extra: Any) -> dict[str, Any]:
    item = {
        "warehouseCode": "HZ01",
        "orderCode": f"DOC-{order_type}",
        "orderType": order_type,
        "itemCode": "TSHIRT-WHT-M",
        "inventoryType": "ZP",
        "quantity": quantity,
        "changeTime": "2026-11-11 12:00:00",
        "extendProps": {"sourcePlatformCode": "TB", "sourceOrderCode": "3987215540123480001"},
        **extra,
    }
    return {"method": "stockchange.report", "request": {"items": {"item": [item]}}}


@pytest.mark.parametrize("order_type", sorted(wms.WMS_MOVEMENT_TYPE))
def test_movement_sign_follows_the_document_type(order_type: str) -> None:
    reason, sign, _ = wms.WMS_MOVEMENT_TYPE[order_type]
    allowed = [q for q in (-3, 3) if sign == 0 or q * sign > 0]
    for quantity in (-3, 3):
        doc = _one_move(order_type, quantity)
        if quantity in allowed:
            (event,) = _stock(doc)
            assert (event["quantity"], event["reason"], event["kind"]) == (quantity, reason, "MOVEMENT")
        else:
            assert _reason(doc) == "INVALID_VALUE"
    assert _reason(_one_move(order_type, 0)) == "INVALID_VALUE"


def test_outbound_is_negative_and_returns_are_positive() -> None:
    for order_type, (reason, sign, _) in wms.WMS_MOVEMENT_TYPE.items():
        if reason in ("OUTBOUND", "TRANSFER_OUT"):
            assert sign == -1, order_type
        if reason in ("RECEIPT", "RETURN", "TRANSFER_IN"):
            assert sign == 1, order_type


def test_batches_of_one_document_are_summed_and_cancelling_batches_emit_nothing() -> None:
    doc = _one_move("ZTTZ", -4)
    item = doc["request"]["items"]["item"][0]
    doc["request"]["items"]["item"] = [item, dict(item, quantity=4, batchCode="B2"), dict(item, itemCode="SOCKS-5P")]
    (event,) = _stock(doc)  # TSHIRT -4 +4 cancels out; SOCKS -4 remains
    assert (event["sku"], event["quantity"]) == ("SOCKS-5P", -4)


def test_movement_ids_do_not_depend_on_item_order() -> None:
    doc = fixture_json("wms", "stockchange_every_type.json")
    first = {e["event_id"] for e in _stock(doc)}
    doc["request"]["items"]["item"].reverse()
    assert {e["event_id"] for e in _stock(doc)} == first


def test_an_order_linked_move_needs_its_channel_order() -> None:
    doc = _one_move("JYCK", -1)
    del doc["request"]["items"]["item"][0]["extendProps"]
    assert _reason(doc) == "MISSING_FIELD"
    assert _stock(_one_move("CGRK", 5, extendProps=None))[0]["quantity"] == 5  # receipts name no order


def test_an_outbound_move_carries_its_order_id() -> None:
    (event,) = _stock(_one_move("JYCK", -1))
    assert CODEC.decode_as("InventoryEvent", CODEC.encode("InventoryEvent", event))["order_id"] == (
        "taobao:3987215540123480001"
    )


def test_snapshot_is_unfrozen_plus_frozen_stock_summed_over_batches_of_sellable_stock_only() -> None:
    events = {(e["warehouse"], e["sku"]): e for e in _stock(fixture_json("wms", "inventory_query_snapshot.json"))}
    assert events[("HZ01", "TSHIRT-WHT-M")]["quantity"] == 118 + 2 + 30  # the CC row (5) is not on hand
    assert events[("HZ01", "SOCKS-5P")]["quantity"] == 64 + 1  # no inventoryType means ZP
    assert all(e["kind"] == "SNAPSHOT" and e["reason"] == "SNAPSHOT" for e in events.values())


def test_snapshot_time_is_the_query_time() -> None:
    doc = fixture_json("wms", "inventory_query_snapshot.json")
    del doc["timestamp"]
    assert _reason(doc) == "MISSING_FIELD"


# --- order messages ------------------------------------------------------------------------------


def test_merged_delivery_order_gives_one_event_per_channel_order_with_its_lines() -> None:
    a, b = _orders(fixture_json("wms", "deliveryorder_confirm_merged.json"))
    assert [ln["sku"] for ln in a["lines"]] == ["TSHIRT-WHT-M", "SOCKS-5P"]
    assert [ln["sku"] for ln in b["lines"]] == ["CAP-BLK"]
    assert a["tracking_no"] == b["tracking_no"] == "SF1400000000030"


def test_merged_delivery_order_with_an_unattributed_line_reports_no_lines() -> None:
    doc = fixture_json("wms", "deliveryorder_confirm_merged.json")
    del doc["request"]["orderLines"][0]["sourceOrderCode"]
    events = _orders(doc)
    assert len(events) == 2
    assert all(e["lines"] == [] and e["lines_fp"] is None and e["status"] == "OUTBOUND" for e in events)


def test_documented_qimen_fields_stand_in_for_extend_props() -> None:
    (event,) = _orders(fixture_json("wms", "deliveryorder_query_address.json"))  # no extendProps at all
    assert event["order_id"] == "jd:301123500020"


def test_partial_shipment_confirm_is_partial() -> None:
    doc = fixture_json("wms", "deliveryorder_confirm_delivered.json")
    doc["request"]["deliveryOrder"]["confirmType"] = 1  # 中间状态确认
    assert _orders(doc)[0]["partial"] is True
    assert _orders(fixture_json("wms", "deliveryorder_confirm_delivered.json"))[0]["partial"] is False


@pytest.mark.parametrize("status", ["EXCEPTION", "CANCELEDFAIL"])
def test_warehouse_exceptions_keep_the_allocated_floor(status: str) -> None:
    for name, path in (
        ("orderprocess_pick.json", ("process", "processStatus")),
        ("deliveryorder_confirm_new.json", None),
    ):
        doc = fixture_json("wms", name)
        if path:
            doc["request"][path[0]][path[1]] = status
        else:
            doc["request"]["deliveryOrder"]["status"] = status
        (event,) = _orders(doc)
        assert (event["status"], event["raw_status"]) == ("ALLOCATED", status)


@pytest.mark.parametrize("status", sorted(wms.WMS_UNMAPPED_STATUS))
def test_unmapped_statuses_are_rejected_with_their_reason(status: str) -> None:
    doc = fixture_json("wms", "orderprocess_pick.json")
    doc["request"]["process"]["processStatus"] = status
    outcome = _run(doc)
    assert outcome.rejection is not None and outcome.rejection.reason == "UNSUPPORTED"
    assert wms.WMS_UNMAPPED_STATUS[status] in outcome.rejection.message
    doc = fixture_json("wms", "deliveryorder_confirm_new.json")
    doc["request"]["deliveryOrder"]["status"] = status
    assert _reason(doc) == "UNSUPPORTED"


def test_interception_at_the_carrier_cancels_and_a_failed_one_stays_outbound() -> None:
    assert _orders(fixture_json("wms", "orderprocess_tmscanceled.json"))[0]["status"] == "CANCELLED"
    assert _orders(fixture_json("wms", "orderprocess_tmscancelfailed.json"))[0]["status"] == "OUTBOUND"


def test_short_return_is_partial_and_lists_what_came_back() -> None:
    (event,) = _orders(fixture_json("wms", "returnorder_confirm_hhrk.json"))
    assert event["status"] == "RETURNED" and event["partial"] is True
    assert [(ln["sku"], ln["qty"]) for ln in event["lines"]] == [("TSHIRT-WHT-M", 1)]
    assert event["tracking_no"] is None  # the return parcel is not the order's shipment


def test_method_prefix_is_optional() -> None:
    doc = fixture_json("wms", "orderprocess_pick.json")
    with_prefix = _orders(doc)
    doc["method"] = "orderprocess.report"
    assert _orders(doc) == with_prefix


def test_wms_address_fingerprint_equals_the_channel_fingerprint_of_the_same_address() -> None:
    channel = _run(fixture_bytes("taobao", "wait_seller_send_goods.json"), source="taobao").orders[0].record
    (warehouse,) = _orders(fixture_json("wms", "deliveryorder_confirm_delivered.json"))
    assert warehouse["address_fp"] == channel["address_fp"] is not None
    doc = fixture_json("wms", "deliveryorder_confirm_delivered.json")
    doc["request"]["deliveryOrder"]["receiverInfo"]["oaid"] = "2AnotherAddressIdAfterTheBuyerChangedIt"
    assert _orders(doc)[0]["address_fp"] != channel["address_fp"]


def test_no_personal_data_on_the_canonical_event() -> None:
    outcome = _run(fixture_bytes("wms", "deliveryorder_confirm_delivered.json"))
    for needle in ("张**", "138****1234", "文一西路", "杭州市", "1ZrgKXzYqfDXg8a9"):
        assert needle.encode() not in outcome.orders[0].value


def test_same_fact_twice_has_the_same_event_id() -> None:
    first = _orders(fixture_json("wms", "orderprocess_pick.json"))[0]["event_id"]
    assert _orders(fixture_json("wms", "orderprocess_pick.json"))[0]["event_id"] == first
    doc = fixture_json("wms", "orderprocess_pick.json")
    doc["request"]["process"]["processStatus"] = "PACKAGE"
    assert _orders(doc)[0]["event_id"] != first


# --- fuzzing ---------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "deliveryOrder",
    "deliveryOrderCode",
    "warehouseCode",
    "orderType",
    "status",
    "confirmType",
    "operateTime",
    "orderConfirmTime",
    "logisticsCode",
    "expressCode",
    "receiverInfo",
    "oaid",
    "packages",
    "package",
    "orderLines",
    "orderLine",
    "itemCode",
    "planQty",
    "actualQty",
    "sourceOrderCode",
    "sourcePlatformCode",
    "extendProps",
    "order",
    "orderCode",
    "process",
    "processStatus",
    "returnOrder",
    "returnOrderCode",
    "items",
    "item",
    "inventoryType",
    "quantity",
    "lockQuantity",
    "changeTime",
    "checkOrderCode",
    "checkTime",
    "adjustType",
    "flag",
]
NESTED = st.recursive(
    JSON,
    lambda children: st.dictionaries(st.sampled_from(FIELDS), children, max_size=6) | st.lists(children, max_size=3),
    max_leaves=25,
)
METHODS = st.sampled_from([*wms.WMS_ORDER_MESSAGE, *wms.WMS_STOCK_MESSAGE, "taobao.qimen.entryorder.confirm", 7])


@settings(max_examples=400, deadline=None)
@given(METHODS, st.sampled_from(["request", "response"]), NESTED, JSON)
def test_arbitrary_json_never_crashes(method: object, part: str, body: object, timestamp: object) -> None:
    outcome = _run({"method": method, part: body, "timestamp": timestamp})
    assert (outcome.rejection is None) != (not outcome.orders and not outcome.inventory)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message


GOLDEN = sorted(p.name for p in (FIXTURES / "wms").glob("*.json") if not p.name.startswith(("bad_", "expected")))


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A golden message with one to three fields (at any depth) replaced or dropped."""
    doc: dict[str, Any] = fixture_json("wms", draw(st.sampled_from(GOLDEN)))
    for _ in range(draw(st.integers(1, 3))):
        target: Any = doc
        while True:
            if isinstance(target, list) and target:
                target = target[draw(st.integers(0, len(target) - 1))]
            elif isinstance(target, dict) and target and draw(st.booleans()):
                child = target[draw(st.sampled_from(sorted(target)))]
                if not isinstance(child, (dict, list)) or not child:
                    break
                target = child
            else:
                break
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            if draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(JSON)
    return doc


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_mutated_golden_messages_never_crash(doc: dict[str, Any]) -> None:
    outcome = _run(doc)
    assert (outcome.rejection is None) != (not outcome.orders and not outcome.inventory)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message
