"""Shopee (Shopee Open Platform v2) orders -> OrderEvent.

Two accepted shapes, each ONE order:

- detail: an element of ``v2.order.get_order_detail`` ``response.order_list[]``: ``order_sn``,
  ``order_status``, ``update_time`` (Unix seconds), ``currency``, ``total_amount`` (major
  units of ``currency``), ``item_list[]`` (``model_sku``/``item_sku``,
  ``model_quantity_purchased``, ``model_discounted_price``) and the masked
  ``recipient_address``. (``get_order_list`` entries carry no update time: the connector
  fetches the detail.)
- push: the order status push (``code`` 3) body, ``{"data": {"ordersn", "status",
  "update_time", ...}, "shop_id", "code": 3, "timestamp"}``: a status-only fact, so the
  event has no lines, amount or address. Other push codes are not order status facts and
  are rejected as UNSUPPORTED.

A push and a detail of the same change (same order, status and ``update_time``) are the
same fact and get the same ``event_id``.

Money: Shopee amounts are floats in the region's currency. They are converted exactly to
minor units with :data:`streams.normalise.fields.CURRENCY_EXPONENT`: IDR and VND have no
minor unit (150000 IDR -> 150000), SGD/MYR/PHP/THB/TWD/BRL... have two (12.9 SGD -> 1290).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import (
    INVALID_VALUE,
    MISSING_FIELD,
    UNKNOWN_STATUS,
    UNSUPPORTED,
    Context,
    RawRecord,
    Reject,
    event_id,
)

SOURCE = "shopee"
ORDER_STATUS_PUSH = 3

# Shopee Open Platform v2 order_status (Data Definition OrderStatus, v2.order.get_order_list /
# get_order_detail, and the order status push) -> (canonical status, partial?).
SHOPEE_STATUS: dict[str, tuple[str, bool]] = {
    "UNPAID": ("PENDING_PAYMENT", False),  # created, buyer has not paid
    "PENDING": ("PENDING_PAYMENT", False),  # paid order held by Shopee; cannot be shipped yet
    "INVOICE_PENDING": ("PAID", False),  # paid, seller must upload the invoice (BR) before shipping
    "READY_TO_SHIP": ("PAID", False),  # seller can arrange shipment
    "PROCESSED": ("PAID", False),  # shipment arranged, tracking number from 3PL, not handed over
    "RETRY_SHIP": ("PAID", False),  # 3PL pickup failed, shipment to be re-arranged
    "IN_CANCEL": ("PAID", False),  # cancellation requested, under processing (not shipped)
    "SHIPPED": ("IN_TRANSIT", False),  # parcel dropped at / picked up by the 3PL
    "TO_CONFIRM_RECEIVE": ("DELIVERED", False),  # received by the buyer, to confirm
    "TO_RETURN": ("DELIVERED", False),  # buyer asked to return; outcome not known yet
    "COMPLETED": ("COMPLETED", False),
    "CANCELLED": ("CANCELLED", False),
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {"SHOPEE_STATUS": SHOPEE_STATUS}


def _status(raw_status: str) -> tuple[str, bool]:
    if raw_status not in SHOPEE_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown Shopee order_status {raw_status!r:.60}")
    return SHOPEE_STATUS[raw_status]


def _lines(order: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    items = f.array(order, "item_list")
    if not items:
        raise Reject(INVALID_VALUE, "item_list is empty: an order has at least one line")
    lines = []
    for i in range(len(items)):
        item = f.element(items, i, "item_list")
        # model_sku: the merchant's SKU of the variation; item_sku: of the item (no variations).
        sku = f.text(item, "model_sku", required=False) or f.text(item, "item_sku", required=False)
        if sku is None:
            raise Reject(MISSING_FIELD, f"item_list[{i}] has no model_sku/item_sku (merchant SKU code)")
        lines.append(
            {
                "line_id": f.text(item, "order_item_id", required=False),
                "sku": sku,
                "qty": f.quantity(item, "model_quantity_purchased", f"item_list[{i}]"),
                "unit_price_minor": f.money(item, "model_discounted_price", currency, required=False),
                "raw_status": None,
            }
        )
    return lines


def _address(order: Mapping[str, Any]) -> str | None:
    addr = f.optional_obj(order, "recipient_address")
    if addr is None:
        return None
    keys = ("region", "state", "city", "district", "town", "zipcode", "full_address")
    return f.address_text([addr.get(k) for k in keys])


def _event(
    order_sn: str,
    raw_status: str,
    updated: datetime,
    raw: RawRecord,
    ctx: Context,
    *,
    amount: int | None = None,
    currency: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    status, partial = _status(raw_status)
    return {
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
        "amount_minor": amount,
        "currency": currency,
        "lines": lines or [],
        "warehouse": None,
        "carrier": None,
        "tracking_no": None,  # not in the order detail (v2.logistics.get_tracking_number)
        "address_fp": ctx.fingerprint(address) if address else None,
        "lines_fp": ctx.fingerprint(f.lines_key(lines)) if lines else None,
        "raw_topic": raw.topic,
        "raw_partition": raw.partition,
        "raw_offset": raw.offset,
    }


def _push(doc: Mapping[str, Any], raw: RawRecord, ctx: Context) -> dict[str, Any]:
    code = f.strict_int(doc, "code")
    if code != ORDER_STATUS_PUSH:
        raise Reject(UNSUPPORTED, f"Shopee push code {code} is not an order status push")
    data = f.obj(doc, "data")
    order_sn = f.ident(data, "ordersn")
    raw_status = f.text(data, "status")
    assert raw_status is not None
    _status(raw_status)
    updated = f.unix_seconds(data, "update_time")
    assert updated is not None
    return _event(order_sn, raw_status, updated, raw, ctx)


def _detail(order: Mapping[str, Any], raw: RawRecord, ctx: Context) -> dict[str, Any]:
    order_sn = f.ident(order, "order_sn")
    raw_status = f.text(order, "order_status")
    assert raw_status is not None
    _status(raw_status)
    updated = f.unix_seconds(order, "update_time")
    assert updated is not None
    currency = f.currency_code(order, "currency")
    return _event(
        order_sn,
        raw_status,
        updated,
        raw,
        ctx,
        amount=f.money(order, "total_amount", currency),
        currency=currency,
        lines=_lines(order, currency),
        address=_address(order),
    )


def normalise(doc: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One Shopee order detail or order status push -> one OrderEvent."""
    if "code" in doc:
        return [_push(doc, raw, ctx)]
    return [_detail(doc, raw, ctx)]
