"""Webhook security on the real broker: refused and replayed deliveries leave nothing on Kafka.

A receiver (as ``run_connector`` serves it) gets one genuine delivery and then a bad signature,
a body altered after signing, a stale and a future timestamp, an oversize body, a replay of the
genuine delivery, and (抖店, Shopee) forged pushes; an independent consumer then finds exactly
the genuine record on ``raw.<source>``, with the standard headers.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry

from connectors.douyin import signing as douyin_signing
from connectors.shopee import signing as shopee_signing
from connectors.shopify.signing import webhook_hmac
from connectors.webhook import open_receiver
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from tests.live import free_port, read_topic

pytestmark = pytest.mark.live


def record_count(settings: Settings, topic: str, timeout: float = 30.0) -> int:
    """Records ever written to ``topic`` (sum of end - start offsets), independent consumer;
    waits while a new, never-written topic's partition leaders settle."""
    consumer = Consumer({**settings.kafka_config(), "group.id": "unused-counter", "enable.auto.commit": False})
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for p in partitions:
            while True:
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    break
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            total += high - low
        return total
    finally:
        consumer.close()


def shopify_headers(settings: Settings, body: bytes, webhook_id: str, **extra: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        "X-Shopify-Shop-Domain": "ordertwin-sim.myshopify.com",
        "X-Shopify-Hmac-Sha256": webhook_hmac(settings.shopify_webhook_secret.get_secret_value(), body),
        "Content-Type": "application/json",
    }
    headers.update(extra)
    return headers


async def test_shopify_refusals_and_replays_publish_nothing(live_settings: Settings) -> None:
    settings = live_settings.model_copy(
        update={"shopify_webhook_port": free_port(), "webhook_max_body_bytes": 8192, "webhook_max_age_s": 3600.0}
    )
    registry = CollectorRegistry()
    body = json.dumps(
        {"id": 5601, "financial_status": "paid", "updated_at": "2026-11-11T07:00:00-05:00", "line_items": []}
    ).encode()
    async with open_receiver("shopify", settings, registry=registry) as running, aiohttp.ClientSession() as http:

        async def post(data: bytes, headers: dict[str, str]) -> int:
            async with http.post(running.url, data=data, headers=headers) as resp:
                return resp.status

        assert await post(body, shopify_headers(settings, body, "genuine")) == 200
        # Bad signature, and a body altered after signing.
        assert await post(body, shopify_headers(settings, body, "w2", **{"X-Shopify-Hmac-Sha256": "AAAA"})) == 401
        altered = body.replace(b'"paid"', b'"refunded"')
        assert await post(altered, shopify_headers(settings, body, "w3")) == 401
        # Stale (2 h old, max age 1 h) and from the future; each properly signed.
        old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        assert await post(body, shopify_headers(settings, body, "w4", **{"X-Shopify-Triggered-At": old})) == 401
        ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert await post(body, shopify_headers(settings, body, "w5", **{"X-Shopify-Triggered-At": ahead})) == 401
        # Oversize, properly signed.
        big = json.dumps({"id": 5602, "note": "x" * 10_000}).encode()
        assert await post(big, shopify_headers(settings, big, "w6")) == 413
        # A replay of the genuine delivery: 2xx, deduplicated.
        assert await post(body, shopify_headers(settings, body, "genuine")) == 200
        sample = registry.get_sample_value
        for outcome, count in (("accepted", 1), ("bad_signature", 2), ("stale", 2), ("too_large", 1), ("duplicate", 1)):
            assert sample("ordertwin_webhook_requests_total", {"source": "shopify", "outcome": outcome}) == count

    messages = read_topic(settings, Catalogue.from_settings(settings).raw("shopify").name, idle_s=2)
    assert [(m.key(), m.value()) for m in messages] == [(b"5601", body)]
    headers = dict(messages[0].headers())
    assert headers["delivery_id"] == b"genuine" and headers["source"] == b"shopify"
    assert headers["connector"] == settings.connector_instance.encode()
    assert datetime.fromisoformat(headers["received_at"].decode()).tzinfo is not None


async def test_shopee_and_douyin_forgeries_publish_nothing(live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"shopee_webhook_port": free_port(), "douyin_webhook_port": free_port()})
    now = int(datetime.now(UTC).timestamp())
    push = json.dumps(
        {
            "data": {"ordersn": "261111FORGED01", "status": "SHIPPED", "completed_scenario": "", "update_time": now},
            "shop_id": settings.shopee_shop_id,
            "code": 3,
            "timestamp": now,
        }
    ).encode()
    key = settings.shopee_partner_key.get_secret_value()
    message = json.dumps([{"tag": "100", "msg_id": "m-forged", "data": json.dumps({"p_id": 6936476692437474563})}])
    app_key, secret = settings.douyin_app_key, settings.douyin_app_secret.get_secret_value()
    async with (
        open_receiver("shopee", settings, registry=CollectorRegistry()) as shopee,
        open_receiver("douyin", settings, registry=CollectorRegistry()) as douyin,
        aiohttp.ClientSession() as http,
    ):

        async def post(url: str, data: bytes, headers: dict[str, str]) -> int:
            async with http.post(url, data=data, headers=headers) as resp:
                return resp.status

        # Shopee signs URL|body: a signature for another callback URL, or with another key, fails.
        elsewhere = shopee_signing.push_sign(key, "https://attacker.example/webhooks/shopee", push)
        assert await post(shopee.url, push, {"Authorization": elsewhere}) == 401
        assert await post(shopee.url, push, {"Authorization": shopee_signing.push_sign("x", shopee.url, push)}) == 401
        stale = push.replace(f'"timestamp": {now}'.encode(), f'"timestamp": {now - 3 * 86400}'.encode())
        assert await post(shopee.url, stale, {"Authorization": shopee_signing.push_sign(key, shopee.url, stale)}) == 401
        # 抖店: event-sign = md5(app_key + body + secret); a wrong secret or another app fails.
        data = message.encode()
        assert await post(douyin.url, data, {"event-sign": douyin_signing.push_sign(app_key, "x", data)}) == 401
        signed = {"event-sign": douyin_signing.push_sign(app_key, secret, data), "app-id": "another-app"}
        assert await post(douyin.url, data, signed) == 401

    for source in ("shopee", "douyin"):
        assert record_count(settings, Catalogue.from_settings(settings).raw(source).name) == 0
