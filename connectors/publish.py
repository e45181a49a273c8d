"""Publish raw platform records to Kafka, and prove they arrived (Kafka only, no HTTP).

A connector may advance its cursor only past records Kafka acknowledged, so every delivery
report is recorded and :meth:`RawPublisher.flush` raises :class:`PublishError` naming each
record that failed or is still unacknowledged: a failed delivery is surfaced, never lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.errors import DeliveryFailure, PublishError
from ordertwin.settings import Settings
from streams.control import CONTROL_HEADER, WATERMARK, raw_watermark_value

log = logging.getLogger(__name__)

# Why each default: idempotence + acks=all so a retried send never duplicates or loses a record
# within the producer session; zstd because raw JSON is kept 7 days and compresses ~5-10x;
# murmur2_random so keys land on the same partition as with the Java/Faust clients.
PRODUCER_DEFAULTS: dict[str, str] = {
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "compression.type": "zstd",
    "partitioner": "murmur2_random",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. ``2024-05-01T08:00:00.123+00:00``."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; connectors use timezone-aware times only")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RecordAck:
    """Where Kafka stored one acknowledged record."""

    topic: str
    partition: int
    offset: int


class RawPublisher:
    """A confluent-kafka producer for ``raw.*`` topics with recorded delivery reports.

    Two ways to learn about delivery: :meth:`publish` + :meth:`flush` (batch; used by the pull
    engine) and :meth:`submit` (one future per record, resolved by a background poll thread;
    used by webhook receivers, which must answer each request only after *its* record was
    acknowledged). A record sent with :meth:`submit` reports only to its future, never to
    :meth:`flush`, so the two do not see each other's failures.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        source: str,
        producer_config: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        enqueue_timeout: float = 60.0,
    ) -> None:
        config: dict[str, str] = {**PRODUCER_DEFAULTS, **settings.kafka_config()}
        config.update(producer_config or {})
        config.setdefault("client.id", f"ordertwin-connector-{source}-{settings.connector_instance}")
        self._producer = Producer(config)
        self.source = source
        self.connector = settings.connector_instance
        self._clock = clock
        self._enqueue_timeout = enqueue_timeout
        self._lock = threading.Lock()
        self._failures: list[DeliveryFailure] = []
        self._delivered = 0
        self._enqueued = 0
        self._partitions: dict[str, list[int]] = {}
        self._poller: threading.Thread | None = None
        self._stop_polling = threading.Event()

    # -- delivery reports (called from poll()/flush(), possibly in a worker thread) --------
    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is None:
                self._delivered += 1
            else:
                self._failures.append(DeliveryFailure(topic=msg.topic() or "?", key=msg.key(), error=err.str()))

    def headers(
        self,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
        extra: Mapping[str, str | bytes] | None = None,
    ) -> list[tuple[str, str | bytes | None]]:
        """The standard headers (source, received_at, connector, delivery_id) plus ``extra``."""
        values: dict[str, str | bytes] = {
            "source": self.source,
            "received_at": iso_ms(received_at or self._clock()),
            "connector": self.connector,
            "delivery_id": delivery_id or str(uuid.uuid4()),
        }
        values.update(extra or {})
        return [(k, v.encode("utf-8") if isinstance(v, str) else v) for k, v in values.items()]

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
        partition: int | None = None,
    ) -> None:
        """Enqueue one record; waits (polling) while the local queue is full.

        ``headers`` are added to (and may override) the standard ones; ``partition`` None
        means "by key". Delivery is confirmed only by :meth:`flush` / :meth:`aflush`.
        """
        target = -1 if partition is None else partition  # -1: librdkafka's "unassigned" (by key)
        record_headers = self.headers(received_at=received_at, delivery_id=delivery_id, extra=headers)
        deadline = time.monotonic() + self._enqueue_timeout
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=record_headers,
                    partition=target,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                # Local queue full: serve delivery reports to make room, then try again.
                if time.monotonic() > deadline:
                    raise PublishError(
                        f"producer queue still full after {self._enqueue_timeout:.0f}s",
                        [DeliveryFailure(topic, key, "local queue full")],
                    ) from None
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise PublishError("could not enqueue record", [DeliveryFailure(topic, key, str(exc))]) from exc
        self._enqueued += 1
        self._producer.poll(0)

    def submit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> concurrent.futures.Future[RecordAck]:
        """Enqueue one record without blocking; its future resolves once Kafka acknowledged it,
        or fails with :class:`PublishError` (delivery failed, e.g. ``message.timeout.ms`` passed
        while the broker was down).

        Never waits for room: a full local queue raises :class:`PublishError` at once (a
        webhook answers 503 and the platform retries). Starts the poll thread on first use.
        Await it from asyncio with ``asyncio.wrap_future``.
        """
        future: concurrent.futures.Future[RecordAck] = concurrent.futures.Future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if future.done():
                return
            if err is None:
                future.set_result(RecordAck(msg.topic() or topic, msg.partition() or 0, msg.offset() or 0))
            else:
                future.set_exception(
                    PublishError("Kafka did not acknowledge the record", [DeliveryFailure(topic, key, err.str())])
                )

        record_headers = self.headers(received_at=received_at, delivery_id=delivery_id, extra=headers)
        try:
            self._producer.produce(topic, value=value, key=key, headers=record_headers, on_delivery=on_delivery)
        except BufferError:
            raise PublishError("producer queue is full", [DeliveryFailure(topic, key, "local queue full")]) from None
        except KafkaException as exc:
            raise PublishError("could not enqueue record", [DeliveryFailure(topic, key, str(exc))]) from exc
        self._ensure_poller()
        return future

    async def apublish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - the wait for one acknowledgement, not a blocking call
    ) -> RecordAck:
        """:meth:`submit` one record and wait (without blocking the loop) for its acknowledgement.

        Raises :class:`PublishError` when it failed or is not acknowledged within ``timeout``
        (the record may still be delivered later: at least once, never "at most once").
        """
        future = asyncio.wrap_future(
            self.submit(topic, key, value, headers, received_at=received_at, delivery_id=delivery_id)
        )
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise PublishError(
                f"{self.source}: no acknowledgement within {timeout}s", [DeliveryFailure(topic, key, "timed out")]
            ) from None

    def _ensure_poller(self) -> None:
        """Serve delivery reports in a daemon thread, so futures resolve without a flush."""
        if self._poller is not None:
            return
        with self._lock:
            if self._poller is not None:
                return
            self._stop_polling.clear()
            self._poller = threading.Thread(target=self._poll_forever, name=f"kafka-poll-{self.source}", daemon=True)
            self._poller.start()

    def _poll_forever(self) -> None:
        while not self._stop_polling.is_set():
            self._producer.poll(0.1)

    def _stop_poller(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            self._stop_polling.set()
            poller.join(timeout=5.0)

    def partitions(self, topic: str, timeout: float = 10.0) -> list[int]:
        """Partition ids of ``topic`` (from cluster metadata, cached)."""
        cached = self._partitions.get(topic)
        if cached is None:
            try:
                meta = self._producer.list_topics(topic, timeout=timeout).topics.get(topic)
            except KafkaException as exc:
                raise PublishError(f"cannot read metadata of {topic!r}: {exc}") from exc
            if meta is None or meta.error is not None or not meta.partitions:
                reason = meta.error if meta is not None and meta.error is not None else "no partitions"
                raise PublishError(f"topic {topic!r} is not usable ({reason}); run `ordertwin topics create`")
            cached = sorted(meta.partitions)
            self._partitions[topic] = cached
        return cached

    def publish_watermark(self, topic: str, watermark: datetime) -> int:
        """Enqueue a watermark control record ("complete up to ``watermark``") on every
        partition of ``topic``; returns how many. Call it only after the data it vouches for
        was flushed: per-partition order then puts it behind that data (see streams.control).
        """
        partitions = self.partitions(topic)
        value = raw_watermark_value(watermark, len(partitions), self.connector)
        for partition in partitions:
            self.publish(topic, None, value, {CONTROL_HEADER: WATERMARK}, partition=partition)
        return len(partitions)

    @property
    def in_flight(self) -> int:
        """Records enqueued but not yet acknowledged or failed."""
        return len(self._producer)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every enqueued record; return how many were acknowledged since last flush.

        Raises :class:`PublishError` if any record failed or is still in flight after
        ``timeout``. The failures are reported once: the next flush starts clean.
        """
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
            delivered, self._delivered = self._delivered, 0
            self._enqueued = 0
        if failures or remaining:
            if remaining:
                failures.append(DeliveryFailure("*", None, f"{remaining} record(s) unacknowledged after {timeout}s"))
            log.error("%s: %d record(s) not acknowledged by Kafka", self.source, len(failures))
            raise PublishError(f"{self.source}: Kafka did not acknowledge every record", failures)
        return delivered

    async def aflush(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 - bounds a blocking librdkafka call
        """:meth:`flush` in a worker thread, so the event loop keeps running.

        ``timeout`` is handed to librdkafka: ``asyncio.timeout`` could not interrupt the
        blocking flush running in the thread."""
        return await asyncio.to_thread(self.flush, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is left, without raising (used on shutdown paths)."""
        self._stop_poller()
        try:
            self.flush(timeout)
        except PublishError as exc:
            log.error("closing publisher: %s", exc)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"pending_failures": len(self._failures), "in_flight": len(self._producer)}
