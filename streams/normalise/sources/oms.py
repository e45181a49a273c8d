"""OMS / ERP (Wangdiantong 旺店通 旗舰版 ``sales.TradeQuery.queryWithDetail`` orders) -> OrderEvent.

Source shape: one element of ``data.order`` of the 旺店通旗舰版 order query
(open.wangdian.cn/qjb/open/apidoc/doc?path=sales.TradeQuery.queryWithDetail), published
unchanged by the OMS connector, key ``trade_no``. Fields used: ``trade_no`` (ERP order),
``platform_id`` (平台代码表), ``src_tids`` (原始单号: the channel order ids, comma
separated, ascending, when the ERP merged several channel orders), ``trade_status``,
``trade_type``, ``trade_mask`` (位运算: 64 部分发货, 2048 拆分), ``bad_reason`` (异常原因),
``modified`` (Beijing time), ``receivable``, ``currency``, ``warehouse_no``,
``logistics_no`` and ``detail_list[]`` (``src_tid``, ``src_oid``, ``spec_no`` = merchant
SKU, ``num``, ``order_price``, ``gift_type``, ``refund_status``).

Why 旺店通 rather than 聚水潭: its order names the sales platform (``platform_id``, a
documented table) and attributes every line to its channel order (``detail_list[].src_tid``),
so merged and split ERP orders map to channel orders without merchant configuration; a
聚水潭 order only names the ERP shop (``shop_id``).

Modelling:

- Merged ERP order (``src_tids`` lists several channel orders, lines carry their own
  ``src_tid``): one OrderEvent per channel order with that order's lines. ``src_tids`` may
  be truncated by the ERP ("过长将被裁剪"), so line ``src_tid`` values are added to it.
- Split ERP order (``trade_mask`` bit 2048 拆分) and partly shipped order (bit 64 部分发货):
  ``partial=True``; the lines are the lines of this ERP part.
- ``amount_minor`` is ``receivable`` only for a plain 1:1 order. For a merged or split ERP
  order the per-channel-order amount is not stated, and we do not apportion it.
- 异常订单 (``trade_status`` 23): the ERP holds an order it has already taken in, i.e. paid
  and not yet shipped; we report PAID (the certain floor) with ``raw_status``
  ``"23|bad_reason=<n>"`` so the exception and its reason (位运算) stay visible.
- Post-shipment ERP states (96 成本确认, 101 已过账, 110 已完成) are bookkeeping: the ERP
  knows the order left (OUTBOUND), not that the buyer received it.
- 7 待转已完成 is rejected explicitly (see ``OMS_UNMAPPED_STATUS``).
- No address: the query returns the address only for self-run shops, and as region ids.
  No carrier code: ``logistics_code`` is the ERP's own logistics-company key; the tracking
  number (``logistics_no``) is carried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import (
    INVALID_VALUE,
    UNKNOWN_STATUS,
    UNSUPPORTED,
    Context,
    RawRecord,
    Reject,
)
from streams.normalise.sources import _subsystem as sub

SOURCE = "oms"
SYSTEM = "OMS"

# 旺店通旗舰版 平台代码表 (open.wangdian.cn/qjb/open/guide?path=qjbguide_ptdmbb) -> channel.
# 1 淘宝 covers 天猫 (sub_platform_id 1). Shopee/Shopify have no 旺店通 platform id.
OMS_PLATFORM: dict[int, str] = {
    1: "taobao",  # 淘宝 (0 淘宝集市, 1 天猫商城)
    3: "jd",  # 京东
    39: "pdd",  # 拼多多
    69: "douyin",  # 抖店（放心购）
    75: "kuaishou",  # 快手小店
}

# trade_status (订单状态) -> canonical status, as documented for queryWithDetail.
OMS_TRADE_STATUS: dict[int, str] = {
    4: "REFUNDED",  # 线下退款
    5: "CANCELLED",  # 已取消
    6: "PAID",  # 待转预订单(待审核)
    10: "PENDING_PAYMENT",  # 未付款
    12: "PENDING_PAYMENT",  # 待尾款 (presale deposit paid, balance due)
    15: "PAID",  # 等未付 (paid, held for the buyer's unpaid orders to merge)
    16: "PAID",  # 延时审核
    19: "PAID",  # 预订单前处理
    20: "PAID",  # 审核前处理
    21: "ALLOCATED",  # 自流转待发货 (routed to a warehouse, waiting to ship)
    23: "PAID",  # 异常订单 (held; see module docstring)
    24: "PAID",  # 换货预订单
    25: "PAID",  # 待处理预订单
    27: "PAID",  # 待分配预订单
    30: "PAID",  # 待客审
    35: "PAID",  # 待财审
    40: "PAID",  # 审核中
    55: "ALLOCATED",  # 已审核 (stock-out order sent to the warehouse)
    95: "OUTBOUND",  # 已发货
    96: "OUTBOUND",  # 成本确认 (after shipment)
    101: "OUTBOUND",  # 已过账 (after shipment)
    110: "OUTBOUND",  # 已完成 (ERP-side completion, not buyer receipt)
}

# Documented statuses we refuse to map, and why (rejected UNSUPPORTED, never guessed).
OMS_UNMAPPED_STATUS: dict[int, str] = {
    7: "待转已完成 is ERP housekeeping for an order handled outside the ERP; it states no shipment",
}

# trade_mask bits (订单掩码, 位运算) that make this ERP order cover only part of the channel order.
OMS_PARTIAL_MASK: dict[int, str] = {
    64: "部分发货 (partly shipped)",
    2048: "拆分 (split ERP order)",
}

# detail_list[].gift_type (赠品方式) -> is the line on the channel order? ERP-added gifts
# are not, and would make the lines fingerprint differ from the channel's for no reason.
OMS_GIFT_TYPE: dict[int, bool] = {
    0: True,  # 非赠品
    1: False,  # 自动赠送
    2: False,  # 手工赠送
    4: False,  # 周期购赠送
    8: True,  # 平台赠送 (on the platform order)
    32: False,  # 阶梯满赠
    64: False,  # CRM追加赠送
    65: True,  # 主品
    128: True,  # 主品 (before client 1.5.7.0)
}

STATUS_TABLES: dict[str, Mapping[Any, object]] = {
    "OMS_PLATFORM": OMS_PLATFORM,
    "OMS_TRADE_STATUS": OMS_TRADE_STATUS,
    "OMS_PARTIAL_MASK": OMS_PARTIAL_MASK,
    "OMS_GIFT_TYPE": OMS_GIFT_TYPE,
}

SPLIT_BIT = 2048  # trade_mask 拆分
ONLINE_SALE = 1  # trade_type 1 网店销售; other types (线下, 售后换货, 批发...) are no channel order's own


def _lines(trade: Mapping[str, Any], currency: str) -> list[tuple[str, dict[str, Any]]]:
    """(channel order id, OrderLine) for every line that is on the channel order."""
    out = []
    for i, detail in enumerate(sub.objects(trade, "detail_list", "detail", required=False)):
        gift = sub.whole(detail, "gift_type", required=False) or 0
        if gift not in OMS_GIFT_TYPE:
            raise Reject(UNKNOWN_STATUS, f"detail_list[{i}].gift_type {gift} is not a documented 赠品方式")
        if not OMS_GIFT_TYPE[gift]:
            continue
        src_tid = sub.ident_value(detail.get("src_tid"), f"detail_list[{i}].src_tid")
        refund = sub.whole(detail, "refund_status", required=False)
        out.append(
            (
                src_tid,
                {
                    "line_id": sub.opt_text(detail, "src_oid"),
                    "sku": sub.req_text(detail, "spec_no"),
                    "qty": sub.positive(detail, "num"),
                    "unit_price_minor": sub.money(detail, "order_price", currency, required=False),
                    "raw_status": f"refund_status={refund}" if refund else None,
                },
            )
        )
    return out


def normalise(trade: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One 旺店通 ERP order -> one OrderEvent per channel order it contains."""
    trade_no = f.ident(trade, "trade_no")
    status_code = sub.whole(trade, "trade_status")
    assert status_code is not None
    if status_code in OMS_UNMAPPED_STATUS:
        raise Reject(UNSUPPORTED, f"trade_status {status_code}: {OMS_UNMAPPED_STATUS[status_code]}")
    if status_code not in OMS_TRADE_STATUS:
        raise Reject(UNKNOWN_STATUS, f"unknown 旺店通 trade_status {status_code}")
    trade_type = sub.whole(trade, "trade_type")
    if trade_type != ONLINE_SALE:
        raise Reject(UNSUPPORTED, f"trade_type {trade_type} is not 网店销售 (1): no channel order of its own")
    platform = sub.whole(trade, "platform_id")
    assert platform is not None
    if platform not in OMS_PLATFORM:
        raise Reject(UNSUPPORTED, f"platform_id {platform} is not a tracked channel")
    channel = OMS_PLATFORM[platform]
    modified = sub.req_time(trade, "modified")
    mask = sub.whole(trade, "trade_mask", required=False) or 0
    if mask < 0:
        raise Reject(INVALID_VALUE, f"trade_mask must not be negative, got {mask}")
    split = bool(mask & SPLIT_BIT)
    partial = any(mask & bit for bit in OMS_PARTIAL_MASK)
    bad_reason = sub.whole(trade, "bad_reason", required=False) or 0
    raw_status = f"{status_code}|bad_reason={bad_reason}" if bad_reason else str(status_code)
    currency = sub.currency_code(trade.get("currency") or "CNY", "currency")  # empty = 本位币 CNY

    refs = sub.id_list(trade.get("src_tids"), "src_tids")
    lines = _lines(trade, currency)
    for ref, _ in lines:
        if ref not in refs:
            refs.append(ref)
    merged = len(refs) > 1
    amount = None if merged or split else sub.money(trade, "receivable", currency, required=False)

    events = []
    for ref in refs:
        order = sub.order_id(channel, ref, "src_tids")
        events.append(
            sub.order_event(
                source=SOURCE,
                system=SYSTEM,
                fact=(trade_no, order, raw_status, modified.isoformat()),
                order=order,
                status=OMS_TRADE_STATUS[status_code],
                raw_status=raw_status,
                partial=partial,
                event_time=modified,
                ctx=ctx,
                raw=raw,
                amount_minor=amount,
                currency=currency,
                lines=[line for line_ref, line in lines if line_ref == ref],
                warehouse=sub.opt_text(trade, "warehouse_no"),
                tracking_no=sub.opt_text(trade, "logistics_no"),
            )
        )
    return events
