"""Agent ``track_twin``: orders.events (key = order_id) -> table order_twin (changelog =
compacted orders.twin, key = order_id) and alerts (key = order_id or source).

Thin: decode, call the pure ``apply``/``evaluate``/``raise_due``, write the table only
when the twin changed, send alerts. In-band Watermark records drive the divergence timer:
when a source's watermark moves, only the deadlines it passed are popped (O(due)).
A wall-clock timer raises SOURCE_STALE for sources whose watermark stops moving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from sys import intern
from typing import Any

import faust
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from ordertwin.avro import Codec
from ordertwin.errors import DecodeError
from ordertwin.settings import Settings
from streams.control import headers_of, is_watermark
from streams.inventory.reservations import reservation_changes
from streams.metrics import PipelineMetrics
from streams.orders.divergence import alert_id, evaluate, open_alerts_of, pending_deadlines, raise_due
from streams.orders.recovery import Reconciler
from streams.orders.timeline import DeadlineIndex, Watermarks
from streams.orders.twin import Twin, apply, epoch_ms

log = logging.getLogger(__name__)

CATCH_UP_LAG = 200  # records behind on an input partition that count as catching up
REBUILD_SLICE = 2_000  # rows decoded between yields to the event loop while rebuilding
RECENT_ALERTS = 10_000  # alerts kept in memory for GET /alerts?state=all (the topic has them all)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Faust's (Java-compatible murmur2) partitioner gives a key."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class PartitionState:
    """Per orders.events partition: watermarks seen in-band and pending deadlines."""

    watermarks: Watermarks = field(default_factory=Watermarks)
    index: DeadlineIndex = field(default_factory=DeadlineIndex)


@dataclass
class StaleEpisode:
    source: str
    since_ms: int  # the watermark that stopped moving
    alert_id: str
    raised_at: datetime


@dataclass
class TwinState:
    """In-memory, rebuildable state of this worker (durable state lives in the table)."""

    partitions: dict[int, PartitionState] = field(default_factory=dict)
    indexed: bool = False
    generation: int = 0  # bumped on every assignment/revocation: a rebuild in flight is stale
    stale: dict[str, StaleEpisode] = field(default_factory=dict)
    last_input: float = field(default_factory=time.monotonic)  # monotonic time of the last record seen
    emitted: set[tuple[str, str]] = field(default_factory=set)  # (alert id, state) known on the topic
    marker_seen: dict[str, float] = field(default_factory=dict)  # source -> newest forwarded-marker time
    assigned_at: float = 0.0  # wall-clock time of the latest partition assignment
    open_alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # RAISED, not yet RESOLVED
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))

    def record(self, alert: dict[str, Any]) -> None:
        self.recent.append(alert)
        if alert["state"] == "RAISED":
            self.open_alerts[alert["alert_id"]] = alert
        else:
            self.open_alerts.pop(alert["alert_id"], None)

    def of(self, partition: int) -> PartitionState:
        return self.partitions.setdefault(partition, PartitionState())


def register_twin(
    app: faust.App,
    *,
    settings: Settings,
    source: faust.types.TopicT,
    alerts_topic: faust.types.TopicT,
    table: Any,
    codec: Codec,
    metrics: PipelineMetrics,
    now: Callable[[], datetime],
    reservations: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
) -> tuple[Any, TwinState]:
    state = TwinState()
    n_partitions = settings.partitions

    cache: OrderedDict[bytes, Twin] = OrderedDict()  # decoded twins; this agent is the table's only writer
    # Rows repaired by recovery, not yet written: Faust writes a table row to the partition
    # (store and changelog) of the event being processed, and recovery runs on whichever
    # event comes first, so a repaired row is written by its own order's next change.
    repaired: dict[bytes, Twin] = {}

    def load(key: bytes) -> Twin | None:
        twin = cache.get(key)
        if twin is not None:
            cache.move_to_end(key)
            return twin
        twin = repaired.get(key)
        if twin is not None:
            return twin
        stored = table.get(key)
        if stored is None:
            return None
        twin = codec.decode_as("OrderTwin", stored)
        remember(key, twin)
        return twin

    def remember(key: bytes, twin: Twin) -> None:
        if settings.twin_cache_size <= 0:
            return
        cache[key] = twin
        cache.move_to_end(key)
        if len(cache) > settings.twin_cache_size:
            cache.popitem(last=False)

    def store(key: bytes, twin: Twin) -> None:
        table[key] = codec.encode("OrderTwin", twin)
        repaired.pop(key, None)
        remember(key, twin)

    async def rebuild_index() -> None:
        """After a rebalance: reconcile episodes with the alerts topic, then rebuild the
        deadline index and the open-alert view from the durable twin rows this worker holds.

        One pass, one decoded row at a time: a worker restarting on a million rows holds
        only the index, never the rows (a decoded twin is ~5 KiB). It yields to the event
        loop every ``REBUILD_SLICE`` rows so the API keeps answering, and gives up when the
        partitions are reassigned meanwhile (the next record starts a new rebuild).
        """
        generation = state.generation
        owned = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == source.get_topic_name())
        on_topic = (
            await asyncio.to_thread(read_alerts, settings, codec, alerts_topic.get_topic_name(), owned) if owned else []
        )
        if state.generation != generation:
            return
        at = now()
        rec = Reconciler(on_topic, at)
        fresh: dict[int, DeadlineIndex] = {}
        open_alerts = {k: v for k, v in state.open_alerts.items() if v["subject_type"] != "order"}
        count = 0
        for seen, (key, stored) in enumerate(table.items(), 1):
            if codec.is_current("OrderTwin", stored):
                twin = codec.decode_plain("OrderTwin", stored)  # 3x faster; enough for most rows
                if rec.needs_whole(twin):
                    twin = codec.decode_as("OrderTwin", stored)
            else:
                twin = codec.decode_as("OrderTwin", stored)  # an older release's row
            twin = rec.visit(key, twin)
            pending = pending_deadlines(twin)
            if pending:
                index = fresh.setdefault(partition_for(key, n_partitions), DeadlineIndex())
                for src, deadline, rule in pending:
                    index.push(intern(src), deadline, key, intern(rule))  # 1M rows: share the strings
                count += len(pending)
            for alert in open_alerts_of(twin, at):
                open_alerts[alert["alert_id"]] = alert
            if seen % REBUILD_SLICE == 0:
                await asyncio.sleep(0)
                if state.generation != generation:
                    return  # reassigned: the table we iterate may be closing under us
        fix = rec.finish()
        repaired.clear()
        repaired.update(fix.to_store)
        for partition, part in state.partitions.items():
            part.index = fresh.pop(partition, DeadlineIndex())
        for partition, index in fresh.items():
            state.of(partition).index = index
        state.open_alerts = open_alerts
        # fix.emitted counts the alerts recovery is about to send: they are sent here.
        state.emitted = fix.emitted - {(a["alert_id"], a["state"]) for a in fix.to_send}
        await send_alerts(fix.to_send)
        if fix.to_send or fix.to_store:
            log.warning("recovery: re-emitted %d alert(s), repaired %d twin(s)", len(fix.to_send), len(fix.to_store))
        refresh_open_gauge()
        state.indexed = True
        log.info("deadline index rebuilt: %d pending deadlines", count)

    def refresh_open_gauge() -> None:
        counts: dict[tuple[str, str], int] = {}
        for alert in state.open_alerts.values():
            label = (alert["rule"], alert["subsystem"] or "")
            counts[label] = counts.get(label, 0) + 1
        metrics.open_divergences.clear()
        for (rule, subsystem), n in counts.items():
            metrics.open_divergences.labels(rule, subsystem).set(n)

    def oldest_open_age() -> float:
        if not state.open_alerts:
            return 0.0
        oldest: datetime = min(a["episode_started_at"] for a in state.open_alerts.values())
        return max(0.0, (now() - oldest).total_seconds())

    metrics.oldest_open_divergence.set_function(oldest_open_age)

    async def send_alerts(alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            pair = (alert["alert_id"], alert["state"])
            if pair in state.emitted:
                continue  # already on the topic (a replayed event after a restart)
            state.emitted.add(pair)
            await alerts_topic.send(key=alert["subject"].encode(), value=codec.encode("Alert", alert))
            metrics.alerts.labels(alert["rule"], alert["state"]).inc()
            state.record(alert)
        if alerts:
            refresh_open_gauge()

    async def on_watermark(partition: int, value: bytes, forwarded_at: float | None) -> None:
        wm = codec.decode_as("Watermark", value)
        part = state.of(partition)
        src = wm["source"]
        if partition == 0 and forwarded_at:
            # Markers forwarded before this worker took the partition say nothing about
            # the source now (the gap may be our own downtime): count them as fresh as
            # the assignment, so only silence since then can make a source stale.
            seen = max(forwarded_at, state.assigned_at)
            state.marker_seen[src] = max(state.marker_seen.get(src, 0.0), seen)
        if not part.watermarks.update(src, wm["raw_partition"], wm["raw_partitions"], epoch_ms(wm["watermark"])):
            return
        source_wm = part.watermarks.get(src)
        assert source_wm is not None
        metrics.source_watermark.labels(src).set(source_wm / 1000)
        started = time.perf_counter()
        before = part.index.touched
        due = part.index.pop_due(src, source_wm)
        metrics.timer_touched.inc(part.index.touched - before)
        for key, _rule in due:
            twin = load(key)
            if twin is None:
                continue
            raised, alerts = raise_due(twin, part.watermarks.get, now())
            if alerts:
                store(key, raised)
                await send_alerts(alerts)
        metrics.timer_tick.observe(time.perf_counter() - started)

    async def on_order_event(partition: int, key: bytes, value: bytes) -> None:
        record = codec.decode_as("OrderEvent", value)
        metrics.observe_fact(record, now())
        twin = load(key)
        new, changed = apply(twin, record)
        if reservations is not None:
            # Stock reservations of the order's lines, re-keyed by SKU (streams/inventory). An
            # unchanged twin re-asserts them: a send lost in a crash is repaired when the fact
            # is read again, and the inventory side ignores what it already has.
            await reservations(reservation_changes(twin if changed else None, new))
        at = epoch_ms(record["event_time"])
        new, resolved = evaluate(
            new,
            at_ms=at,
            now=now(),
            default_threshold_s=settings.divergence_threshold_s,
            overrides=settings.rule_thresholds_s,
        )
        part = state.of(partition)
        new, raised = raise_due(new, part.watermarks.get, now())
        if new is not twin and new != twin:
            before = {(s, d, r) for s, d, r in pending_deadlines(twin)} if twin else set()
            for src, deadline, rule in pending_deadlines(new):
                if (src, deadline, rule) not in before:
                    part.index.push(src, deadline, key, rule)
            store(key, new)
            metrics.twin_updates.labels("changed").inc()
            lag = (now() - record["ingest_time"]).total_seconds()
            metrics.ingest_to_twin.observe(max(lag, 0.0))
        else:
            metrics.twin_updates.labels("unchanged").inc()
        await send_alerts(resolved + raised)

    async def track_twin(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            message = event.message
            key, value = event.key, event.value
            state.last_input = time.monotonic()
            while not state.indexed:
                await rebuild_index()
            if not isinstance(value, bytes):
                continue  # tombstones are not facts; we are the topic's only writer
            try:
                if is_watermark(headers_of(message)):
                    await on_watermark(message.partition, value, message.timestamp)
                elif isinstance(key, bytes):
                    await on_order_event(message.partition, key, value)
            except DecodeError:
                log.error("undecodable record on %s[%s]@%s; skipped", message.topic, message.partition, message.offset)
                metrics.twin_updates.labels("undecodable").inc()

    agent = app.agent(source, name="track_twin")(track_twin)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _reindex_on_assign(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        state.indexed = False  # rebuilt from the table before the next event
        state.generation += 1
        state.assigned_at = time.time()
        state.marker_seen.clear()
        cache.clear()  # rows of partitions we did not own may have changed elsewhere

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget_on_revoke(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        state.generation += 1
        for tp in revoked:
            if tp.topic == source.get_topic_name():
                state.partitions.pop(tp.partition, None)

    def catching_up(limit: int = CATCH_UP_LAG) -> bool:
        """Whether this worker's consumer is more than ``limit`` records behind on any input."""
        consumer = app.consumer
        for tp in app.assignor.assigned_actives():
            read = getattr(consumer, "_read_offset", {}).get(tp)  # Faust keeps the fetch position here
            try:
                high = consumer.highwater(tp)
            except Exception:  # partition not fetched yet: unknown, assume behind
                return True
            if high is not None and high - (read or 0) > limit:
                return True
        return False

    @app.timer(settings.stale_check_interval_s)  # type: ignore[untyped-decorator]
    async def check_stale_sources() -> None:
        """SOURCE_STALE: one alert per silent source (evaluated by the owner of partition 0)."""
        active = app.assignor.assigned_actives()
        if not any(tp.topic == source.get_topic_name() and tp.partition == 0 for tp in active):
            return
        part = state.partitions.get(0)
        if part is None:
            return
        if catching_up():
            # Replaying a backlog, sources' progress arrives unevenly (one raw topic drained
            # before another): freshness cannot be judged until we are live again.
            state.assigned_at = time.time()
            state.marker_seen = {src: max(t, state.assigned_at) for src, t in state.marker_seen.items()}
            return
        current = now()
        marks = dict(state.marker_seen)  # source -> when the normaliser last forwarded its progress
        if not marks:
            return
        # Staleness is measured against the freshest source, not the wall clock, while input
        # flows: if this worker or the normaliser lags (catch-up, replay, a burst), every
        # source lags alike and none is to blame. Only when no input arrives at all does
        # the wall clock count.
        idle = time.monotonic() - state.last_input > settings.source_stale_s
        reference = current.timestamp() if idle else max(marks.values())
        for src, seen in marks.items():
            age = reference - seen
            wm = part.watermarks.get(src) or int(seen * 1000)
            episode = state.stale.get(src)
            if age > settings.source_stale_s and episode is None:
                episode = StaleEpisode(src, wm, alert_id("SOURCE_STALE", src, wm), current)
                state.stale[src] = episode
                await send_alerts([stale_alert(episode, "RAISED", current, settings.source_stale_s)])
            elif age <= settings.source_stale_s and episode is not None:
                del state.stale[src]
                await send_alerts([stale_alert(episode, "RESOLVED", current, settings.source_stale_s, resolved_wm=wm)])
        metrics.stale_sources.set(len(state.stale))

    _ = (_reindex_on_assign, _forget_on_revoke, check_stale_sources)
    return agent, state


def stale_alert(
    episode: StaleEpisode, state: str, now: datetime, threshold_s: float, resolved_wm: int | None = None
) -> dict[str, Any]:
    started = datetime.fromtimestamp(episode.since_ms / 1000, now.tzinfo)
    return {
        "alert_id": episode.alert_id,
        "state": state,
        "rule": "SOURCE_STALE",
        "severity": "CRITICAL",
        "subject_type": "source",
        "subject": episode.source,
        "channel": None,
        "subsystem": episode.source,
        "expected": f"{episode.source} reports progress at least every {threshold_s:.0f}s",
        "observed": f"no progress since {started.isoformat()}" if state == "RAISED" else "progressing again",
        "message": f"source {episode.source} is silent: order alerts against it are held back until it returns",
        "episode_started_at": started,
        "deadline": started + timedelta(seconds=threshold_s),
        "emitted_at": now,
        "resolved_at": now if state == "RESOLVED" else None,
        "duration_ms": int((now - started).total_seconds() * 1000) if state == "RESOLVED" else None,
        "details": {"resolved_watermark_ms": str(resolved_wm)} if resolved_wm is not None else {},
    }


def read_alerts(settings: Settings, codec: Codec, topic: str, partitions: list[int]) -> list[dict[str, Any]]:
    """Every alert on the given partitions of the alerts topic (blocking; run in a thread).

    Alerts are keyed by subject with the same partitioner and partition count as
    orders.events, so partition p holds the alerts of the orders of partition p.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    if not partitions:
        return []
    consumer = Consumer(
        {**settings.kafka_config(), "group.id": f"{settings.app_id}-alert-recovery", "enable.auto.commit": False}
    )
    try:
        ends: dict[int, int] = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        out: list[dict[str, Any]] = []
        pending = set(ends)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                part, offset, value = msg.partition(), msg.offset(), msg.value()
                if msg.error() or part is None or offset is None or value is None:
                    continue
                if offset + 1 >= ends[part]:
                    pending.discard(part)
                try:
                    out.append(codec.decode_as("Alert", value))
                except DecodeError:
                    log.error("undecodable alert at %s[%s]@%s", topic, msg.partition(), msg.offset())
        if pending:
            raise TimeoutError(f"could not read alerts partitions {sorted(pending)} to their end")
        return out
    finally:
        consumer.close()
