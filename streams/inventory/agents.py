"""Agent ``track_stock``: inventory.reservations (key = sku, written by ``track_twin``) and
inventory.events (key = sku, written by the normaliser), co-partitioned -> table ``stock``
(changelog = compacted inventory.stock, key = sku), inventory.levels (compacted, key =
``<sku>|<warehouse>``, partitioned by sku), inventory.commands (key = sku), alerts (key = sku).

Thin: decode, call the pure ``core.step``, raise what the WMS watermark allows, send the
outputs, write the row. In-band WMS Watermark records on inventory.events drive the alert
timer as in the twin: a watermark advance pops only the deadlines it passed (O(due)); the
deadline index is rebuilt from the durable rows when partitions are assigned.

Crash safety (at least once): outputs are sent before the row is written, and a fact that
changes nothing re-publishes its SKU's levels once per assignment, so a level lost in a
crash is repaired when the facts after the last commit are read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import faust

from ordertwin.avro import Codec
from ordertwin.errors import DecodeError
from ordertwin.settings import Settings
from streams.control import headers_of, is_watermark
from streams.inventory import rules, stock
from streams.inventory.core import step
from streams.inventory.metrics import InventoryMetrics
from streams.inventory.recovery import Reconciliation, reconcile
from streams.inventory.rules import Config
from streams.inventory.stock import State
from streams.metrics import PipelineMetrics
from streams.orders.agents import PartitionState, partition_for, read_alerts
from streams.orders.twin import epoch_ms

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
ROW_CACHE = 10_000  # decoded SKU rows kept in memory


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

    cache: OrderedDict[bytes, State] = OrderedDict()  # decoded rows; this agent is the table's only writer

    def load(key: bytes) -> State | None:
        row = cache.get(key)
        if row is not None:
            cache.move_to_end(key)
            return row
        stored = table.get(key)
        if stored is None:
            return None
        row = codec.decode_as("StockState", stored)
        remember(key, row)
        return row

    def remember(key: bytes, row: State) -> None:
        cache[key] = row
        cache.move_to_end(key)
        if len(cache) > ROW_CACHE:
            cache.popitem(last=False)

    def observe(row: State) -> None:
        """Per-SKU facts behind the gauges (memory only; labels stay bounded)."""
        sku = row["sku"]
        holding = rules.conditions(row, config)
        for flag, bucket in ((rules.OVERSELL, state.oversold), (rules.LOW_STOCK, state.low)):
            if flag in holding:
                bucket.add(sku)
            else:
                bucket.discard(sku)
        state.diverged[sku] = sum(1 for k in holding if k.startswith(rules.STOCK_DIVERGENCE))
        state.open_lines[sku] = stock.open_reservations(row)

    def refresh_gauges() -> None:
        m.skus_oversold.set(len(state.oversold))
        m.skus_low.set(len(state.low))
        m.skus_diverged.set(sum(state.diverged.values()))
        m.reservations_open.set(sum(state.open_lines.values()))

    def store(key: bytes, row: State) -> None:
        table[key] = codec.encode("StockState", row)
        remember(key, row)

    async def rebuild_index() -> None:
        """After a rebalance: reconcile SKU episodes with the alerts topic, then rebuild the
        deadline index, the gauges and the open SKU alerts from the rows this worker holds."""
        owned = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == events_name)
        on_topic = (
            await asyncio.to_thread(read_alerts, settings, codec, alerts_topic.get_topic_name(), owned) if owned else []
        )
        cache.clear()  # rows of partitions we did not own may have moved on elsewhere
        rows = [
            (key, codec.decode_as("StockState", stored))
            for key, stored in table.items()
            if not owned or partition_for(key, n_partitions) in owned  # not standby copies
        ]
        fix = reconcile(rows, on_topic, now(), config) if owned else Reconciliation()
        for key, row in fix.to_store.items():
            store(key, row)
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
            observe(row)
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

    async def on_watermark(partition: int, value: bytes) -> None:
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
            row = load(key)
            if row is None:
                continue
            raised_row, alerts = rules.raise_due(row, part.watermarks.get, now(), config)
            if alerts:
                await send_alerts(alerts)
                store(key, raised_row)

    async def on_fact(partition: int, kind: str, fact: dict[str, Any]) -> None:
        sku = fact["sku"]
        key = sku.encode()
        row = load(key)
        old = row if row is not None else stock.empty(sku)
        if kind == "change":
            outcome = step(old, config=config, now=now(), change=fact)
            m.reservation_changes.labels(fact["state"], "applied" if outcome.changed else "ignored").inc()
        else:
            outcome = step(old, config=config, now=now(), event=fact)
            m.stock_facts.labels(fact["kind"], "applied" if outcome.changed else "ignored").inc()
        if not outcome.changed:
            if row is not None and sku not in state.republished:
                state.republished.add(sku)  # after a crash, the lost sends were for facts read again
                await send_levels(partition, list(row["levels"].values()))
            return
        part = state.of(partition)
        new, raised = rules.raise_due(outcome.state, part.watermarks.get, now(), config)
        before = set(rules.pending_deadlines(old))
        for src, deadline, episode_key in rules.pending_deadlines(new):
            if (src, deadline, episode_key) not in before:
                part.index.push(src, deadline, key, episode_key)
        await send_alerts(outcome.resolved + raised)
        await send_levels(partition, outcome.levels)
        await send_commands(outcome.commands)
        store(key, new)
        observe(new)
        refresh_gauges()

    reservations_name = reservations_topic

    async def track_stock(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            message = event.message
            value = event.value
            if not state.indexed:
                await rebuild_index()
            if not isinstance(value, bytes):
                continue  # tombstones are not facts
            try:
                if is_watermark(headers_of(message)):
                    await on_watermark(message.partition, value)
                elif message.topic == reservations_name:
                    await on_fact(message.partition, "change", codec.decode_as("ReservationChange", value))
                else:
                    await on_fact(message.partition, "event", codec.decode_as("InventoryEvent", value))
            except DecodeError:
                log.error("undecodable record on %s[%s]@%s; skipped", message.topic, message.partition, message.offset)
                m.stock_facts.labels("UNDECODABLE", "ignored").inc()

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
