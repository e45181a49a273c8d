"""Pinduoduo (拼多多开放平台) orders -> OrderEvent.

Accepted shape: ONE order object as PDD returns it, i.e. an element of
``pdd.order.list.get`` (``order_list_get_response.order_list[]``) or
``pdd.order.number.list.increment.get`` (``order_sn_increment_get_response.order_sn_list[]``),
or the ``order_info_get_response.order_info`` of ``pdd.order.information.get`` (same fields).
Fields used: ``order_sn``, ``order_status`` (发货状态), ``refund_status`` (售后状态),
``confirm_status`` (成交状态), ``step_order_info.step_trade_status`` (定金订单),
``updated_at`` (Beijing time), ``pay_amount`` (yuan), ``item_list[]`` (``outer_id``/
``outer_goods_id``, ``goods_count``, ``goods_price``), ``tracking_number`` and the masked
address (``province_id``/``city_id``/``town_id`` + ``address_mask``).

``raw_status`` is ``order_status/refund_status/confirm_status``, plus ``/step_trade_status``
for deposit (定金) orders: e.g. ``"2/3/1"`` = shipped, refund in progress, deal confirmed.
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

SOURCE = "pdd"

# pdd.order.list.get / pdd.order.number.list.increment.get response fields:
# order_status 发货状态 (1 待发货, 2 已发货待签收, 3 已签收) x refund_status 售后状态
# (1 无售后或售后关闭, 2 售后处理中, 3 退款中, 4 退款成功), every combination explicitly.
# An after-sale or refund in progress keeps the shipping state (visible in raw_status);
# a successful refund ends the order as REFUNDED whatever was shipped. PDD has no
# separate "completed" state: 已签收 (receive_time = 确认收货时间) is the last one.
PDD_STATUS: dict[str, tuple[str, bool]] = {
    "1/1": ("PAID", False),  # 待发货, no after-sale
    "1/2": ("PAID", False),  # 待发货, after-sale being handled
    "1/3": ("PAID", False),  # 待发货, refund in progress
    "1/4": ("REFUNDED", False),  # refunded before shipping
    "2/1": ("OUTBOUND", False),  # 已发货待签收
    "2/2": ("OUTBOUND", False),  # shipped, after-sale being handled
    "2/3": ("OUTBOUND", False),  # shipped, refund in progress
    "2/4": ("REFUNDED", False),  # refunded after shipping
    "3/1": ("DELIVERED", False),  # 已签收
    "3/2": ("DELIVERED", False),  # signed, after-sale being handled
    "3/3": ("DELIVERED", False),  # signed, refund in progress
    "3/4": ("REFUNDED", False),  # refunded after receipt
}

# Same responses, confirm_status 成交状态: 0 未成交 (not paid, or group not formed yet: must
# not ship), 1 已成交 (PDD_STATUS decides), 2 已取消.
PDD_CONFIRM_STATUS: dict[str, str | None] = {
    "0": "PENDING_PAYMENT",
    "1": None,
    "2": "CANCELLED",
}

# Same responses, step_order_info.step_trade_status for deposit orders (trade_type 1):
# 0 定金未付尾款未付, 1 定金已付尾款未付, 2 定金已付尾款已付. Refines a not-yet-shipped order.
PDD_STEP_STATUS: dict[str, str] = {
    "0": "PENDING_PAYMENT",
    "1": "PENDING_PAYMENT",
    "2": "PAID",
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {
    "PDD_STATUS": PDD_STATUS,
    "PDD_CONFIRM_STATUS": PDD_CONFIRM_STATUS,
    "PDD_STEP_STATUS": PDD_STEP_STATUS,
}


def _code(doc: Mapping[str, Any], name: str) -> str:
    value = f.strict_int(doc, name)
    assert value is not None
    return str(value)


def _status(order: Mapping[str, Any]) -> tuple[str, bool, str]:
    shipping = _code(order, "order_status")
    after_sale = _code(order, "refund_status")
    confirm = _code(order, "confirm_status")
    key = f"{shipping}/{after_sale}"
    if key not in PDD_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown PDD order_status/refund_status {key!r:.60}")
    if confirm not in PDD_CONFIRM_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown PDD confirm_status {confirm!r:.60}")
    status, partial = PDD_STATUS[key]
    not_a_deal = PDD_CONFIRM_STATUS[confirm]
    if not_a_deal is not None:  # 未成交 / 已取消: the deal state wins over shipping/after-sale
        status, partial = not_a_deal, False
    raw_status = f"{key}/{confirm}"
    step_info = f.optional_obj(order, "step_order_info")
    if step_info is not None:
        step = _code(step_info, "step_trade_status")
        if step not in PDD_STEP_STATUS:
            raise Reject(UNKNOWN_STATUS, f"unknown PDD step_trade_status {step!r:.60}")
        if not_a_deal is None and status == "PAID":  # a confirmed deal not shipped yet
            status = PDD_STEP_STATUS[step]
        raw_status = f"{raw_status}/{step}"
    return status, partial, raw_status


def _lines(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = f.array(order, "item_list")
    if not items:
        raise Reject(INVALID_VALUE, "item_list is empty: an order has at least one line")
    lines = []
    for i in range(len(items)):
        item = f.element(items, i, "item_list")
        # outer_id: merchant code of the SKU; outer_goods_id: merchant code of the goods.
        sku = f.text(item, "outer_id", required=False) or f.text(item, "outer_goods_id", required=False)
        if sku is None:
            raise Reject(MISSING_FIELD, f"item_list[{i}] has no outer_id/outer_goods_id (merchant SKU code)")
        lines.append(
            {
                "line_id": f.text(item, "sku_id", required=False),
                "sku": sku,
                "qty": f.quantity(item, "goods_count", f"item_list[{i}]"),
                "unit_price_minor": f.money(item, "goods_price", "CNY", required=False),
                "raw_status": None,
            }
        )
    return lines


def _address(order: Mapping[str, Any]) -> str | None:
    # PDD encrypts receiver fields; region ids and the masked detail identify the address.
    masked = order.get("address_mask") or order.get("receiver_address_mask")
    return f.address_text([order.get("province_id"), order.get("city_id"), order.get("town_id"), masked])


def normalise(order: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One PDD order -> one OrderEvent (the order's current state)."""
    order_sn = f.ident(order, "order_sn")
    status, partial, raw_status = _status(order)
    updated = f.china_time(order, "updated_at")
    assert updated is not None
    lines = _lines(order)
    address = _address(order)
    return [
        {
            "event_id": event_id(SOURCE, order_sn, raw_status, updated.isoformat()),
            "order_id": f"{SOURCE}:{order_sn}",
            "channel": SOURCE,
            "source": SOURCE,
            "system": "CHANNEL",
            "status": status,
            "raw_status": raw_status,
            "partial": partial,
            "event_time": updated,
            "ingest_time": ctx.ingest_time,
            "amount_minor": f.money(order, "pay_amount", "CNY"),
            "currency": "CNY",
            "lines": lines,
            "warehouse": None,
            "carrier": None,
            "tracking_no": f.text(order, "tracking_number", required=False),
            "address_fp": ctx.fingerprint(address) if address else None,
            "lines_fp": ctx.fingerprint(f.lines_key(lines)),
            "raw_topic": raw.topic,
            "raw_partition": raw.partition,
            "raw_offset": raw.offset,
        }
    ]
