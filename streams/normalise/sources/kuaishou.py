"""Kuaishou shop (快手电商开放平台 / 快手小店) orders -> OrderEvent.

Accepted shape: ONE order object as the open platform returns it, i.e. an element of
``open.order.cursor.list`` (``data.orderList[]``) or the ``data`` of ``open.order.detail``:
``{"orderBaseInfo": {...}, "orderItemInfo": {...}, "orderAddress": {...},
"orderRefundList": [...], "orderLogisticsInfo": [...], ...}``. A Kuaishou order has one
item (``orderItemInfo``, ``num`` units). Fields used: ``orderBaseInfo.oid``, ``.status``,
``.updateTime`` (Unix **milliseconds**), ``.totalFee`` (fen, integer); ``orderItemInfo``
(``skuNick``/``goodsCode``, ``num``, ``price`` fen, ``orderItemId``); ``orderAddress``
region codes + ``desensitiseAddress``; ``orderRefundList[0].refundStatus`` (latest refund
first); ``orderLogisticsInfo[].expressNo``.

``raw_status`` is ``status``, or ``status/refundStatus`` when the order has a refund.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import MISSING_FIELD, UNKNOWN_STATUS, Context, RawRecord, Reject, event_id

SOURCE = "kuaishou"

# open.order.cursor.list / open.order.detail, orderBaseInfo.status: [0, "未知状态"],
# [10, "待付款"], [30, "已付款"], [40, "已发货"], [50, "已签收"], [70, "订单成功"],
# [80, "订单失败"] ("订单取消后会转为订单失败状态"). 0 未知状态 is rejected on purpose.
KUAISHOU_STATUS: dict[str, tuple[str, bool]] = {
    "10": ("PENDING_PAYMENT", False),  # 待付款
    "30": ("PAID", False),  # 已付款
    "40": ("OUTBOUND", False),  # 已发货
    "50": ("DELIVERED", False),  # 已签收
    "70": ("COMPLETED", False),  # 订单成功
    "80": ("CANCELLED", False),  # 订单失败 (a cancelled order); REFUNDED if its refund succeeded
}

# Same APIs, orderRefundList[].refundStatus: True when the refund has been paid back.
# A refund in any state is visible in raw_status; only a succeeded refund on a failed (80)
# order changes the canonical status, to REFUNDED. On a live order a refund may be partial
# (one unit, a price difference), so it does not end the order.
KUAISHOU_REFUND_STATUS: dict[str, bool] = {
    "10": False,  # 买家仅退款申请
    "11": False,  # 买家退货退款申请
    "20": False,  # 平台介入-买家仅退款申请
    "21": False,  # 平台介入-买家退货退款申请
    "22": False,  # 平台介入-已确认退货退款
    "30": False,  # 商品回寄信息待买家更新
    "40": False,  # 商品回寄信息待卖家确认
    "50": False,  # 退款执行中
    "60": True,  # 退款成功
    "70": False,  # 退款失败
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {
    "KUAISHOU_STATUS": KUAISHOU_STATUS,
    "KUAISHOU_REFUND_STATUS": KUAISHOU_REFUND_STATUS,
}


def _code(doc: Mapping[str, Any], name: str) -> str:
    value = f.strict_int(doc, name)
    assert value is not None
    return str(value)


def _status(order: Mapping[str, Any], base: Mapping[str, Any]) -> tuple[str, bool, str]:
    code = _code(base, "status")
    if code not in KUAISHOU_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Kuaishou order status {code!r:.60}")
    status, partial = KUAISHOU_STATUS[code]
    refunds = f.optional_array(order, "orderRefundList")
    if not refunds:
        return status, partial, code
    refund = _code(f.element(refunds, 0, "orderRefundList"), "refundStatus")
    if refund not in KUAISHOU_REFUND_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Kuaishou refundStatus {refund!r:.60}")
    if code == "80" and KUAISHOU_REFUND_STATUS[refund]:
        status = "REFUNDED"
    return status, partial, f"{code}/{refund}"


def _line(item: Mapping[str, Any]) -> dict[str, Any]:
    # skuNick: the merchant's SKU code (sku编码); goodsCode: the merchant's goods code (外部货品编码).
    sku = f.text(item, "skuNick", required=False) or f.text(item, "goodsCode", required=False)
    if sku is None:
        raise Reject(MISSING_FIELD, "orderItemInfo has no skuNick/goodsCode (merchant SKU code)")
    return {
        "line_id": f.text(item, "orderItemId", required=False),
        "sku": sku,
        "qty": f.quantity(item, "num", "orderItemInfo"),
        "unit_price_minor": f.minor_units(item, "price", required=False),
        "raw_status": None,
    }


def _address(order: Mapping[str, Any]) -> str | None:
    # Consignee, mobile and address are encrypted; region codes + the masked address identify it.
    addr = f.optional_obj(order, "orderAddress")
    if addr is None:
        return None
    keys = ("provinceCode", "cityCode", "districtCode", "townCode", "desensitiseAddress")
    return f.address_text([addr.get(k) for k in keys])


def _tracking(order: Mapping[str, Any]) -> str | None:
    parcels = f.optional_array(order, "orderLogisticsInfo")
    numbers = [
        f.text(f.element(parcels, i, "orderLogisticsInfo"), "expressNo", required=False) for i in range(len(parcels))
    ]
    return f.single(numbers)


def normalise(order: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One Kuaishou order -> one OrderEvent (the order's current state)."""
    base = f.obj(order, "orderBaseInfo")
    oid = f.ident(base, "oid")
    status, partial, raw_status = _status(order, base)
    updated = f.unix_millis(base, "updateTime")
    assert updated is not None
    lines = [_line(f.obj(order, "orderItemInfo"))]
    address = _address(order)
    return [
        {
            "event_id": event_id(SOURCE, oid, raw_status, updated.isoformat()),
            "order_id": f"{SOURCE}:{oid}",
            "channel": SOURCE,
            "source": SOURCE,
            "system": "CHANNEL",
            "status": status,
            "raw_status": raw_status,
            "partial": partial,
            "event_time": updated,
            "ingest_time": ctx.ingest_time,
            "amount_minor": f.minor_units(base, "totalFee"),
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
