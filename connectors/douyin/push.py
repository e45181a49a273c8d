"""抖店 message pushes (消息推送) as a :class:`connectors.webhook.WebhookSpec`.

A push is a POST whose body is a JSON array of messages ``{"tag", "msg_id", "data"}``
(``data`` is itself a JSON string), with headers ``app-id`` (the app key) and ``event-sign``
(see :mod:`connectors.douyin.signing`); the receiver answers ``{"code": 0, "msg": "success"}``
(the SDKs' ``SuccessResponse``), anything else makes 抖店 retry. 抖店 warns that a message may
be pushed more than once: ``msg_id`` is the dedup id.

Order messages only *name* the order (``p_id`` = shop order id, ``s_ids``, ``order_status``,
times) - trade messages documented at op.jinritemai.com/docs/message-docs/30/...: 100
订单创建, 101 订单支付/确认, 102 卖家发货, 103 交易完成, 105 买家收货信息变更, 106 订单取消, 108
卖家部分发货, 109 订单金额修改, 110 订单已支付待处理, and 206 退款成功 (after-sales, which closes
the order). The normaliser accepts only whole shop orders, so each new order message is
resolved with ``order.orderDetail`` and ``data.shop_order_detail`` is published (exact bytes,
key ``order_id``, header ``delivery_id`` = the ``msg_id``). Other tags are acknowledged and
not published. 抖店 pushes carry no send time, so there is no freshness check: replays are
stopped by the signature and the dedup window only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from connectors.douyin.client import SOURCE, DouyinClient
from connectors.douyin.signing import APP_ID_HEADER, EVENT_SIGN_HEADER, verify_push
from connectors.webhook import BadRequest, BadSignature, Delivery, Headers, Record, WebhookSpec
from ordertwin.settings import Settings

ORDER_TAGS = frozenset({"100", "101", "102", "103", "105", "106", "108", "109", "110", "206"})
SUCCESS_BODY = b'{"code":0,"msg":"success"}'
FAIL_BODY = b'{"code":1,"msg":"fail"}'


def order_messages(body: Any) -> list[Delivery]:
    """The order messages of a push body, as deliveries to resolve (``ref`` = shop order id)."""
    if not isinstance(body, list):
        raise BadRequest("douyin: push body is not a JSON array of messages")
    out = []
    for i, message in enumerate(body):
        if not isinstance(message, dict):
            raise BadRequest(f"douyin: message {i} is not an object")
        tag, msg_id = str(message.get("tag", "")), message.get("msg_id")
        if tag not in ORDER_TAGS:
            continue
        if not isinstance(msg_id, str) or not msg_id.strip():
            raise BadRequest(f"douyin: message {i} has no msg_id")
        data = message.get("data")
        try:
            fields = json.loads(data) if isinstance(data, str) else data
        except ValueError:
            raise BadRequest(f"douyin: message {msg_id} data is not JSON") from None
        p_id = fields.get("p_id") if isinstance(fields, dict) else None
        if isinstance(p_id, bool) or not isinstance(p_id, (int, str)) or not str(p_id).strip():
            raise BadRequest(f"douyin: message {msg_id} (tag {tag}) names no p_id")
        order_id = str(p_id).strip()
        out.append(Delivery(event_id=msg_id.strip(), key=order_id.encode(), value=None, ref=order_id))
    return out


def make_spec(settings: Settings, http: aiohttp.ClientSession) -> WebhookSpec:
    app_key = settings.douyin_app_key
    app_secret = settings.douyin_app_secret.get_secret_value()
    client = DouyinClient.from_settings(http, settings)

    def verify(headers: Headers, raw: bytes, _url: str) -> None:
        if headers.get(APP_ID_HEADER, app_key) != app_key:
            raise BadSignature(f"douyin: push for app {headers.get(APP_ID_HEADER)!r}, not ours")
        if not verify_push(app_key, app_secret, raw, headers.get(EVENT_SIGN_HEADER)):
            raise BadSignature(f"douyin: {EVENT_SIGN_HEADER} does not match the body")

    def not_used(*_: Any) -> Any:
        raise AssertionError("douyin pushes are split into messages")

    async def resolve(delivery: Delivery) -> Sequence[Record]:
        raw, _detail = await client.order_detail(str(delivery.ref))
        return [Record(delivery.key, raw)]

    return WebhookSpec(
        source=SOURCE,
        verify=verify,
        event_id=not_used,
        key=not_used,
        split=lambda _headers, body, _raw: order_messages(body),
        resolve=resolve,
        ok_body=SUCCESS_BODY,
        ok_content_type="application/json",
        error_body=FAIL_BODY,
        error_content_type="application/json",
    )
