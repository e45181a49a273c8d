"""JD POP (京东 JOS) orders -> OrderEvent.

Accepted shape: ONE ``OrderSearchInfo`` object as JOS returns it, i.e. an element of
``jingdong.pop.order.search`` / ``jingdong.pop.order.enSearch``
(``searchorderinfo_result.orderInfoList[]``) or the ``orderInfo`` of
``jingdong.pop.order.get``. Fields used: ``orderId``, ``orderState``, ``modified``
(Beijing time), ``orderPayment`` (yuan string, 用户应付金额), ``itemInfoList[]``
(``outerSkuId``/``productNo``, ``itemTotal``, ``jdPrice``, ``skuId``), ``consigneeInfo``
(masked by JOS) and ``waybill``.
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

SOURCE = "jd"

# JOS jingdong.pop.order.search / jingdong.pop.order.get, OrderSearchInfo.orderState
# ("订单状态（英文）" enumeration of the API doc) -> (canonical status, partial?).
# ``UN_KNOWN`` (未知 请联系运营) is documented too and rejected on purpose: it says nothing.
JD_ORDER_STATE: dict[str, tuple[str, bool]] = {
    "WAIT_SELLER_STOCK_OUT": ("PAID", False),  # 等待出库: paid (or COD confirmed), merchant to ship
    "WAIT_SELLER_DELIVERY": ("PAID", False),  # 等待发货 (海外购: waiting for domestic shipment)
    "PAUSE": ("PAID", False),  # 暂停 (LOC orders, the state before 等待出库)
    "POP_ORDER_PAUSE": ("PAID", False),  # POP业务暂停 (3C 号卡/履约/黄金): paid, fulfilment paused
    "LOCKED": ("PAID", False),  # 已锁定 (e.g. buyer asked to cancel): paid, must not ship
    "WAIT_SEND_CODE": ("PAID", False),  # 等待发码 (LOC orders): paid, code not sent yet
    "WAIT_GOODS_RECEIVE_CONFIRM": ("OUTBOUND", False),  # 等待确认收货: shipped by the merchant
    "FINISHED_L": ("COMPLETED", False),  # 完成
    "TRADE_CANCELED": ("CANCELLED", False),  # 取消
    "DELIVERY_RETURN": ("RETURNED", False),  # 配送退货: parcel returned during delivery
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {"JD_ORDER_STATE": JD_ORDER_STATE}


def _lines(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = f.array(order, "itemInfoList")
    if not items:
        raise Reject(INVALID_VALUE, "itemInfoList is empty: an order has at least one line")
    lines = []
    for i in range(len(items)):
        item = f.element(items, i, "itemInfoList")
        # outerSkuId is the merchant's SKU code; productNo (货号) is its item-level code.
        sku = f.text(item, "outerSkuId", required=False) or f.text(item, "productNo", required=False)
        if sku is None:
            raise Reject(MISSING_FIELD, f"itemInfoList[{i}] has no outerSkuId/productNo (merchant SKU code)")
        lines.append(
            {
                "line_id": f.text(item, "skuId", required=False),
                "sku": sku,
                "qty": f.quantity(item, "itemTotal", f"itemInfoList[{i}]"),
                "unit_price_minor": f.money(item, "jdPrice", "CNY", required=False),
                "raw_status": None,
            }
        )
    return lines


def _address(order: Mapping[str, Any]) -> str | None:
    consignee = f.optional_obj(order, "consigneeInfo")
    if consignee is None:
        return None
    keys = ("provinceId", "cityId", "countyId", "townId", "fullAddress")
    return f.address_text([consignee.get(k) for k in keys])


def _tracking(order: Mapping[str, Any]) -> str | None:
    # waybill: carriers separated by '|', several parcels of one carrier by ','.
    waybill = f.text(order, "waybill", required=False)
    if waybill is None or "|" in waybill or "," in waybill:
        return None
    return waybill.strip() or None


def normalise(order: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One JOS order -> one OrderEvent (the order's current state)."""
    order_id = f.ident(order, "orderId")
    raw_status = f.text(order, "orderState")
    assert raw_status is not None
    if raw_status not in JD_ORDER_STATE:
        raise Reject(UNKNOWN_STATUS, f"unknown JD orderState {raw_status!r:.60}")
    status, partial = JD_ORDER_STATE[raw_status]
    modified = f.china_time(order, "modified")
    assert modified is not None
    lines = _lines(order)
    address = _address(order)
    return [
        {
            "event_id": event_id(SOURCE, order_id, raw_status, modified.isoformat()),
            "order_id": f"{SOURCE}:{order_id}",
            "channel": SOURCE,
            "source": SOURCE,
            "system": "CHANNEL",
            "status": status,
            "raw_status": raw_status,
            "partial": partial,
            "event_time": modified,
            "ingest_time": ctx.ingest_time,
            "amount_minor": f.money(order, "orderPayment", "CNY"),
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
