"""The topic catalogue: every topic's name, partitioning, retention and writer, in one place.

One writer per topic. Connectors write only ``raw.*``; each derived topic is written by
exactly one stream agent (or is the changelog of exactly one table).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ordertwin.settings import Settings

DAY_MS = 24 * 3600 * 1000

CHANNELS: tuple[str, ...] = ("taobao", "jd", "pdd", "douyin", "kuaishou", "shopee", "shopify")
SUBSYSTEMS: tuple[str, ...] = ("oms", "wms", "carrier", "finance")
SOURCES: tuple[str, ...] = CHANNELS + SUBSYSTEMS


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is laid out on the cluster, and who may write it."""

    name: str
    partitions: int
    cleanup_policy: str  # "delete" | "compact" | "compact,delete"
    retention_ms: int  # -1 = forever (compacted state topics)
    key: str  # what the record key is
    value: str  # Avro record name, or "raw bytes as received"
    writer: str  # the single writer
    doc: str
    extra: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level configs for the Admin API."""
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        cfg.update(self.extra)
        return cfg


@dataclass(frozen=True)
class Catalogue:
    """All topics of one deployment; names carry the optional prefix."""

    prefix: str
    partitions: int
    replication_factor: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalogue:
        return cls(settings.topic_prefix, settings.partitions, settings.replication_factor)

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def raw(self, source: str) -> TopicSpec:
        if source not in SOURCES:
            raise KeyError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
        return TopicSpec(
            name=self.name(f"raw.{source}"),
            partitions=self.partitions,
            cleanup_policy="delete",
            retention_ms=7 * DAY_MS,
            key=f"{source}'s own record id",
            value="raw bytes exactly as received",
            writer=f"connector {source}",
            doc="Raw platform records, kept 7 days so a week can be replayed.",
        )

    @property
    def orders_events(self) -> TopicSpec:
        return TopicSpec(
            self.name("orders.events"),
            self.partitions,
            "delete",
            30 * DAY_MS,
            "order_id",
            "ordertwin.OrderEvent",
            "streams.normalise",
            "Canonical order events from every source; downstream WMS/finance read this.",
        )

    @property
    def inventory_events(self) -> TopicSpec:
        return TopicSpec(
            self.name("inventory.events"),
            self.partitions,
            "delete",
            30 * DAY_MS,
            "sku",
            "ordertwin.InventoryEvent",
            "streams.normalise",
            "Canonical stock snapshots and movements from the WMS.",
        )

    @property
    def deadletter(self) -> TopicSpec:
        return TopicSpec(
            self.name("deadletter"),
            self.partitions,
            "delete",
            30 * DAY_MS,
            "source record key",
            "ordertwin.RejectedEvent",
            "streams.normalise",
            "Every raw record we could not map, with the reason and its original bytes.",
        )

    @property
    def orders_twin(self) -> TopicSpec:
        return TopicSpec(
            self.name("orders.twin"),
            self.partitions,
            "compact",
            -1,
            "order_id",
            "ordertwin.OrderTwin",
            "streams.orders (table order_twin changelog)",
            "Latest twin of every order; the changelog of the order_twin table.",
            {"min.compaction.lag.ms": "0", "segment.ms": str(3600 * 1000)},
        )

    @property
    def alerts(self) -> TopicSpec:
        return TopicSpec(
            self.name("alerts"),
            self.partitions,
            "delete",
            30 * DAY_MS,
            "order_id or subject",
            "ordertwin.Alert",
            "streams.alerts",
            "Divergence alerts, RAISED then RESOLVED, deterministic ids.",
        )

    @property
    def inventory_reservations(self) -> TopicSpec:
        return TopicSpec(
            self.name("inventory.reservations"),
            self.partitions,
            "delete",
            7 * DAY_MS,
            "sku",
            "ordertwin.ReservationChange",
            "streams.orders (track_twin)",
            "Internal repartition: order-line reservation states from the twin, re-keyed by SKU.",
        )

    @property
    def inventory_stock(self) -> TopicSpec:
        return TopicSpec(
            self.name("inventory.stock"),
            self.partitions,
            "compact",
            -1,
            "sku",
            "ordertwin.StockState",
            "streams.inventory (table stock changelog)",
            "Stock state of every SKU; the changelog of the stock table.",
            {"min.compaction.lag.ms": "0", "segment.ms": str(3600 * 1000)},
        )

    @property
    def inventory_levels(self) -> TopicSpec:
        return TopicSpec(
            self.name("inventory.levels"),
            self.partitions,
            "compact",
            -1,
            "sku|warehouse (partitioned by sku)",
            "ordertwin.InventoryLevel",
            "streams.inventory",
            "Latest on hand / reserved / available per SKU and warehouse.",
        )

    @property
    def inventory_commands(self) -> TopicSpec:
        return TopicSpec(
            self.name("inventory.commands"),
            self.partitions,
            "delete",
            7 * DAY_MS,
            "sku",
            "ordertwin.ChannelStockLock",
            "streams.inventory",
            "Recommendations to a listing service (e.g. lock a channel's stock).",
        )

    @property
    def connector_state(self) -> TopicSpec:
        return TopicSpec(
            self.name("connector.state"),
            1,
            "compact",
            -1,
            "connector name",
            "JSON cursor",
            "connectors",
            "Durable connector cursors, advanced only after Kafka acknowledged the records.",
            {"min.compaction.lag.ms": "0"},
        )

    def all(self) -> Iterator[TopicSpec]:
        for source in SOURCES:
            yield self.raw(source)
        yield self.orders_events
        yield self.inventory_events
        yield self.deadletter
        yield self.orders_twin
        yield self.alerts
        yield self.inventory_reservations
        yield self.inventory_stock
        yield self.inventory_levels
        yield self.inventory_commands
        yield self.connector_state

    def source_of_raw_topic(self, topic: str) -> str | None:
        """``raw.taobao`` (with prefix) -> ``taobao``; None for anything else."""
        head = self.name("raw.")
        if topic.startswith(head) and topic[len(head) :] in SOURCES:
            return topic[len(head) :]
        return None
