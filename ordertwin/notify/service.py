"""``ordertwin notify``: alerts topic -> WeCom / DingTalk / webhook, never losing an alert.

Loop: consume alerts (own consumer group, no auto-commit) into a batch; when the batch window has
passed and every target may send, deliver the batch to every target (one message per alert when
few and the rate limit allows, else one digest), retrying each failed POST with exponential
backoff until it succeeds; only then commit the batch's offsets. A crash before the commit
re-sends the batch after restart (receivers deduplicate by ``alert_id``); nothing is skipped.

While a target is down the loop blocks and alerts wait in Kafka; ``max.poll.interval.ms`` is set
to its maximum so the consumer keeps its partitions while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Protocol

import aiohttp

from ordertwin.avro import Codec
from ordertwin.errors import DecodeError, SchemaError
from ordertwin.notify.limiter import RateLimiter
from ordertwin.notify.metrics import NotifyMetrics
from ordertwin.notify.render import Message, plan
from ordertwin.notify.sender import Outcome, post
from ordertwin.notify.targets import Target

log = logging.getLogger(__name__)

RECENT_IDS = 20_000  # (alert_id, state) pairs remembered to drop re-emitted duplicates


class ConsumerLike(Protocol):
    """The part of confluent_kafka.Consumer the notifier uses (tests pass a fake)."""

    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...

    def commit(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class Pending:
    topic: str
    partition: int
    offset: int
    alert: dict[str, Any] | None  # None: undecodable, skipped (but its offset is committed)


@dataclass(frozen=True)
class NotifyConfig:
    batch_s: float = 5.0
    individual_max: int = 5
    max_batch: int = 2000
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    rate_limited_s: float = 60.0
    http_timeout_s: float = 10.0


class Notifier:
    def __init__(
        self,
        *,
        consumer: ConsumerLike,
        targets: Sequence[Target],
        codec: Codec,
        metrics: NotifyMetrics,
        session: aiohttp.ClientSession,
        tz: tzinfo,
        config: NotifyConfig = NotifyConfig(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        make_commit_offsets: Callable[[list[tuple[str, int, int]]], Any] | None = None,
    ) -> None:
        self.consumer = consumer
        self.targets = list(targets)
        self.codec = codec
        self.metrics = metrics
        self.session = session
        self.tz = tz
        self.config = config
        self.clock = clock
        self.wall = wall
        self.jitter = jitter
        self.limiters = {t.name: RateLimiter(t.rate_per_min, clock=clock) for t in self.targets}
        self.pending: list[Pending] = []
        self.first_at: float | None = None
        self.revoked: set[tuple[str, int]] = set()
        self._done: set[str] = set()  # targets that have the current batch
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._commit_offsets = make_commit_offsets or _topic_partitions
        metrics.oldest_pending.set_function(self._oldest_age)

    # -- consumer side ---------------------------------------------------------------------
    def on_revoke(self, _consumer: Any, partitions: Sequence[Any]) -> None:
        """Rebalance callback: the new owner re-delivers what we had not committed."""
        self.revoked.update((tp.topic, tp.partition) for tp in partitions)

    def _oldest_age(self) -> float:
        return self.clock() - self.first_at if self.first_at is not None and self.pending else 0.0

    def take(self, messages: Sequence[Any]) -> None:
        for msg in messages:
            if msg.error():
                log.warning("alerts consumer: %s", msg.error())
                continue
            alert: dict[str, Any] | None = None
            try:
                alert = self.codec.decode_as("Alert", msg.value())
                self.metrics.alerts.labels("received").inc()
            except (DecodeError, SchemaError) as exc:
                log.error(
                    "undecodable record on %s[%d]@%d skipped: %s", msg.topic(), msg.partition(), msg.offset(), exc
                )
                self.metrics.alerts.labels("undecodable").inc()
            if self.first_at is None:
                self.first_at = self.clock()
            self.pending.append(Pending(msg.topic(), msg.partition(), msg.offset(), alert))
        if self.revoked:
            before = len(self.pending)
            self.pending = [p for p in self.pending if (p.topic, p.partition) not in self.revoked]
            if before != len(self.pending):
                log.info("dropped %d undelivered alert(s) of revoked partitions", before - len(self.pending))
            self.revoked.clear()
            if not self.pending:
                self.first_at = None
        self.metrics.pending.set(len(self.pending))

    def ready(self) -> bool:
        """Deliver now? After the batch window, once every target may send (or the batch is full)."""
        if not self.pending or self.first_at is None:
            return False
        if len(self.pending) >= self.config.max_batch:
            return True
        if self.clock() - self.first_at < self.config.batch_s:
            return False
        return all(self.limiters[t.name].available() > 0 for t in self.targets if t.name not in self._done)

    def poll_timeout(self) -> float:
        if not self.pending or self.first_at is None:
            return 1.0
        left = self.first_at + self.config.batch_s - self.clock()
        return min(0.5, max(0.05, left))

    # -- delivery --------------------------------------------------------------------------
    def batch_alerts(self) -> list[dict[str, Any]]:
        """The batch's alerts, without repeats of an (alert_id, state) already delivered."""
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for p in self.pending:
            if p.alert is None:
                continue
            key = (str(p.alert["alert_id"]), str(p.alert["state"]))
            if key in seen or key in self._recent:
                self.metrics.alerts.labels("duplicate").inc()
                continue
            seen.add(key)
            out.append(p.alert)
        return out

    async def deliver(self, stop: asyncio.Event) -> bool:
        """Deliver the batch to every target; False if stopped before that."""
        alerts = self.batch_alerts()
        for target in self.targets:
            if target.name in self._done:
                continue
            selected = [a for a in alerts if target.wants(str(a["severity"]))]
            limiter = self.limiters[target.name]
            messages = plan(
                target, selected, individual_max=self.config.individual_max, tokens=limiter.available(), tz=self.tz
            )
            for message in messages:
                if not await self.send(target, message, stop):
                    return False
            self._done.add(target.name)
        filtered = sum(1 for a in alerts if not any(t.wants(str(a["severity"])) for t in self.targets))
        if filtered:
            self.metrics.alerts.labels("filtered").inc(filtered)
        self.metrics.alerts.labels("delivered").inc(len(alerts) - filtered)
        for a in alerts:
            self._recent[(str(a["alert_id"]), str(a["state"]))] = None
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return True

    async def send(self, target: Target, message: Message, stop: asyncio.Event) -> bool:
        """POST until accepted (backoff between attempts, rate limit before each); False if stopped."""
        limiter = self.limiters[target.name]
        attempt = 0
        while True:
            wait = limiter.wait_time()
            if wait > 0 and await _stopped_within(stop, wait):
                return False
            limiter.take()
            outcome: Outcome = await post(
                self.session,
                target,
                message,
                now_ms=int(self.wall() * 1000),
                timeout_s=self.config.http_timeout_s,
            )
            if outcome.ok:
                self.metrics.messages.labels(target.name, message.kind).inc()
                return True
            self.metrics.failures.labels(target.name, outcome.reason).inc()
            if outcome.rate_limited:
                limiter.block(self.config.rate_limited_s)
            delay = min(self.config.retry_max_s, self.config.retry_base_s * 2**attempt)
            delay *= 0.5 + self.jitter() / 2
            attempt += 1
            log.warning(
                "delivery to %s (%s, %s) failed (%s: %s); attempt %d, retrying in %.1fs",
                target.name,
                target.kind,
                target.safe_url,
                outcome.reason,
                outcome.detail,
                attempt,
                delay,
            )
            if await _stopped_within(stop, delay):
                return False

    def commit(self) -> None:
        """Commit the delivered batch: per partition, the offset after its last record."""
        upto: dict[tuple[str, int], int] = {}
        for p in self.pending:
            key = (p.topic, p.partition)
            upto[key] = max(upto.get(key, -1), p.offset)
        offsets = [(topic, partition, offset + 1) for (topic, partition), offset in sorted(upto.items())]
        try:
            self.consumer.commit(offsets=self._commit_offsets(offsets), asynchronous=False)
            self.metrics.last_commit.set(self.wall())
        except Exception as exc:  # lost the partitions meanwhile: the new owner re-sends
            log.warning("commit after delivery failed (alerts will be re-sent by the next owner): %s", exc)
        if self.first_at is not None:
            self.metrics.delivery.observe(self.clock() - self.first_at)
        self.pending = []
        self.first_at = None
        self._done.clear()
        self.metrics.pending.set(0)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            room = max(1, self.config.max_batch - len(self.pending))
            messages = await asyncio.to_thread(self.consumer.consume, room, self.poll_timeout())
            self.take(messages)
            if not self.ready():
                continue
            if not await self.deliver(stop):
                break
            self.commit()
        if self.pending:
            log.info("stopping with %d undelivered alert(s); they stay uncommitted and are re-sent", len(self.pending))


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


def _topic_partitions(offsets: list[tuple[str, int, int]]) -> list[Any]:
    from confluent_kafka import TopicPartition

    return [TopicPartition(topic, partition, offset) for topic, partition, offset in offsets]


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
