"""Shopee order status pushes (push code 3) as a :class:`connectors.webhook.WebhookSpec`.

Shopee Open Platform developer guide "Push Mechanism notifications" (sections "Push
Authorization" and "Push Mechanism Retry Logic") and the Order Status Update Push, code 3
(https://open.shopee.com/push-mechanism/1): a POST whose body is
``{"data": {"ordersn", "status", "completed_scenario", "update_time"}, "shop_id", "code": 3,
"timestamp"}`` and whose ``Authorization`` header is hex HMAC-SHA256(partner key, callback URL
+ "|" + raw body). The body is published as received: the normaliser accepts it as a
status-only fact. Shopee counts a push as successful only on a 2xx with an *empty* body, and
a subscription whose success rate falls below 30% is disabled; pushes missed meanwhile are
never redelivered (the reconciliation pull repairs them).

A push carries no delivery id. The dedup id is the push's content: shop, code, order, status
and update time - the same fact, whichever delivery brings it. Other push codes (shop
authorisation, tracking numbers, marketing...) and pushes for other shops are acknowledged
and not published.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from connectors.shopee.client import SOURCE
from connectors.shopee.signing import AUTHORIZATION_HEADER, verify_push
from connectors.webhook import BadRequest, BadSignature, Headers, WebhookSpec
from ordertwin.settings import Settings

ORDER_STATUS_PUSH = 3


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise BadRequest("shopee: push has no 'data' object")
    return data


def make_spec(settings: Settings, _http: aiohttp.ClientSession | None = None) -> WebhookSpec:
    partner_key = settings.shopee_partner_key.get_secret_value()
    shop_id = settings.shopee_shop_id

    def verify(headers: Headers, raw: bytes, url: str) -> None:
        if not verify_push(partner_key, url, raw, headers.get(AUTHORIZATION_HEADER)):
            raise BadSignature(f"shopee: {AUTHORIZATION_HEADER} does not sign {url}|body")

    def event_id(_headers: Headers, body: Any) -> str:
        data = _data(body)
        parts = (
            body.get("shop_id"),
            body.get("code"),
            data.get("ordersn"),
            data.get("status"),
            data.get("update_time"),
        )
        if any(p is None or p == "" for p in parts):
            raise BadRequest("shopee: push lacks shop_id/code/ordersn/status/update_time")
        return ":".join(str(p) for p in parts)

    def key(body: Any) -> bytes | None:
        sn = _data(body).get("ordersn")
        if not isinstance(sn, str) or not sn.strip():
            raise BadRequest("shopee: push has no 'ordersn'")
        return sn.strip().encode("utf-8")

    def timestamp(_headers: Headers, body: Any) -> datetime | None:
        value = body.get("timestamp") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return datetime.fromtimestamp(value, UTC)

    def accepts(_headers: Headers, body: Any) -> bool:
        return isinstance(body, dict) and body.get("code") == ORDER_STATUS_PUSH and body.get("shop_id") == shop_id

    return WebhookSpec(
        source=SOURCE,
        verify=verify,
        event_id=event_id,
        key=key,
        timestamp=timestamp,
        max_age=timedelta(seconds=settings.webhook_max_age_s),
        accepts=accepts,
    )
