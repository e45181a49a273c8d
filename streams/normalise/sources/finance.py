"""Finance (the merchant's ledger postings for channel orders) -> OrderEvent.

There is no single public standard for an ERP finance voucher, so this is ordertwin's own
posting contract, one JSON object per voucher entry, modelled on the payment providers'
bill lines the finance team books from: Alipay 账务明细 (``alipay.data.bill.accountlog.query``:
``account_log_id``, ``trans_dt``, ``trans_amount``, ``alipay_order_no``,
``merchant_order_no``) and WeChat Pay 交易账单 (交易时间, 微信订单号, 商户订单号, 退款单号,
退款金额)::

    {"voucher_no": "JZ-202611-000381",   # ledger voucher; with entry_no, the posting's id
     "entry_no": 1,
     "biz_type": "PAYMENT_RECEIVED",      # see FINANCE_BIZ_TYPE
     "channel": "taobao",                 # ordertwin channel name
     "platform_order_no": "3987215540123456829",
     "amount": "257.00",                  # decimal string, major units, never negative
     "currency": "CNY",                   # ISO 4217
     "posted_at": "2026-11-11 00:06:10",  # Beijing time
     "pay_provider": "ALIPAY",            # informative: ALIPAY, WECHATPAY, ...
     "provider_trade_no": "2026111122001456780512345678",
     "refund_no": null,                   # provider refund id for refund postings
     "order_amount": "257.00"}            # optional: the order's paid amount, for refund checks

Modelling: a payment => PAID with the received amount (the twin compares it with the
channel's amount). A full refund => REFUNDED with the refunded amount. A partial refund
=> REFUNDED with ``partial=True`` and ``amount_minor`` = the amount refunded by this
posting (not the order's remaining balance). A chargeback (the provider pulled the money
back) => REFUNDED; whether it is partial is decided from ``order_amount``, which is
required for it. When ``order_amount`` is given, refund postings are checked against it
(a "full" refund of less than the order, or a "partial" one of all of it, is rejected
INVALID_VALUE rather than guessed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalise.model import (
    INVALID_VALUE,
    MISSING_FIELD,
    UNKNOWN_STATUS,
    Context,
    RawRecord,
    Reject,
)
from streams.normalise.sources import _subsystem as sub

SOURCE = "finance"
SYSTEM = "FINANCE"

# biz_type -> (canonical status, partial: True / False / None = decided by order_amount)
FINANCE_BIZ_TYPE: dict[str, tuple[str, bool | None]] = {
    "PAYMENT_RECEIVED": ("PAID", False),  # buyer's payment booked (Alipay 交易 / WeChat SUCCESS)
    "REFUND_POSTED": ("REFUNDED", False),  # the whole payment refunded
    "PARTIAL_REFUND": ("REFUNDED", True),  # part of the payment refunded
    "CHARGEBACK": ("REFUNDED", None),  # provider reversed the payment (dispute / 投诉退款)
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {"FINANCE_BIZ_TYPE": FINANCE_BIZ_TYPE}


def _partial(biz: str, declared: bool | None, amount: int, order_amount: int | None) -> bool:
    """Whether a refund posting covers part of the order only (see the module docstring)."""
    if order_amount is None:
        if declared is None:
            raise Reject(MISSING_FIELD, f"{biz} needs order_amount to tell a full from a partial reversal")
        return declared
    if amount > order_amount:
        raise Reject(INVALID_VALUE, f"{biz} of {amount} exceeds the order amount {order_amount}")
    partial = amount < order_amount
    if declared is not None and declared != partial:
        kind = "partial" if declared else "full"
        raise Reject(INVALID_VALUE, f"{biz} is a {kind} refund but refunds {amount} of {order_amount}")
    return partial


def normalise(posting: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One ledger posting -> one OrderEvent."""
    voucher = sub.ident_value(posting.get("voucher_no"), "field 'voucher_no'")
    entry = sub.positive(posting, "entry_no")
    biz = sub.req_text(posting, "biz_type")
    if biz not in FINANCE_BIZ_TYPE:
        raise Reject(UNKNOWN_STATUS, f"unknown finance biz_type {biz!r:.40}")
    status, declared = FINANCE_BIZ_TYPE[biz]
    order = sub.order_id(sub.req_text(posting, "channel"), posting.get("platform_order_no"), "platform_order_no")
    currency = sub.currency_code(posting.get("currency"), "field 'currency'")
    amount = sub.money(posting, "amount", currency)
    assert amount is not None
    if amount == 0:
        raise Reject(INVALID_VALUE, "field 'amount' is 0: a posting moves money")
    order_amount = sub.money(posting, "order_amount", currency, required=False)
    partial = False if status == "PAID" else _partial(biz, declared, amount, order_amount)
    posted = sub.req_time(posting, "posted_at")
    return [
        sub.order_event(
            source=SOURCE,
            system=SYSTEM,
            fact=(voucher, entry),
            order=order,
            status=status,
            raw_status=biz,
            partial=partial,
            event_time=posted,
            ctx=ctx,
            raw=raw,
            amount_minor=amount,
            currency=currency,
        )
    ]
