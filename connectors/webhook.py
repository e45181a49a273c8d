"""Receive platform pushes (webhooks) over HTTP and publish them, unchanged, to ``raw.<source>``.

One :class:`WebhookReceiver` per source, configured by the source's :class:`WebhookSpec`
(declared in ``connectors/<source>/``). Per request, in this order:

1. **Size** - a declared or actual body over ``max_body_bytes`` is refused with 413 before
   anything else is done with it.
2. **Signature** - ``spec.verify(headers, raw_body, url)`` checks the platform's signature on
   the *raw* bytes (constant-time comparison in each source's ``signing`` module); a failure
   is 401 and is counted.
3. **Parse and freshness** - the body must be JSON (400 otherwise); when the spec reads a
   timestamp, a delivery older than ``max_age`` (or from the future beyond the allowed clock
   skew) is refused with 401 ``stale``: a captured genuine delivery cannot be replayed after
   its id has left the dedup window, which lasts ``max_age`` (``dedup_ttl`` defaults to it).
4. **Dedup** - each platform event id (Shopify ``X-Shopify-Webhook-Id``, a 抖店 ``msg_id``, a
   Shopee push's content) that Kafka already acknowledged is answered 2xx again without
   re-publishing. Ids enter the dedup set only after the acknowledgement, so a delivery we
   answered 5xx is published when the platform retries it. A retry that arrives while the
   first copy is still in flight waits for that copy instead of publishing a second one.
5. **Publish and answer** - the record is produced with headers ``source``, ``received_at``,
   ``connector`` and ``delivery_id`` (= the platform's id); the request is answered 2xx only
   once Kafka's delivery report arrived (awaited without blocking the loop, see
   :meth:`connectors.publish.RawPublisher.submit`), and 503 when the report is a failure or
   does not come within ``ack_timeout`` (broker down): the platform retries.

Pushes that are not order facts (a Shopee shop-authorisation push, a Shopify ``orders/delete``,
a 抖店 product message) are acknowledged and not published (outcome ``ignored``).

Doorbell pushes (抖店: the message only names the order) set ``WebhookSpec.resolve``: for each
new event the receiver fetches the platform's order object and publishes that, so ``raw.<source>``
holds exactly what the normaliser accepts; a failing fetch is answered 503 (``upstream_unavailable``).

A receiver cannot know when a source is complete. For push sources with a reconciliation
pull (``mode = "webhook+pull"``) the pull writes the watermarks, after each completed window.
A push-only source (``mode = "webhook"``: the 奇门 WMS and 快递100 push and redeliver, and offer
no incremental listing to repair from) is vouched for by :func:`vouch_for_pushes`: every
``push_watermark_interval_s``, while the platform was heard (any correctly signed request)
within ``push_silence_s`` and nothing is in flight, the receiver vouches for ``now -
push_slack_s``. A platform that goes quiet therefore stops moving its watermark, and the
worker raises one SOURCE_STALE instead of blaming it order by order; a push later than the
slack is a late event, which the twin takes in like any other.

Metrics on the registry passed in:
``ordertwin_webhook_requests_total{source,outcome}`` (accepted | duplicate | ignored |
bad_signature | stale | too_large | bad_request | kafka_unavailable | upstream_unavailable),
``ordertwin_webhook_signature_failures_total{source}``,
``ordertwin_webhook_publish_latency_seconds{source}`` (submit -> Kafka acknowledgement) and
``ordertwin_webhook_deduplicated_total{source}`` (events not re-published).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry, Counter, Histogram

from connectors.errors import ConnectorError, PlatformError, PublishError
from connectors.publish import RawPublisher, RecordAck
from ordertwin.errors import ConfigError
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue

log = logging.getLogger(__name__)

Headers = Mapping[str, str]

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
IGNORED = "ignored"
BAD_SIGNATURE = "bad_signature"
STALE = "stale"
TOO_LARGE = "too_large"
BAD_REQUEST = "bad_request"
KAFKA_UNAVAILABLE = "kafka_unavailable"
UPSTREAM_UNAVAILABLE = "upstream_unavailable"
OUTCOMES = (
    ACCEPTED,
    DUPLICATE,
    IGNORED,
    BAD_SIGNATURE,
    STALE,
    TOO_LARGE,
    BAD_REQUEST,
    KAFKA_UNAVAILABLE,
    UPSTREAM_UNAVAILABLE,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- refusals ------------------------------------------------------------------------------


class WebhookRefused(ConnectorError):
    """A delivery we answer with a 4xx; ``outcome`` labels the metric."""

    outcome = BAD_REQUEST
    status = 400


class BadSignature(WebhookRefused):
    outcome = BAD_SIGNATURE
    status = 401


class StaleDelivery(WebhookRefused):
    outcome = STALE
    status = 401


class BadRequest(WebhookRefused):
    outcome = BAD_REQUEST
    status = 400


# --- what a source declares ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One platform event inside a request: its id, the Kafka key and the bytes to publish.

    ``value`` None means "fetch it": :attr:`WebhookSpec.resolve` returns the record(s).
    ``ref`` carries what a resolver needs (e.g. the order id named by a 抖店 message).
    """

    event_id: str
    key: bytes | None
    value: bytes | None
    ref: Any = None


@dataclass(frozen=True)
class Record:
    """A record to publish: Kafka key and exact bytes."""

    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class WebhookSpec:
    """How one platform pushes: everything the generic receiver needs to know.

    ``verify(headers, raw_body, url)`` raises :class:`BadSignature`; ``event_id(headers, body)``
    is the platform's delivery/message id (dedup); ``key(body)`` the platform order id (Kafka
    key); ``timestamp(headers, body)`` (optional) when the platform sent it, checked against
    ``max_age``. ``accepts(headers, body)`` says whether the push is an order fact worth
    publishing. ``split`` replaces event_id/key for platforms that batch several events in one
    request; ``resolve`` fetches the record of a doorbell push (see the module docstring).
    ``parse(headers, raw_body, url)`` turns a verified request into the ``body`` the other
    callables see (default: the raw body as JSON; 快递100 posts a form, 奇门 puts the method in
    the query string); it raises ValueError for an unreadable request (400).
    """

    source: str
    verify: Callable[[Headers, bytes, str], None]
    event_id: Callable[[Headers, Any], str]
    key: Callable[[Any], bytes | None]
    timestamp: Callable[[Headers, Any], datetime | None] | None = None
    max_age: timedelta | None = None
    max_skew: timedelta = timedelta(minutes=5)
    accepts: Callable[[Headers, Any], bool] = lambda _headers, _body: True
    split: Callable[[Headers, Any, bytes], Sequence[Delivery]] | None = None
    resolve: Callable[[Delivery], Awaitable[Sequence[Record]]] | None = None
    parse: Callable[[Headers, bytes, str], Any] | None = None
    path: str = ""  # default /webhooks/<source>
    ok_body: bytes = b""  # Shopee wants an empty 2xx body
    ok_content_type: str = "text/plain"
    error_body: bytes = b""
    error_content_type: str = "text/plain"

    @property
    def route(self) -> str:
        return self.path or f"/webhooks/{self.source}"

    def deliveries(self, headers: Headers, body: Any, raw: bytes) -> list[Delivery]:
        """The events of one verified request (empty when it is not an order fact)."""
        if not self.accepts(headers, body):
            return []
        if self.split is not None:
            return list(self.split(headers, body, raw))
        return [Delivery(self.event_id(headers, body), self.key(body), raw)]


class Submitter(Protocol):
    """What the receiver needs of a publisher (:class:`RawPublisher` in production)."""

    def submit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> concurrent.futures.Future[RecordAck]: ...


# A plugin declares a factory: the spec needs credentials (and, for doorbell pushes, an HTTP
# session to fetch orders), which exist only once settings are read.
WebhookSpecFactory = Callable[[Settings, aiohttp.ClientSession], WebhookSpec]


# --- dedup ---------------------------------------------------------------------------------


class DedupCache:
    """Event ids acknowledged by Kafka, forgotten after ``ttl`` or when more than ``max_size``
    are held (least recently added first). In memory: a restart forgets them, and a platform
    retry after that is published again (a duplicate downstream, which is idempotent)."""

    def __init__(self, max_size: int, ttl: timedelta, clock: Callable[[], float] = time.monotonic) -> None:
        if max_size < 1:
            raise ConfigError(f"dedup size must be >= 1, got {max_size}")
        self.max_size = max_size
        self.ttl = ttl.total_seconds()
        self._clock = clock
        self._ids: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        if not isinstance(event_id, str):
            return False
        expiry = self._ids.get(event_id)
        if expiry is None:
            return False
        if expiry < self._clock():
            del self._ids[event_id]
            return False
        return True

    def add(self, event_id: str) -> None:
        now = self._clock()
        self._ids.pop(event_id, None)
        self._ids[event_id] = now + self.ttl
        while len(self._ids) > self.max_size:
            self._ids.popitem(last=False)
        # Expired ids at the old end go too, so memory follows the traffic of one ttl.
        while self._ids:
            oldest, expiry = next(iter(self._ids.items()))
            if expiry >= now:
                break
            del self._ids[oldest]


# --- metrics -------------------------------------------------------------------------------


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "ordertwin_webhook_requests",
            "Webhook requests by outcome.",
            ["source", "outcome"],
            registry=registry,
        )
        self.signature_failures = Counter(
            "ordertwin_webhook_signature_failures",
            "Webhook requests whose signature did not verify.",
            ["source"],
            registry=registry,
        )
        self.deduplicated = Counter(
            "ordertwin_webhook_deduplicated",
            "Webhook events already acknowledged by Kafka, answered without publishing.",
            ["source"],
            registry=registry,
        )
        self.publish_latency = Histogram(
            "ordertwin_webhook_publish_latency_seconds",
            "From producing a webhook record to Kafka's acknowledgement.",
            ["source"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )

    def value(self, name: str, **labels: str) -> float:
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got


# --- the receiver --------------------------------------------------------------------------


class _Unavailable(Exception):
    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a future's exception as seen (nobody may be waiting for it any more)."""
    if not future.cancelled():
        future.exception()


class WebhookReceiver:
    """An aiohttp handler publishing one source's pushes (see the module docstring)."""

    def __init__(
        self,
        spec: WebhookSpec,
        publisher: Submitter,
        *,
        topic: str,
        metrics: WebhookMetrics,
        max_body_bytes: int = 1_048_576,
        ack_timeout: float = 4.0,
        dedup: DedupCache | None = None,
        public_url: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.spec = spec
        self.publisher = publisher
        self.topic = topic
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.ack_timeout = ack_timeout
        ttl = spec.max_age or timedelta(days=2)
        self.dedup = dedup if dedup is not None else DedupCache(200_000, ttl)
        self.public_url = public_url or None
        self.clock = clock
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self.last_heard: datetime | None = None  # when a correctly signed request last came in

    # -- aiohttp wiring -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes + 1)
        app.router.add_post(self.spec.route, self.handle)
        return app

    def _answer(self, outcome: str, status: int, *, ok: bool = False) -> web.Response:
        self.metrics.requests.labels(self.spec.source, outcome).inc()
        if ok:
            return web.Response(status=status, body=self.spec.ok_body, content_type=self.spec.ok_content_type)
        return web.Response(status=status, body=self.spec.error_body, content_type=self.spec.error_content_type)

    async def _read(self, request: web.Request) -> bytes | None:
        """The whole body, or None as soon as it is longer than the limit."""
        declared = request.content_length
        if declared is not None and declared > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)

    def _check_time(self, headers: Headers, body: Any) -> None:
        if self.spec.timestamp is None or self.spec.max_age is None:
            return
        try:
            sent = self.spec.timestamp(headers, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest(f"{self.spec.source}: unreadable delivery timestamp ({exc})") from exc
        if sent is None:
            raise BadRequest(f"{self.spec.source}: delivery has no timestamp")
        now = self.clock()
        if sent < now - self.spec.max_age or sent > now + self.spec.max_skew:
            raise StaleDelivery(f"{self.spec.source}: delivery sent at {sent.isoformat()} is outside the accepted age")

    async def handle(self, request: web.Request) -> web.Response:
        source = self.spec.source
        raw = await self._read(request)
        if raw is None:
            log.warning("%s webhook: body over %d bytes refused", source, self.max_body_bytes)
            return self._answer(TOO_LARGE, 413)
        headers: Headers = request.headers
        url = self.public_url or str(request.url)
        received_at = self.clock()
        try:
            self.spec.verify(headers, raw, url)
            self.last_heard = received_at
            try:
                body = json.loads(raw) if self.spec.parse is None else self.spec.parse(headers, raw, url)
            except (ValueError, RecursionError) as exc:
                what = "body is not JSON" if self.spec.parse is None else f"unreadable request ({exc})"
                raise BadRequest(f"{source}: {what}") from exc
            self._check_time(headers, body)
            try:
                deliveries = self.spec.deliveries(headers, body, raw)
            except (KeyError, TypeError, ValueError) as exc:
                raise BadRequest(f"{source}: {exc}") from exc
        except WebhookRefused as exc:
            if isinstance(exc, BadSignature):
                self.metrics.signature_failures.labels(source).inc()
            log.warning("%s webhook refused (%s): %s", source, exc.outcome, exc)
            return self._answer(exc.outcome, exc.status)
        if not deliveries:
            return self._answer(IGNORED, 200, ok=True)
        try:
            async with asyncio.timeout(self.ack_timeout):
                outcomes = await asyncio.gather(*(self._deliver(d, received_at) for d in deliveries))
        except TimeoutError:
            log.warning("%s webhook: no Kafka acknowledgement within %.1fs; answering 503", source, self.ack_timeout)
            return self._answer(KAFKA_UNAVAILABLE, 503)
        except _Unavailable as exc:
            log.warning("%s webhook: %s; answering 503", source, exc)
            return self._answer(exc.outcome, 503)
        if all(o == DUPLICATE for o in outcomes):
            return self._answer(DUPLICATE, 200, ok=True)
        return self._answer(ACCEPTED, 200, ok=True)

    async def _deliver(self, delivery: Delivery, received_at: datetime) -> str:
        """Publish one event unless Kafka already has it; ``accepted`` or ``duplicate``."""
        event_id = delivery.event_id
        if event_id in self.dedup:
            self.metrics.deduplicated.labels(self.spec.source).inc()
            return DUPLICATE
        pending = self._inflight.get(event_id)
        if pending is not None:  # the same event, still in flight from an earlier request
            try:
                await asyncio.shield(pending)
            except (PublishError, PlatformError) as exc:
                outcome = UPSTREAM_UNAVAILABLE if isinstance(exc, PlatformError) else KAFKA_UNAVAILABLE
                raise _Unavailable(outcome, f"earlier copy of {event_id} failed: {exc}") from exc
            self.metrics.deduplicated.labels(self.spec.source).inc()
            return DUPLICATE
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(_retrieve)
        self._inflight[event_id] = done
        try:
            records = await self._records(delivery)
            acks = [
                asyncio.wrap_future(
                    self.publisher.submit(self.topic, r.key, r.value, received_at=received_at, delivery_id=event_id)
                )
                for r in records
            ]
        except BaseException as exc:
            self._settle(event_id, done, exc)
            if isinstance(exc, PlatformError):
                raise _Unavailable(UPSTREAM_UNAVAILABLE, f"fetching {event_id}: {exc}") from exc
            if isinstance(exc, PublishError):
                raise _Unavailable(KAFKA_UNAVAILABLE, str(exc)) from exc
            raise
        started = time.monotonic()

        def acknowledged(all_acks: asyncio.Future[Any]) -> None:
            exc = all_acks.exception() if not all_acks.cancelled() else PublishError("cancelled")
            if exc is None:
                self.metrics.publish_latency.labels(self.spec.source).observe(time.monotonic() - started)
            self._settle(event_id, done, exc)

        asyncio.gather(*acks).add_done_callback(acknowledged)
        try:
            await asyncio.shield(done)  # a timeout leaves the record in flight: a later ack still counts
        except PublishError as exc:
            raise _Unavailable(KAFKA_UNAVAILABLE, str(exc)) from exc
        return ACCEPTED

    async def _records(self, delivery: Delivery) -> Sequence[Record]:
        if delivery.value is not None:
            return [Record(delivery.key, delivery.value)]
        if self.spec.resolve is None:
            raise ConfigError(f"{self.spec.source}: delivery {delivery.event_id} has no value and no resolver")
        return await self.spec.resolve(delivery)

    def _settle(self, event_id: str, done: asyncio.Future[None], exc: BaseException | None) -> None:
        """Finish an in-flight event: into the dedup set only if Kafka acknowledged it."""
        if self._inflight.get(event_id) is done:
            del self._inflight[event_id]
        if done.done():
            return
        if exc is None:
            self.dedup.add(event_id)
            done.set_result(None)
        elif isinstance(exc, Exception):
            done.set_exception(exc)
        else:
            done.set_exception(PublishError(f"{event_id}: interrupted ({type(exc).__name__})"))

    @property
    def in_flight(self) -> int:
        return len(self._inflight)


# --- running it ----------------------------------------------------------------------------


@dataclass
class RunningReceiver:
    receiver: WebhookReceiver
    runner: web.AppRunner
    host: str
    port: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.receiver.spec.route}"


async def serve_receiver(receiver: WebhookReceiver, host: str, port: int) -> RunningReceiver:
    """Serve ``receiver`` (port 0 = ephemeral; see ``.url``); clean up with ``runner.cleanup()``."""
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("%s webhook receiver on http://%s:%s%s", receiver.spec.source, host, bound, receiver.spec.route)
    return RunningReceiver(receiver, runner, host, int(bound))


def webhook_spec(source: str, declared: Any, settings: Settings, http: aiohttp.ClientSession) -> WebhookSpec:
    """The plugin's ``webhook`` (a :class:`WebhookSpec`, or a factory of one) made concrete."""
    spec = declared if isinstance(declared, WebhookSpec) else declared(settings, http)
    if not isinstance(spec, WebhookSpec) or spec.source != source:
        raise ConfigError(f"connectors.{source}.plugin: webhook does not describe {source!r}")
    return spec


@contextlib.asynccontextmanager
async def open_receiver(
    source: str,
    settings: Settings,
    *,
    registry: CollectorRegistry,
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    vouch: bool = False,
) -> AsyncIterator[RunningReceiver]:
    """Serve ``source``'s webhook receiver on ``settings.webhook_host`` and
    ``settings.<source>_webhook_port`` (or ``host``/``port``) until the block exits; its
    Kafka producer and HTTP session (for doorbell fetches) are closed on exit. ``vouch``
    also runs :func:`vouch_for_pushes` (push-only sources)."""
    from connectors.registry import plugin

    found = plugin(source)
    if found.webhook is None:
        raise ConfigError(f"source {source!r} does not push (mode {found.mode})")
    bind_port = port if port is not None else getattr(settings, f"{source}_webhook_port", None)
    if not isinstance(bind_port, int):
        raise ConfigError(f"no webhook port for {source!r}: set ORDERTWIN_{source.upper()}_WEBHOOK_PORT")
    public_url = str(getattr(settings, f"{source}_webhook_url", "") or "")
    publisher = RawPublisher(settings, source=source)
    try:
        async with aiohttp.ClientSession() as http:
            spec = webhook_spec(source, found.webhook, settings, http)
            if spec.max_age is None and spec.timestamp is not None:
                spec = _with_max_age(spec, timedelta(seconds=settings.webhook_max_age_s))
            receiver = WebhookReceiver(
                spec,
                publisher,
                topic=Catalogue.from_settings(settings).raw(source).name,
                metrics=WebhookMetrics(registry),
                max_body_bytes=settings.webhook_max_body_bytes,
                ack_timeout=settings.webhook_ack_timeout_s,
                dedup=DedupCache(settings.webhook_dedup_size, timedelta(seconds=settings.webhook_max_age_s)),
                public_url=public_url,
                clock=clock,
            )
            running = await serve_receiver(receiver, host or settings.webhook_host, bind_port)
            vouching = (
                asyncio.create_task(vouch_for_pushes(receiver, publisher, settings, clock=clock)) if vouch else None
            )
            try:
                yield running
            finally:
                if vouching is not None:
                    vouching.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await vouching
                await running.runner.cleanup()
    finally:
        await asyncio.to_thread(publisher.close)


def _with_max_age(spec: WebhookSpec, max_age: timedelta) -> WebhookSpec:
    return replace(spec, max_age=max_age)


def push_vouch(
    now: datetime, last_heard: datetime | None, in_flight: int, *, slack: timedelta, silence: timedelta
) -> datetime | None:
    """What a push-only receiver may vouch for now, or None (see the module docstring).

    Nothing while a delivery is in flight (the watermark must follow the data it covers on
    each partition) or when the platform has not been heard within ``silence``."""
    if in_flight or last_heard is None or now - last_heard > silence:
        return None
    return now - slack


async def vouch_for_pushes(
    receiver: WebhookReceiver,
    publisher: RawPublisher,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Publish the push-only source's in-band watermarks until cancelled."""
    slack = timedelta(seconds=settings.push_slack_s)
    silence = timedelta(seconds=settings.push_silence_s)
    topic = receiver.topic
    last: datetime | None = None
    while True:
        vouch = push_vouch(clock(), receiver.last_heard, receiver.in_flight, slack=slack, silence=silence)
        if vouch is not None and (last is None or vouch > last):
            try:
                publisher.publish_watermark(topic, vouch)
                await publisher.aflush(settings.connector_flush_timeout_s)
            except (PublishError, KafkaException) as exc:
                log.warning("%s: watermark not published (%s); retrying next tick", receiver.spec.source, exc)
            else:
                last = vouch
        await sleep(settings.push_watermark_interval_s)
