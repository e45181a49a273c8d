"""Carrier tracking (Kuaidi100 快递100 subscription push, 快递信息推送服务) -> OrderEvent.

Kuaidi100 POSTs ``param=<json>&sign=<md5(param+salt)>`` to the ``callbackurl`` given at
subscription (``poll.kuaidi100.com/poll``). The carrier connector checks ``sign`` and
publishes the call as received::

    {"query": {"order_id": "taobao:3987215540123456829"},   # query string of the callbackurl
     "param": {...}}                                        # the pushed param (object or JSON text)

Order reference convention: Kuaidi100 echoes nothing of ours but the callback URL, so
the merchant subscribes each waybill with ``callbackurl=https://<hook>/kuaidi100?order_id=
<channel>:<platform order id>`` (comma-separated when one parcel ships several merged
channel orders). A push without it is rejected MISSING_FIELD.

``param`` fields used (push doc): ``status`` (polling / shutdown / updateall / abort),
``message``, ``lastResult{state, com, nu, data[{time, ftime, context}]}``. ``state`` is
the 物流状态; with ``resultv2`` enabled it is the 高级物流状态 (sub-state) instead, so
``CARRIER_STATE`` maps both. Event time is the newest ``data[].time`` (Beijing time; the
trace is full and newest first, we take the maximum anyway). The carrier is
``lastResult.com`` (Kuaidi100 company code) mapped to the Qimen/WMS carrier codes in
``KUAIDI100_COM`` (unknown codes are kept verbatim); the tracking number is ``nu``.
``data[].context`` (courier names, phone numbers, addresses) is never copied.

Modelling:

- 揽收/在途/派件 (and their sub-states) => IN_TRANSIT; 签收 => DELIVERED.
- 退回 (on its way back to the sender) and 退签 (signed back by the sender) => RETURNED:
  the carrier no longer delivers this parcel to the buyer. The warehouse's receipt of the
  goods is the WMS's RETURNED (returnorder.confirm).
- Exceptions 疑难 (2, 201-210), 拒签 (14), 转投 (7) and customs (8, 10-13) => IN_TRANSIT:
  the parcel is in the carrier's hands and not delivered; ``raw_status`` carries the code
  so the exception stays visible (a refusal ends as 退回/退签 later).
- Pre-pickup states 101 已下单, 102 待揽收 and 401 已销单 (waybill withdrawn) state no
  lifecycle fact for the order (the parcel may still be in the warehouse) and are rejected
  UNSUPPORTED (``CARRIER_UNMAPPED_STATE``), as is an ``abort``-ed subscription.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from streams.normalise import fields as f
from streams.normalise.model import (
    INVALID_VALUE,
    MISSING_FIELD,
    UNKNOWN_STATUS,
    UNSUPPORTED,
    WRONG_TYPE,
    Context,
    RawRecord,
    Reject,
)
from streams.normalise.sources import _subsystem as sub

SOURCE = "carrier"
SYSTEM = "CARRIER"

# lastResult.state: 物流状态 (0-8, 10-14) and 高级物流状态 (3- and 4-digit sub-states).
CARRIER_STATE: dict[str, str] = {
    "1": "IN_TRANSIT",  # 揽收
    "103": "IN_TRANSIT",  # 已揽收
    "0": "IN_TRANSIT",  # 在途
    "1001": "IN_TRANSIT",  # 到达派件城市
    "1002": "IN_TRANSIT",  # 干线
    "1003": "IN_TRANSIT",  # 转递 (sent on to a new address)
    "5": "IN_TRANSIT",  # 派件
    "501": "IN_TRANSIT",  # 投柜或驿站 (in a locker / station, not yet collected)
    "3": "DELIVERED",  # 签收
    "301": "DELIVERED",  # 本人签收
    "302": "DELIVERED",  # 派件异常后签收
    "303": "DELIVERED",  # 代签
    "304": "DELIVERED",  # 投柜或站签收
    "6": "RETURNED",  # 退回 (returning to the sender)
    "4": "RETURNED",  # 退签 (signed back by the sender)
    "14": "IN_TRANSIT",  # 拒签 (refused by the buyer; a return follows)
    "7": "IN_TRANSIT",  # 转投 (handed to another carrier)
    "2": "IN_TRANSIT",  # 疑难
    "201": "IN_TRANSIT",  # 超时未签收
    "202": "IN_TRANSIT",  # 超时未更新
    "203": "IN_TRANSIT",  # 拒收 (refusal awaiting the shipper's decision)
    "204": "IN_TRANSIT",  # 派件异常
    "205": "IN_TRANSIT",  # 柜或驿站超时未取
    "206": "IN_TRANSIT",  # 无法联系
    "207": "IN_TRANSIT",  # 超区
    "208": "IN_TRANSIT",  # 滞留
    "209": "IN_TRANSIT",  # 破损
    "210": "IN_TRANSIT",  # 销单 (the shipper asked to withdraw the parcel)
    "8": "IN_TRANSIT",  # 清关
    "10": "IN_TRANSIT",  # 待清关
    "11": "IN_TRANSIT",  # 清关中
    "12": "IN_TRANSIT",  # 已清关
    "13": "IN_TRANSIT",  # 清关异常
}

# Documented states without a lifecycle fact: rejected UNSUPPORTED, never guessed.
CARRIER_UNMAPPED_STATE: dict[str, str] = {
    "101": "已下单: waybill created, parcel not collected (it may still be in the warehouse)",
    "102": "待揽收: waiting for the carrier to collect the parcel",
    "401": "已销单: the waybill was withdrawn",
}

# Kuaidi100 company code (快递公司编码) -> carrier code used by the WMS (Qimen logisticsCode);
# JT (极兔) has no Qimen code and uses the schema's own abbreviation.
KUAIDI100_COM: dict[str, str] = {
    "shunfeng": "SF",  # 顺丰速运
    "zhongtong": "ZTO",  # 中通快递
    "yuantong": "YTO",  # 圆通速递
    "shentong": "STO",  # 申通快递
    "yunda": "YUNDA",  # 韵达快递
    "jd": "JD",  # 京东物流
    "ems": "EMS",  # EMS
    "youzhengguonei": "POSTB",  # 邮政快递包裹
    "zhaijisong": "ZJS",  # 宅急送
    "huitongkuaidi": "HTKY",  # 百世快递
    "tiantian": "TTKDEX",  # 天天快递
    "youshuwuliu": "UC",  # 优速快递
    "guotongkuaidi": "GTO",  # 国通快递
    "jtexpress": "JT",  # 极兔速递
}

STATUS_TABLES: dict[str, Mapping[str, object]] = {
    "CARRIER_STATE": CARRIER_STATE,
    "KUAIDI100_COM": KUAIDI100_COM,
}

ABORTED = "abort"  # param.status: monitoring stopped (e.g. "3天查询无记录", "60天无变化")


def _param(record: Mapping[str, Any]) -> Mapping[str, Any]:
    value = f.require(record, "param")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise Reject(INVALID_VALUE, "field 'param' is not JSON text") from None
    if not isinstance(value, Mapping):
        raise Reject(WRONG_TYPE, f"field 'param' should be an object, got {type(value).__name__}")
    return value


def _orders(record: Mapping[str, Any]) -> list[str]:
    query = sub.opt_obj(record, "query")
    if query is None or query.get("order_id") in (None, ""):
        raise Reject(MISSING_FIELD, "no order reference: the callback URL has no order_id")
    value = sub.req_text(query, "order_id")
    return [sub.parse_order_id(part.strip(), "query.order_id") for part in value.split(",")]


def normalise(record: Mapping[str, Any], raw: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """One Kuaidi100 push -> one OrderEvent per channel order in the parcel."""
    param = _param(record)
    if param.get("status") == ABORTED:
        raise Reject(UNSUPPORTED, f"subscription aborted: {str(param.get('message'))!r:.80}")
    result = f.obj(param, "lastResult")
    state = sub.req_text(result, "state")
    if state in CARRIER_UNMAPPED_STATE:
        raise Reject(UNSUPPORTED, f"state {state} {CARRIER_UNMAPPED_STATE[state]}")
    if state not in CARRIER_STATE:
        raise Reject(UNKNOWN_STATUS, f"unknown Kuaidi100 state {state!r:.20}")
    com = sub.req_text(result, "com")
    tracking = f.ident(result, "nu")
    trace = sub.objects(result, "data", "data")
    when = max(sub.req_time(step, "time") for step in trace)
    orders = list(dict.fromkeys(_orders(record)))
    return [
        sub.order_event(
            source=SOURCE,
            system=SYSTEM,
            fact=(com, tracking, order, state, when.isoformat()),
            order=order,
            status=CARRIER_STATE[state],
            raw_status=state,
            event_time=when,
            ctx=ctx,
            raw=raw,
            carrier=KUAIDI100_COM.get(com, com),
            tracking_no=tracking,
        )
        for order in orders
    ]
