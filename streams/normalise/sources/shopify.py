"""Shopify (Admin REST ``Order`` resource) orders -> OrderEvent.

Accepted shape: ONE Order object as the Admin REST API returns it (``GET
/admin/api/<version>/orders.json`` ``orders[]``, ``orders/{id}.json`` ``order``) or as the
``orders/create``, ``orders/updated``, ``orders/paid``, ``orders/fulfilled``,
``orders/partially_fulfilled`` and ``orders/cancelled`` webhooks post it (same object).
The ``orders/delete`` body (``{"id": ...}`` only) says nothing about the order's state
and is rejected as UNSUPPORTED. Fields used: ``id``, ``financial_status``,
``fulfillment_status``, ``cancelled_at``, ``updated_at`` (ISO-8601 with offset),
``currency`` + ``total_price`` (decimal string in major units), ``line_items[]`` (``sku``,
``quantity``, ``price``, ``id``, ``fulfillment_status``), ``shipping_address`` (fingerprinted,
never copied) and ``fulfillments[].tracking_number(s)``.

``raw_status`` is ``financial_status/fulfillment_status`` (``null`` when unfulfilled),
plus ``/cancelled`` when ``cancelled_at`` is set: e.g. ``paid/partial``,
``refunded/restocked/cancelled``.
"""

from __future__ import annotations

from collections.abc import Mapping
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

SOURCE = "shopify"

# Admin REST Order.financial_status and Order.fulfillment_status, as documented.
FINANCIAL_STATUSES = ("pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded", "voided")
FULFILLMENT_STATUSES = ("null", "partial", "fulfilled", "restocked")

# Admin REST Order: financial_status x fulfillment_status x cancelled_at -> (canonical, partial?).
# Every combination of the 7 x 4 x 2 is either here or in SHOPIFY_UNSUPPORTED (tested).
# Shipping facts come from fulfillment_status, payment facts from financial_status:
# - pending/partially_paid: payment not complete (PENDING_PAYMENT) unless goods already left;
# - authorized: payment guaranteed, capture later -> PAID (to be fulfilled);
# - partially_refunded: the order goes on (part refunded); visible in raw_status;
# - refunded: the order ends as REFUNDED whatever was shipped; voided: payment cancelled;
# - cancelled_at: CANCELLED (REFUNDED when also fully refunded).
SHOPIFY_STATUS: dict[str, tuple[str, bool]] = {
    "pending/null": ("PENDING_PAYMENT", False),
    "pending/partial": ("OUTBOUND", True),
    "pending/fulfilled": ("OUTBOUND", False),
    "authorized/null": ("PAID", False),
    "authorized/partial": ("OUTBOUND", True),
    "authorized/fulfilled": ("OUTBOUND", False),
    "partially_paid/null": ("PENDING_PAYMENT", False),
    "partially_paid/partial": ("OUTBOUND", True),
    "partially_paid/fulfilled": ("OUTBOUND", False),
    "paid/null": ("PAID", False),
    "paid/partial": ("OUTBOUND", True),
    "paid/fulfilled": ("OUTBOUND", False),
    "partially_refunded/null": ("PAID", False),
    "partially_refunded/partial": ("OUTBOUND", True),
    "partially_refunded/fulfilled": ("OUTBOUND", False),
    "refunded/null": ("REFUNDED", False),
    "refunded/partial": ("REFUNDED", False),
    "refunded/fulfilled": ("REFUNDED", False),
    "voided/null": ("CANCELLED", False),  # "an unpaid (authorized, not captured) order was cancelled"
    "pending/null/cancelled": ("CANCELLED", False),
    "authorized/null/cancelled": ("CANCELLED", False),
    "partially_paid/null/cancelled": ("CANCELLED", False),
    "paid/null/cancelled": ("CANCELLED", False),  # cancelled, refund not (yet) issued
    "partially_refunded/null/cancelled": ("CANCELLED", False),
    "refunded/null/cancelled": ("REFUNDED", False),
    "voided/null/cancelled": ("CANCELLED", False),
    "pending/restocked/cancelled": ("CANCELLED", False),
    "authorized/restocked/cancelled": ("CANCELLED", False),
    "partially_paid/restocked/cancelled": ("CANCELLED", False),
    "paid/restocked/cancelled": ("CANCELLED", False),
    "partially_refunded/restocked/cancelled": ("CANCELLED", False),
    "refunded/restocked/cancelled": ("REFUNDED", False),
    "voided/restocked/cancelled": ("CANCELLED", False),
}

# The rest of the product, rejected explicitly (UNSUPPORTED) rather than guessed.
_RESTOCKED_OPEN = "restocked means every line restocked and the order cancelled, but cancelled_at is not set"
_VOIDED_SHIPPED = "goods fulfilled against a voided payment are not modelled"
_CANCELLED_SHIPPED = "Shopify cancels only unfulfilled orders; a cancelled order with fulfilments is not modelled"
SHOPIFY_UNSUPPORTED: dict[str, str] = {
    **{f"{fin}/restocked": _RESTOCKED_OPEN for fin in FINANCIAL_STATUSES},
    "voided/partial": _VOIDED_SHIPPED,
    "voided/fulfilled": _VOIDED_SHIPPED,
    **{f"{fin}/{ful}/cancelled": _CANCELLED_SHIPPED for fin in FINANCIAL_STATUSES for ful in ("partial", "fulfilled")},
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {"SHOPIFY_STATUS": SHOPIFY_STATUS}


def _status(order: Mapping[str, Any]) -> tuple[str, bool, str]:
    financial = f.text(order, "financial_status")
    assert financial is not None
    fulfillment = f.text(order, "fulfillment_status", required=False) or "null"
    if financial not in FINANCIAL_STATUSES:
        raise Reject(UNKNOWN_STATUS, f"unknown Shopify financial_status {financial!r:.60}")
    if fulfillment not in FULFILLMENT_STATUSES:
        raise Reject(UNKNOWN_STATUS, f"unknown Shopify fulfillment_status {fulfillment!r:.60}")
    cancelled = f.iso_time(order, "cancelled_at", required=False) is not None
    raw_status = f"{financial}/{fulfillment}" + ("/cancelled" if cancelled else "")
    if raw_status in SHOPIFY_UNSUPPORTED:
        raise Reject(UNSUPPORTED, f"Shopify {raw_status}: {SHOPIFY_UNSUPPORTED[raw_status]}")
    status, partial = SHOPIFY_STATUS[raw_status]
    return status, partial, raw_status


def _lines(order: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    items = f.array(order, "line_items")
    if not items:
        raise Reject(INVALID_VALUE, "line_items is empty: an order has at least one line")
    lines = []
    for i in range(len(items)):
        item = f.element(items, i, "line_items")
        sku = f.text(item, "sku", required=False)
        if sku is None or not sku.strip():
            raise Reject(MISSING_FIELD, f"line_items[{i}].sku is missing (merchant SKU code)")
        lines.append(
            {
                "line_id": f.text(item, "id", required=False),
                "sku": sku,
                "qty": f.quantity(item, "quantity", f"line_items[{i}]"),
                "unit_price_minor": f.money(item, "price", currency, required=False),
                "raw_status": f.text(item, "fulfillment_status", required=False),
            }
        )
    return lines


def _address(order: Mapping[str, Any]) -> str | None:
    # Shopify sends the address in clear: it is only ever fingerprinted, never copied.
    addr = f.optional_obj(order, "shipping_address")
    if addr is None:
        return None
    keys = ("country_code", "province_code", "city", "zip", "address1", "address2")
    return f.address_text([addr.get(k) for k in keys])


def _tracking(order: Mapping[str, Any]) -> str | None:
    numbers: list[str | None] = []
    fulfillments = f.optional_array(order, "fulfillments")
    for i in range(len(fulfillments)):
        ful = f.element(fulfillments, i, "fulfillments")
        if ful.get("status") in ("cancelled", "error", "failure"):
            continue
        numbers.append(f.text(ful, "tracking_number", required=False))
        many = f.optional_array(ful, "tracking_numbers")
        numbers += [n if isinstance(n, str) else None for n in many]
    return f.single(numbers)


def normalise(order: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One Shopify Order -> one OrderEvent (the order's current state)."""
    order_id = f.ident(order, "id")
    if set(order) == {"id"}:
        raise Reject(UNSUPPORTED, "Shopify orders/delete body carries no order state")
    status, partial, raw_status = _status(order)
    updated = f.iso_time(order, "updated_at")
    assert updated is not None
    currency = f.currency_code(order, "currency")
    lines = _lines(order, currency)
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
            "amount_minor": f.money(order, "total_price", currency),
            "currency": currency,
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
