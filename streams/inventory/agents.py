"""Agent ``track_stock``: inventory.reservations (key = sku, written by ``track_twin``) and
inventory.events (key = sku, written by the normaliser), co-partitioned -> table ``stock``
(changelog = compacted inventory.stock, key = sku), inventory.levels (compacted, key =
``<sku>|<warehouse>``, partitioned by sku), inventory.commands (key = sku), alerts (key = sku).

Thin: decode, call the pure ``core.step``, raise what the WMS watermark allows, send the
outputs, write the row. In-band WMS Watermark records on inventory.events drive the alert
timer as in the twin: a watermark advance pops only the deadlines it passed (O(due)); the
deadline index is rebuilt from the durable rows when partitions are assigned.

Crash safety (at least once): outputs are sent before the row is written, rows are written
before the records are acked, and a fact that changes nothing re-publishes its SKU's levels
once per assignment, so a level lost in a crash is repaired when the facts after the last
commit are read again.

Cost: a fact costs O(lines of its order) (``book.Book``), and each SKU row a batch changed
is encoded and written once per batch, not once per fact (the row holds every open line
and every settled stamp of the retention: rewriting it per fact made a hot SKU quadratic).
A batch ends ``BATCH_S`` after its first record or at ``BATCH_MAX`` records: a SKU's row
is written at most about 1/``BATCH_S`` times a second however hot the SKU. Outputs are
sent as each record is read; only the row write and the ack wait for the batch (so
GET /inventory, which reads the table, can be up to ``BATCH_S`` behind the levels). Faust
writes a table row to the partition of the *current event*: each row is written with an
event of its own partition set as current.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

import faust
from faust.types import EventT

from ordertwin.avro import Codec
from ordertwin.errors import DecodeError
from ordertwin.settings import Settings
from streams.control import headers_of, is_watermark
from streams.inventory import rules, stock
from streams.inventory.book import Book
from streams.inventory.metrics import InventoryMetrics
from streams.inventory.recovery import Reconciliation, reconcile
from streams.inventory.rules import Config
from streams.metrics import PipelineMetrics
from streams.orders.agents import PartitionState, partition_for, read_alerts
from streams.orders.twin import epoch_ms

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
ROW_CACHE = 10_000  # decoded SKU rows kept in memory
BATCH_MAX = 2000  # records per batch at most (rows written, records acked, once per batch)
BATCH_S = 0.2  # a batch's rows are written this long after its first record

Event = EventT[Any]


class AlertBook(Protocol):
    """Where the worker keeps open/recent alerts for GET /alerts (the twin's TwinState)."""

    open_alerts: dict[str, dict[str, Any]]

    def record(self, alert: dict[str, Any]) -> None: ...


def config_from(settings: Settings) -> Config:
    return Config(
        oversell_threshold_ms=int(settings.inventory_oversell_threshold_s * 1000),
        divergence_threshold_ms=int(settings.inventory_divergence_threshold_s * 1000),
        low_stock=dict(settings.inventory_low_stock),
        guard_share=settings.inventory_guard_share,
        guard_window_ms=int(settings.inventory_guard_window_h * HOUR_MS),
        retention_ms=int(settings.inventory_retention_h * HOUR_MS),
    )


def reservation_sender(
    topic: faust.types.TopicT, codec: Codec, metrics: InventoryMetrics
) -> Callable[[list[dict[str, Any]]], Awaitable[None]]:
    """What the twin agent calls with ``reservation_changes(...)``: send each keyed by SKU."""

    async def send(changes: list[dict[str, Any]]) -> None:
        for change in changes:
            await topic.send(key=change["sku"].encode(), value=codec.encode("ReservationChange", change))
            metrics.reservations_sent.labels(change["state"]).inc()

    return send


def set_current_event(stream: faust.StreamT[Any], event: Event | None) -> None:
    """Faust takes a table write's partition (store and changelog) from the current event."""
    cast(faust.Stream[Any], stream)._set_current_event(event)


@dataclass
class Batch:
    """Records read but not yet acked, and the rows they changed, not yet written."""

    events: list[Event] = field(default_factory=list)
    unwritten: dict[bytes, Book] = field(default_factory=dict)
    dirty: dict[bytes, Event | None] = field(default_factory=dict)  # key -> written under
    started: float = 0.0
    busy: bool = False  # a record is being processed: no flush from outside

    def add(self, event: Event) -> None:
        if not self.events:
            self.started = time.monotonic()
        self.events.append(event)

    def age(self) -> float:
        return time.monotonic() - self.started if self.events else 0.0

    def mark(self, key: bytes, book: Book, event: Event | None) -> None:
        self.unwritten[key] = book
        if event is not None or key not in self.dirty:
            self.dirty[key] = event

    def forget_unwritten(self) -> None:
        self.unwritten.clear()
        self.dirty.clear()

    def forget(self) -> None:
        self.events.clear()
        self.forget_unwritten()
        self.busy = False


@dataclass
class InventoryState:
    """In-memory, rebuildable state of this worker (durable state lives in the stock table)."""

    partitions: dict[int, PartitionState] = field(default_factory=dict)
    indexed: bool = False
    oversold: set[str] = field(default_factory=set)
    low: set[str] = field(default_factory=set)
    diverged: dict[str, int] = field(default_factory=dict)  # sku -> warehouses out of step
    open_lines: dict[str, int] = field(default_factory=dict)  # sku -> RESERVED lines
    republished: set[str] = field(default_factory=set)  # SKUs re-published since the last assignment
    emitted: set[tuple[str, str]] = field(default_factory=set)  # (alert id, state) known on the topic

    def of(self, partition: int) -> PartitionState:
        return self.partitions.setdefault(partition, PartitionState())


def register_inventory(
    app: faust.App,
    *,
    settings: Settings,
    source: faust.types.TopicT,
    reservations_topic: str,
    events_topic: str,
    levels_topic: faust.types.TopicT,
    commands_topic: faust.types.TopicT,
    alerts_topic: faust.types.TopicT,
    table: Any,
    codec: Codec,
    metrics: PipelineMetrics,
    inventory_metrics: InventoryMetrics,
    now: Callable[[], datetime],
    alert_book: AlertBook | None = None,
) -> tuple[Any, InventoryState]:
    state = InventoryState()
    config = config_from(settings)
    events_name = events_topic
    n_partitions = settings.partitions
    m = inventory_metrics

    cache: OrderedDict[bytes, Book] = OrderedDict()  # decoded rows; this agent is the table's only writer
    batch = Batch()

    def load(key: bytes) -> Book | None:
        book = batch.unwritten.get(key) or cache.get(key)
        if book is not None:
            cache[key] = book
            cache.move_to_end(key)
            return book
        stored = table.get(key)
        if stored is None:
            return None
        book = Book(codec.decode_as("StockState", stored))
        remember(key, book)
        return book

    def remember(key: bytes, book: Book) -> None:
        cache[key] = book
        cache.move_to_end(key)
        if len(cache) > ROW_CACHE:
            cache.popitem(last=False)  # an unwritten row stays in the batch until written

    def observe(sku: str, holding: dict[str, rules.Condition], open_lines: int) -> None:
        """Per-SKU facts behind the gauges (memory only; labels stay bounded)."""
        for flag, bucket in ((rules.OVERSELL, state.oversold), (rules.LOW_STOCK, state.low)):
            if flag in holding:
                bucket.add(sku)
            else:
                bucket.discard(sku)
        state.diverged[sku] = sum(1 for k in holding if k.startswith(rules.STOCK_DIVERGENCE))
        state.open_lines[sku] = open_lines

    def refresh_gauges() -> None:
        m.skus_oversold.set(len(state.oversold))
        m.skus_low.set(len(state.low))
        m.skus_diverged.set(sum(state.diverged.values()))
        m.reservations_open.set(sum(state.open_lines.values()))

    def store(key: bytes, book: Book, event: Event | None) -> None:
        """The row is to be written with the batch, under ``event``'s partition (None: the
        key's own partition, with the first record of the batch read from it)."""
        batch.mark(key, book, event)
        remember(key, book)

    async def flush(stream: faust.StreamT[Any]) -> None:
        """Write every row the batch changed, once, then ack the batch's records."""
        previous = stream.current_event  # the stream's own, put back: the iterator may be mid-record
        first_of: dict[int, Event] = {}  # partition -> a record of the batch read from it
        for read in batch.events:
            first_of.setdefault(read.message.partition, read)
        for key, under in list(batch.dirty.items()):
            event = under if under is not None else first_of.get(partition_for(key, n_partitions))
            if event is None:
                continue  # a repaired row of a partition with nothing read yet: with a later batch
            set_current_event(stream, event)  # Faust writes the row to the current event's partition
            table[key] = codec.encode("StockState", batch.unwritten[key].row)
            del batch.unwritten[key], batch.dirty[key]
        set_current_event(stream, previous)
        events, batch.events = batch.events, []
        for done in events:
            await stream.ack(done)
        if events:
            refresh_gauges()

    async def rebuild_index() -> None:
        """After a rebalance: reconcile SKU episodes with the alerts topic, then rebuild the
        deadline index, the gauges and the open SKU alerts from the rows this worker holds."""
        owned = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == events_name)
        on_topic = (
            await asyncio.to_thread(read_alerts, settings, codec, alerts_topic.get_topic_name(), owned) if owned else []
        )
        cache.clear()  # rows of partitions we did not own may have moved on elsewhere
        batch.forget_unwritten()  # repairs still waiting for their partition: redone below if still ours
        rows = [
            (key, codec.decode_as("StockState", stored))
            for key, stored in table.items()
            if not owned or partition_for(key, n_partitions) in owned  # not standby copies
        ]
        fix = reconcile(rows, on_topic, now(), config) if owned else Reconciliation()
        for key, row in fix.to_store.items():
            store(key, Book(row), None)
        state.emitted = fix.emitted
        await send_alerts(fix.to_send)
        if fix.to_send or fix.to_store:
            log.warning(
                "inventory recovery: re-emitted %d alert(s), repaired %d row(s)", len(fix.to_send), len(fix.to_store)
            )
        for part in state.partitions.values():
            part.index.clear()
        state.oversold.clear()
        state.low.clear()
        state.diverged.clear()
        state.open_lines.clear()
        state.republished.clear()
        if alert_book is not None:
            for aid in [k for k, a in alert_book.open_alerts.items() if a["subject_type"] == "sku"]:
                del alert_book.open_alerts[aid]
        count = 0
        for key, row in rows:
            row = fix.to_store.get(key, row)
            for src, deadline, episode_key in rules.pending_deadlines(row):
                state.of(partition_for(key, n_partitions)).index.push(src, deadline, key, episode_key)
                count += 1
            if alert_book is not None:
                for alert in rules.open_alerts_of(row, now(), config):
                    alert_book.open_alerts[alert["alert_id"]] = alert
            observe(row["sku"], rules.conditions(row, config), stock.open_reservations(row))
        refresh_gauges()
        state.indexed = True
        log.info("inventory deadline index rebuilt: %d pending deadlines", count)

    async def send_alerts(alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            pair = (alert["alert_id"], alert["state"])
            if pair in state.emitted:
                continue  # already on the topic (a fact read again after a restart)
            state.emitted.add(pair)
            await alerts_topic.send(key=alert["subject"].encode(), value=codec.encode("Alert", alert))
            metrics.alerts.labels(alert["rule"], alert["state"]).inc()
            if alert_book is not None:
                alert_book.record(alert)

    async def send_levels(partition: int, levels: list[dict[str, Any]]) -> None:
        for level in levels:
            key = f"{level['sku']}|{level['warehouse']}".encode()
            await levels_topic.send(key=key, value=codec.encode("InventoryLevel", level), partition=partition)
            m.levels_published.inc()

    async def send_commands(commands: list[dict[str, Any]]) -> None:
        for command in commands:
            await commands_topic.send(key=command["sku"].encode(), value=codec.encode("ChannelStockLock", command))
            m.commands.labels(command["channel"]).inc()

    async def on_watermark(event: Event, value: bytes) -> None:
        partition = event.message.partition
        wm = codec.decode_as("Watermark", value)
        if wm["source"] != rules.WMS_SOURCE:
            return
        part = state.of(partition)
        if not part.watermarks.update(
            wm["source"], wm["raw_partition"], wm["raw_partitions"], epoch_ms(wm["watermark"])
        ):
            return
        source_wm = part.watermarks.get(rules.WMS_SOURCE)
        assert source_wm is not None
        for key, _episode in part.index.pop_due(rules.WMS_SOURCE, source_wm):
            book = load(key)
            if book is None:
                continue
            raised_row, alerts = rules.raise_due(book.row, part.watermarks.get, now(), config)
            if alerts:
                await send_alerts(alerts)
                book.replace(raised_row)
                store(key, book, event)  # the index of a partition holds only that partition's keys

    async def on_fact(event: Event, kind: str, fact: dict[str, Any]) -> None:
        partition = event.message.partition
        sku = fact["sku"]
        key = sku.encode()
        loaded = load(key)
        book = loaded if loaded is not None else Book(stock.empty(sku))
        before = set(rules.pending_deadlines(book.row))
        if kind == "change":
            outcome = book.step(config=config, now=now(), change=fact)
            m.reservation_changes.labels(fact["state"], "applied" if outcome.changed else "ignored").inc()
        else:
            outcome = book.step(config=config, now=now(), event=fact)
            m.stock_facts.labels(fact["kind"], "applied" if outcome.changed else "ignored").inc()
        if not outcome.changed:
            if loaded is not None and sku not in state.republished:
                state.republished.add(sku)  # after a crash, the lost sends were for facts read again
                await send_levels(partition, list(book.row["levels"].values()))
            return
        part = state.of(partition)
        new, raised = rules.raise_due(outcome.state, part.watermarks.get, now(), config)
        book.replace(new)
        for src, deadline, episode_key in rules.pending_deadlines(new):
            if (src, deadline, episode_key) not in before:
                part.index.push(src, deadline, key, episode_key)
        await send_alerts(outcome.resolved + raised)
        await send_levels(partition, outcome.levels)
        await send_commands(outcome.commands)
        store(key, book, event)  # written with the batch, after these sends
        observe(sku, book.conditions(config), book.open_reservations())

    reservations_name = reservations_topic

    async def on_record(event: Event) -> None:
        message = event.message
        value = event.value
        if not isinstance(value, bytes):
            return  # tombstones are not facts
        try:
            if is_watermark(headers_of(message)):
                await on_watermark(event, value)
            elif message.topic == reservations_name:
                await on_fact(event, "change", codec.decode_as("ReservationChange", value))
            else:
                await on_fact(event, "event", codec.decode_as("InventoryEvent", value))
        except DecodeError:
            log.error("undecodable record on %s[%s]@%s; skipped", message.topic, message.partition, message.offset)
            m.stock_facts.labels("UNDECODABLE", "ignored").inc()

    async def flush_when_idle(stream: faust.StreamT[Any]) -> None:
        """Write a batch whose age is up while the agent waits for a record (at low load;
        after a rebalance cleared the queue, Faust waits for these acks to revoke)."""
        while True:
            await asyncio.sleep(BATCH_S / 4)
            if batch.events and not batch.busy and batch.age() >= BATCH_S:
                try:
                    await flush(stream)
                except Exception as exc:  # not silently: nothing would be written or acked any more
                    log.exception("inventory: writing a batch failed")
                    await app.crash(exc)
                    return

    async def track_stock(stream: faust.StreamT[Any]) -> None:
        stream.enable_acks = False  # acked by flush(), once the batch's rows are written
        idle = asyncio.ensure_future(flush_when_idle(stream))
        try:
            async for event in stream.events():
                batch.busy = True
                if not state.indexed:
                    if batch.events:
                        await flush(stream)  # rows of the previous assignment first
                    await rebuild_index()
                await on_record(event)
                batch.add(event)
                if len(batch.events) >= BATCH_MAX or batch.age() >= BATCH_S:
                    await flush(stream)
                batch.busy = False
        finally:
            idle.cancel()
            if batch.events and not batch.busy:  # stopped between records: the batch is whole
                try:
                    await flush(stream)
                except Exception:  # stopping anyway: the records were not acked, they are read again
                    log.exception("inventory: could not write the last batch on stop")
            cache.clear()  # a record cut short may have changed its row in memory: read again
            batch.forget()

    agent = app.agent(source, name="track_stock")(track_stock)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _reindex_on_assign(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        state.indexed = False  # rebuilt from the table before the next record

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget_on_revoke(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            if tp.topic in source.topics:
                state.partitions.pop(tp.partition, None)

    _ = (_reindex_on_assign, _forget_on_revoke)
    return agent, state
