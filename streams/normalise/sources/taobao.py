"""Taobao / Tmall (TOP ``taobao.trades.sold.increment.get`` Trade objects) -> OrderEvent.

Status values are TOP's documented Trade ``status`` values. A Tmall trade is a Taobao
trade on the same TOP platform, so both share the channel ``taobao``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import (
    UNKNOWN_STATUS,
    WRONG_TYPE,
    Context,
    RawRecord,
    Reject,
    event_id,
)

SOURCE = "taobao"

# TOP Trade.status -> (canonical status, partial?)
TAOBAO_STATUS: dict[str, tuple[str, bool]] = {
    "TRADE_NO_CREATE_PAY": ("PENDING_PAYMENT", False),  # no Alipay trade created yet
    "WAIT_BUYER_PAY": ("PENDING_PAYMENT", False),  # waiting for the buyer to pay
    "PAY_PENDING": ("PENDING_PAYMENT", False),  # foreign card payment being confirmed
    "WAIT_PRE_AUTH_CONFIRM": ("PENDING_PAYMENT", False),  # 0-yuan pre-authorised contract
    "WAIT_SELLER_SEND_GOODS": ("PAID", False),  # paid, waiting for the seller to ship
    "PAID_FORBID_CONSIGN": ("PAID", False),  # paid, shipping forbidden (group buy pending)
    "SELLER_CONSIGNED_PART": ("OUTBOUND", True),  # seller shipped part of the order
    "WAIT_BUYER_CONFIRM_GOODS": ("OUTBOUND", False),  # seller shipped, buyer to confirm
    "TRADE_BUYER_SIGNED": ("DELIVERED", False),  # buyer signed (cash on delivery)
    "TRADE_FINISHED": ("COMPLETED", False),  # trade succeeded
    "TRADE_CLOSED": ("REFUNDED", False),  # closed after payment by a full refund
    "TRADE_CLOSED_BY_TAOBAO": ("CANCELLED", False),  # closed before payment
}

# Presale (deposit) trades: step_trade_status refines WAIT_BUYER_PAY / paid states.
TAOBAO_STEP_STATUS: dict[str, str] = {
    "FRONT_NOPAID_FINAL_NOPAID": "PENDING_PAYMENT",  # deposit not paid
    "FRONT_PAID_FINAL_NOPAID": "PENDING_PAYMENT",  # deposit paid, balance not paid
    "FRONT_PAID_FINAL_PAID": "PAID",  # deposit and balance paid
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {
    "TAOBAO_STATUS": TAOBAO_STATUS,
    "TAOBAO_STEP_STATUS": TAOBAO_STEP_STATUS,
}


def _lines(trade: Mapping[str, Any]) -> list[dict[str, Any]]:
    orders = f.obj(trade, "orders")
    items = f.array(orders, "order")
    lines = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise Reject(WRONG_TYPE, f"orders.order[{i}] should be an object")
        sku = f.text(item, "outer_sku_id", required=False) or f.text(item, "outer_iid", required=False)
        if sku is None:
            raise Reject("MISSING_FIELD", f"orders.order[{i}] has no outer_sku_id/outer_iid (merchant SKU code)")
        qty = f.integer(item, "num")
        assert qty is not None
        if qty <= 0:
            raise Reject("INVALID_VALUE", f"orders.order[{i}].num must be positive, got {qty}")
        oid = f.text(item, "oid", required=False)
        lines.append(
            {
                "line_id": oid,
                "sku": sku,
                "qty": qty,
                "unit_price_minor": f.money_minor(item, "price", required=False),
                "raw_status": f.text(item, "refund_status", required=False)
                if item.get("refund_status") not in (None, "", "NO_REFUND")
                else f.text(item, "status", required=False),
            }
        )
    return lines


def _address_text(trade: Mapping[str, Any]) -> str | None:
    # oaid is TOP's privacy-safe address identity: it changes when the address changes.
    oaid = trade.get("oaid")
    if isinstance(oaid, str) and oaid:
        return f"oaid:{oaid}"
    keys = ("receiver_state", "receiver_city", "receiver_district", "receiver_address", "receiver_zip")
    parts = [trade.get(k) for k in keys]
    if not any(parts):
        return None
    return "|".join("" if p is None else str(p).strip() for p in parts)


def normalise(trade: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One TOP Trade -> one OrderEvent (the trade's current state)."""
    tid = f.ident(trade, "tid")
    raw_status = f.text(trade, "status")
    assert raw_status is not None
    try:
        status, partial = TAOBAO_STATUS[raw_status]
    except KeyError:
        raise Reject(UNKNOWN_STATUS, f"unknown Taobao trade status {raw_status!r:.60}") from None
    step = f.text(trade, "step_trade_status", required=False)
    if step is not None and status in ("PENDING_PAYMENT", "PAID"):
        if step not in TAOBAO_STEP_STATUS:
            raise Reject(UNKNOWN_STATUS, f"unknown Taobao step_trade_status {step!r:.60}")
        status = TAOBAO_STEP_STATUS[step]
        raw_status = f"{raw_status}/{step}"
    modified = f.china_time(trade, "modified")
    assert modified is not None
    lines = _lines(trade)
    address = _address_text(trade)
    lines_key = ",".join(f"{ln['sku']}x{ln['qty']}" for ln in sorted(lines, key=lambda x: (x["sku"], x["qty"])))
    return [
        {
            "event_id": event_id(SOURCE, tid, raw_status, modified.isoformat()),
            "order_id": f"taobao:{tid}",
            "channel": "taobao",
            "source": SOURCE,
            "system": "CHANNEL",
            "status": status,
            "raw_status": raw_status,
            "partial": partial,
            "event_time": modified,
            "ingest_time": ctx.ingest_time,
            "amount_minor": f.money_minor(trade, "payment"),
            "currency": "CNY",
            "lines": lines,
            "warehouse": None,
            "carrier": None,
            "tracking_no": None,
            "address_fp": ctx.fingerprint(address) if address else None,
            "lines_fp": ctx.fingerprint(lines_key),
            "raw_topic": raw.topic,
            "raw_partition": raw.partition,
            "raw_offset": raw.offset,
        }
    ]
