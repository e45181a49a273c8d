"""Shopify order webhooks as a :class:`connectors.webhook.WebhookSpec`.

Per delivery (https://shopify.dev/docs/apps/build/webhooks/delivery-structure and
.../verify-deliveries): ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with the
app's client secret), ``X-Shopify-Topic`` (e.g. ``orders/paid``), ``X-Shopify-Shop-Domain``,
``X-Shopify-Webhook-Id`` (the delivery id, the same on every retry of a delivery: our dedup
id), ``X-Shopify-Event-Id`` (the event; several subscriptions may deliver one event),
``X-Shopify-Triggered-At`` (when the event happened; our freshness check) and
``X-Shopify-API-Version``. The body of an ``orders/*`` webhook is the Admin REST ``Order``
object, the very shape ``orders.json`` returns and the normaliser accepts, so it is published
as received. Shopify answers must come within 5 s; it retries a failed delivery 8 times over
the next 4 hours, and may deliver a webhook more than once.

``orders/delete`` (body ``{"id": ...}``: no state) and ``orders/edited`` (an ``order_edit``
object, not an order) are acknowledged and not published.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp

from connectors.shopify.client import SOURCE, order_key, parse_shopify_time
from connectors.shopify.signing import HMAC_HEADER, verify_webhook
from connectors.webhook import BadRequest, BadSignature, Headers, WebhookSpec
from ordertwin.settings import Settings

TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"
SHOP_DOMAIN_HEADER = "X-Shopify-Shop-Domain"
API_VERSION_HEADER = "X-Shopify-API-Version"

# Webhook topics whose body is a whole Order (the normaliser's accepted shape).
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/cancelled",
    }
)


def make_spec(settings: Settings, _http: aiohttp.ClientSession | None = None) -> WebhookSpec:
    """The Shopify receiver's spec, keyed with ``settings.shopify_webhook_secret``."""
    secret = settings.shopify_webhook_secret.get_secret_value()

    def verify(headers: Headers, raw: bytes, _url: str) -> None:
        if not verify_webhook(secret, raw, headers.get(HMAC_HEADER)):
            raise BadSignature(f"shopify: {HMAC_HEADER} does not match the body")

    def event_id(headers: Headers, _body: Any) -> str:
        webhook_id = (headers.get(WEBHOOK_ID_HEADER) or "").strip()
        if not webhook_id:
            raise BadRequest(f"shopify: {WEBHOOK_ID_HEADER} is missing")
        return webhook_id

    def key(body: Any) -> bytes | None:
        found = order_key(body)
        if found is None:
            raise BadRequest("shopify: the order has no usable 'id'")
        return found

    def triggered_at(headers: Headers, _body: Any) -> datetime | None:
        value = headers.get(TRIGGERED_AT_HEADER)
        return parse_shopify_time(value) if value else None

    def accepts(headers: Headers, body: Any) -> bool:
        return headers.get(TOPIC_HEADER) in ORDER_TOPICS and isinstance(body, dict)

    return WebhookSpec(
        source=SOURCE,
        verify=verify,
        event_id=event_id,
        key=key,
        timestamp=triggered_at,
        max_age=timedelta(seconds=settings.webhook_max_age_s),
        accepts=accepts,
    )
