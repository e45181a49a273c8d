"""Douyin shop (抖店开放平台) orders -> OrderEvent.

Accepted shape: ONE shop order (店铺单) as 抖店 returns it, i.e. an element of
``order.searchList`` (``data.shop_order_list[]``) or the ``data.shop_order_detail`` of
``order.orderDetail`` (same fields). Fields used: ``order_id``, ``order_status``,
``main_status`` (for closed orders), ``update_time`` (Unix seconds), ``pay_amount`` (fen,
integer), ``sku_order_list[]`` (``code``/``out_sku_id``, ``item_num``, ``origin_amount``
fen, ``order_id``, ``order_status``), ``post_addr``/``mask_post_addr`` region ids and masked
detail, and ``logistics_info[].tracking_no``.

Payment is reported apart from the status (``pay_type``, ``pay_time``): ``order_status`` 1
covers both 待支付 (online payment) and 待确认 (cash on delivery, ``pay_type`` 0); neither may
be shipped, so both are PENDING_PAYMENT. A confirmed COD order goes to 2 备货中 unpaid and
is PAID in the canonical sense (to be fulfilled), as JD and Taobao COD orders are.
``raw_status`` is ``order_status``, or ``order_status/main_status`` for closed (4) orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import (
    INVALID_VALUE,
    MISSING_FIELD,
    UNKNOWN_STATUS,
    Context,
    RawRecord,
    Reject,
    event_id,
)

SOURCE = "douyin"

# 抖店 order.searchList / order.orderDetail, ShopOrder.order_status ("订单状态1 待确认/待支付
# （订单创建完毕）105 已支付 2 备货中 101 部分发货 3 已发货（全部发货）4 已取消 5 已完成（已收货）")
# -> (canonical status, partial?). 4 is refined by DOUYIN_CLOSED_MAIN_STATUS.
DOUYIN_ORDER_STATUS: dict[str, tuple[str, bool]] = {
    "1": ("PENDING_PAYMENT", False),  # 待确认/待支付
    "105": ("PAID", False),  # 已支付 (risk review may hold it before 备货中)
    "2": ("PAID", False),  # 备货中: to be shipped
    "101": ("OUTBOUND", True),  # 部分发货
    "3": ("OUTBOUND", False),  # 已发货（全部发货）
    "4": ("CANCELLED", False),  # 已取消 (see below)
    "5": ("COMPLETED", False),  # 已完成（已收货）
}

# Same APIs, ShopOrder.main_status of a closed order (order_status 4): "4 已取消, 21 发货前
# 退款完结, 22 发货后退款完结, 39 收货后退款完结". Tells a cancellation before payment from
# an order closed by a full refund. Whether goods came back is the WMS's fact, not ours.
DOUYIN_CLOSED_MAIN_STATUS: dict[str, str] = {
    "4": "CANCELLED",
    "21": "REFUNDED",
    "22": "REFUNDED",
    "39": "REFUNDED",
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {
    "DOUYIN_ORDER_STATUS": DOUYIN_ORDER_STATUS,
    "DOUYIN_CLOSED_MAIN_STATUS": DOUYIN_CLOSED_MAIN_STATUS,
}


def _code(doc: Mapping[str, Any], name: str) -> str:
    value = f.strict_int(doc, name)
    assert value is not None
    return str(value)


def _status(order: Mapping[str, Any]) -> tuple[str, bool, str]:
    code = _code(order, "order_status")
    if code not in DOUYIN_ORDER_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Douyin order_status {code!r:.60}")
    status, partial = DOUYIN_ORDER_STATUS[code]
    if code != "4":
        return status, partial, code
    if order.get("main_status") in (None, ""):
        raise Reject(MISSING_FIELD, "field 'main_status' is missing (needed to tell a cancel from a refund)")
    main = _code(order, "main_status")
    if main not in DOUYIN_CLOSED_MAIN_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Douyin main_status {main!r:.60} for a closed order")
    return DOUYIN_CLOSED_MAIN_STATUS[main], False, f"{code}/{main}"


def _sku(item: Mapping[str, Any], i: int) -> str:
    # code: 商家编码 of the SKU; out_sku_id: 外部SkuId. Douyin returns "" or "0" when unset.
    for name in ("code", "out_sku_id"):
        value = f.text(item, name, required=False)
        if value is not None and value.strip() not in ("", "0"):
            return value
    raise Reject(MISSING_FIELD, f"sku_order_list[{i}] has no code/out_sku_id (merchant SKU code)")


def _lines(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = f.array(order, "sku_order_list")
    if not items:
        raise Reject(INVALID_VALUE, "sku_order_list is empty: an order has at least one line")
    lines = []
    for i in range(len(items)):
        item = f.element(items, i, "sku_order_list")
        line_status = f.strict_int(item, "order_status", required=False)
        lines.append(
            {
                "line_id": f.text(item, "order_id", required=False),
                "sku": _sku(item, i),
                "qty": f.quantity(item, "item_num", f"sku_order_list[{i}]"),
                "unit_price_minor": f.minor_units(item, "origin_amount", required=False),
                "raw_status": None if line_status is None else str(line_status),
            }
        )
    return lines


def _region_id(addr: Mapping[str, Any], name: str) -> object:
    part = f.optional_obj(addr, name)
    return None if part is None else part.get("id")


def _address(order: Mapping[str, Any]) -> str | None:
    # Receiver name, phone and detail are encrypted; region ids + the masked detail identify it.
    post = f.optional_obj(order, "post_addr")
    masked = f.optional_obj(order, "mask_post_addr")
    if post is None and masked is None:
        return None
    region = post or masked or {}
    ids = [_region_id(region, k) for k in ("province", "city", "town", "street")]
    return f.address_text([*ids, None if masked is None else masked.get("detail")])


def _tracking(order: Mapping[str, Any]) -> str | None:
    parcels = f.optional_array(order, "logistics_info")
    numbers = [
        f.text(f.element(parcels, i, "logistics_info"), "tracking_no", required=False) for i in range(len(parcels))
    ]
    return f.single(numbers)


def normalise(order: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One 抖店 shop order -> one OrderEvent (the order's current state)."""
    order_id = f.ident(order, "order_id")
    status, partial, raw_status = _status(order)
    updated = f.unix_seconds(order, "update_time")
    assert updated is not None
    lines = _lines(order)
    address = _address(order)
    return [
        {
            "event_id": event_id(SOURCE, order_id, raw_status, updated.isoformat()),
            "order_id": f"{SOURCE}:{order_id}",
            "channel": SOURCE,
            "source": SOURCE,
            "system": "CHANNEL",
            "status": status,
            "raw_status": raw_status,
            "partial": partial,
            "event_time": updated,
            "ingest_time": ctx.ingest_time,
            "amount_minor": f.minor_units(order, "pay_amount"),
            "currency": "CNY",
            "lines": lines,
            "warehouse": None,
            "carrier": None,
            "tracking_no": _tracking(order),
            "address_fp": ctx.fingerprint(address) if address else None,
            "lines_fp": ctx.fingerprint(f.lines_key(lines)),
            "raw_topic": raw.topic,
            "raw_partition": raw.partition,
            "raw_offset": raw.offset,
        }
    ]
