"""The generic webhook receiver without a broker: a fake publisher whose acknowledgements the
test controls, so ordering (answer only after the ack, dedup only after the ack) is exact.
The same paths against the real broker: test_webhook_security_live.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from connectors.errors import DeliveryFailure, PublishError, TransientError
from connectors.publish import RecordAck
from connectors.shopify.push import make_spec as shopify_spec
from connectors.shopify.signing import webhook_hmac
from connectors.webhook import DedupCache, Delivery, Record, WebhookMetrics, WebhookReceiver, WebhookSpec
from ordertwin.settings import Settings

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
SECRET = "shopify-dev-secret"
ORDER = {"id": 5678901244567, "financial_status": "paid", "updated_at": "2026-11-11T06:59:00-05:00"}


@dataclass
class FakePublisher:
    auto_ack: bool = True
    records: list[tuple[str, bytes | None, bytes, str | None]] = field(default_factory=list)
    futures: list[concurrent.futures.Future[RecordAck]] = field(default_factory=list)

    def submit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Any = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> concurrent.futures.Future[RecordAck]:
        future: concurrent.futures.Future[RecordAck] = concurrent.futures.Future()
        self.records.append((topic, key, value, delivery_id))
        self.futures.append(future)
        if self.auto_ack:
            future.set_result(RecordAck(topic, 0, len(self.records) - 1))
        return future


@dataclass
class Harness:
    receiver: WebhookReceiver
    publisher: FakePublisher
    url: str
    http: aiohttp.ClientSession

    def sample(self, outcome: str) -> float:
        return self.receiver.metrics.value("ordertwin_webhook_requests_total", source="shopify", outcome=outcome)

    async def post(
        self, body: bytes, *, webhook_id: str = "wh-1", topic: str = "orders/paid", sign: bool = True, **headers: str
    ) -> tuple[int, bytes]:
        h = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Triggered-At": "2026-11-11T11:59:00.123456789Z",
            "X-Shopify-Hmac-Sha256": webhook_hmac(SECRET, body) if sign else "AAAA",
            "Content-Type": "application/json",
        }
        h.update({k.replace("_", "-"): v for k, v in headers.items()})
        async with self.http.post(self.url, data=body, headers=h) as resp:
            return resp.status, await resp.read()


async def _harness(spec: WebhookSpec, publisher: FakePublisher, *, ack_timeout: float = 0.3) -> AsyncIterator[Harness]:
    receiver = WebhookReceiver(
        spec,
        publisher,
        topic="raw.shopify",
        metrics=WebhookMetrics(CollectorRegistry()),
        max_body_bytes=2048,
        ack_timeout=ack_timeout,
        clock=lambda: NOW,
    )
    server = TestServer(receiver.app())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Harness(receiver, publisher, str(server.make_url(spec.route)), http)
    finally:
        await server.close()


@pytest.fixture
async def shopify() -> AsyncIterator[Harness]:
    async for h in _harness(shopify_spec(Settings()), FakePublisher()):
        yield h


BODY = json.dumps(ORDER).encode()


async def test_accepted_then_replay_is_deduplicated(shopify: Harness) -> None:
    assert await shopify.post(BODY) == (200, b"")
    assert shopify.publisher.records == [("raw.shopify", b"5678901244567", BODY, "wh-1")]
    assert await shopify.post(BODY) == (200, b"")  # a Shopify retry of the same delivery
    assert len(shopify.publisher.records) == 1
    assert shopify.sample("accepted") == 1 and shopify.sample("duplicate") == 1
    # Another delivery (other webhook id) of the same order is a new record.
    assert (await shopify.post(BODY, webhook_id="wh-2"))[0] == 200
    assert len(shopify.publisher.records) == 2


async def test_refusals_publish_nothing(shopify: Harness) -> None:
    assert (await shopify.post(BODY, sign=False))[0] == 401
    tampered = BODY.replace(b"paid", b"void")
    status, _ = await shopify.post(tampered, X_Shopify_Hmac_Sha256=webhook_hmac(SECRET, BODY))
    assert status == 401
    assert (await shopify.post(BODY, X_Shopify_Triggered_At="2026-11-08T11:59:00Z"))[0] == 401  # 3 days old
    assert (await shopify.post(BODY, X_Shopify_Triggered_At="2026-11-11T13:00:00Z"))[0] == 401  # 1 h ahead
    assert (await shopify.post(BODY, X_Shopify_Triggered_At="yesterday"))[0] == 400
    assert (await shopify.post(b"{not json", webhook_id="wh-9"))[0] == 400
    assert (await shopify.post(BODY, webhook_id=""))[0] == 400
    assert (await shopify.post(json.dumps({"name": "no id"}).encode()))[0] == 400
    big = json.dumps({**ORDER, "note": "x" * 4096}).encode()
    assert (await shopify.post(big))[0] == 413
    assert shopify.publisher.records == []
    assert shopify.sample("bad_signature") == 2 and shopify.sample("stale") == 2
    assert shopify.sample("bad_request") == 4 and shopify.sample("too_large") == 1
    assert shopify.receiver.metrics.value("ordertwin_webhook_signature_failures_total", source="shopify") == 2
    assert len(shopify.receiver.dedup) == 0


async def test_streamed_oversize_body_without_length_is_refused(shopify: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with shopify.http.post(shopify.url, data=chunks(), headers={"X-Shopify-Topic": "orders/paid"}) as resp:
        assert resp.status == 413
    assert shopify.publisher.records == []


async def test_not_an_order_fact_is_acknowledged_but_not_published(shopify: Harness) -> None:
    assert (await shopify.post(b'{"id": 5678901244567}', topic="orders/delete"))[0] == 200
    assert shopify.publisher.records == [] and shopify.sample("ignored") == 1


async def test_answer_waits_for_the_ack_and_dedup_only_after_it() -> None:
    publisher = FakePublisher(auto_ack=False)
    async for h in _harness(shopify_spec(Settings()), publisher, ack_timeout=0.3):
        # No ack in time: 503, and the id is not in the dedup set.
        assert (await h.post(BODY))[0] == 503
        assert len(publisher.records) == 1 and "wh-1" not in h.receiver.dedup
        assert h.receiver.in_flight == 1
        # The platform retries while the first copy is still in flight: no second record.
        assert (await h.post(BODY))[0] == 503
        assert len(publisher.records) == 1
        # Kafka acknowledges late: the id enters the dedup set, the next retry is a duplicate.
        publisher.futures[0].set_result(RecordAck("raw.shopify", 0, 0))
        await asyncio.sleep(0.05)
        assert "wh-1" in h.receiver.dedup and h.receiver.in_flight == 0
        assert await h.post(BODY) == (200, b"")
        assert len(publisher.records) == 1
        assert h.sample("kafka_unavailable") == 2 and h.sample("duplicate") == 1
        latency = h.receiver.metrics.value("ordertwin_webhook_publish_latency_seconds_count", source="shopify")
        assert latency == 1


async def test_a_retry_waiting_for_an_in_flight_copy_gets_its_outcome() -> None:
    publisher = FakePublisher(auto_ack=False)
    async for h in _harness(shopify_spec(Settings()), publisher, ack_timeout=2.0):
        first = asyncio.create_task(h.post(BODY))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(h.post(BODY))
        await asyncio.sleep(0.1)
        publisher.futures[0].set_result(RecordAck("raw.shopify", 0, 0))
        assert (await first)[0] == 200 and (await second)[0] == 200
        assert len(publisher.records) == 1
        assert h.sample("accepted") == 1 and h.sample("duplicate") == 1


async def test_failed_delivery_is_503_and_republished_on_retry() -> None:
    publisher = FakePublisher(auto_ack=False)
    async for h in _harness(shopify_spec(Settings()), publisher, ack_timeout=1.0):
        task = asyncio.create_task(h.post(BODY))
        await asyncio.sleep(0.1)
        publisher.futures[0].set_exception(PublishError("down", [DeliveryFailure("raw.shopify", None, "timed out")]))
        assert (await task)[0] == 503
        assert "wh-1" not in h.receiver.dedup
        publisher.auto_ack = True
        assert (await h.post(BODY))[0] == 200
        assert len(publisher.records) == 2 and "wh-1" in h.receiver.dedup


async def test_full_local_queue_is_503() -> None:
    class Full(FakePublisher):
        def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[RecordAck]:
            raise PublishError("producer queue is full")

    async for h in _harness(shopify_spec(Settings()), Full()):
        assert (await h.post(BODY))[0] == 503
        assert h.sample("kafka_unavailable") == 1 and h.receiver.in_flight == 0


def _batch_spec(resolve: Any) -> WebhookSpec:
    """A doorbell platform: a JSON array of messages, each resolved to a record."""

    def split(_headers: Any, body: Any, _raw: bytes) -> Sequence[Delivery]:
        return [Delivery(m["msg_id"], str(m["id"]).encode(), None, ref=m["id"]) for m in body if m["tag"] == "100"]

    return WebhookSpec(
        source="shopify",
        verify=lambda _h, _raw, _url: None,
        event_id=lambda _h, _b: "unused",
        key=lambda _b: None,
        split=split,
        resolve=resolve,
        ok_body=b'{"code":0}',
        ok_content_type="application/json",
    )


async def test_doorbell_pushes_are_resolved_per_new_message() -> None:
    fetched: list[Any] = []

    async def resolve(delivery: Delivery) -> Sequence[Record]:
        fetched.append(delivery.ref)
        return [Record(delivery.key, json.dumps({"order_id": delivery.ref}).encode())]

    publisher = FakePublisher()
    async for h in _harness(_batch_spec(resolve), publisher):
        batch = [
            {"tag": "100", "msg_id": "m1", "id": 1},
            {"tag": "999", "msg_id": "m2", "id": 2},
            {"tag": "100", "msg_id": "m3", "id": 3},
        ]
        assert await h.post(json.dumps(batch).encode()) == (200, b'{"code":0}')
        assert sorted(fetched) == [1, 3]
        assert sorted(r[3] or "" for r in publisher.records) == ["m1", "m3"]
        # Redelivered with one new message: only the new one is fetched and published.
        batch.append({"tag": "100", "msg_id": "m4", "id": 4})
        assert (await h.post(json.dumps(batch).encode()))[0] == 200
        assert sorted(fetched) == [1, 3, 4] and len(publisher.records) == 3
        assert (await h.post(json.dumps([batch[1]]).encode()))[0] == 200
        assert h.sample("ignored") == 1


async def test_doorbell_fetch_failure_is_503_and_retried() -> None:
    attempts: list[Any] = []

    async def resolve(delivery: Delivery) -> Sequence[Record]:
        attempts.append(delivery.ref)
        if len(attempts) == 1:
            raise TransientError("douyin", "HTTP 500")
        return [Record(delivery.key, b"{}")]

    publisher = FakePublisher()
    async for h in _harness(_batch_spec(resolve), publisher):
        body = json.dumps([{"tag": "100", "msg_id": "m1", "id": 1}]).encode()
        assert (await h.post(body))[0] == 503
        assert h.sample("upstream_unavailable") == 1 and publisher.records == []
        assert (await h.post(body))[0] == 200
        assert len(publisher.records) == 1


def test_dedup_cache_forgets_by_age_and_size() -> None:
    now = [0.0]
    cache = DedupCache(3, timedelta(seconds=10), clock=lambda: now[0])
    for i in range(4):
        cache.add(f"e{i}")
    assert "e0" not in cache and {"e1", "e2", "e3"} <= {e for e in ("e1", "e2", "e3") if e in cache}
    now[0] = 11.0
    assert "e1" not in cache
    cache.add("e9")
    assert len(cache) == 1 and "e9" in cache
