"""Build the Faust app from settings: topics, tables, agents and views, wired once.

Nothing here runs at import time: :func:`build` is called by the CLI (or a test) with a
Settings object and returns a :class:`Pipeline` holding every piece by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from ordertwin.avro import Codec
from ordertwin.settings import Settings
from ordertwin.topics import SOURCES, Catalogue
from streams.inventory.agents import register_inventory, reservation_sender
from streams.inventory.metrics import InventoryMetrics
from streams.inventory.views import register_inventory_views
from streams.metrics import PipelineMetrics
from streams.normalise.agents import register_normalise
from streams.normalise.model import keyed_fingerprint
from streams.orders.agents import register_twin
from streams.web import register_views


@dataclass
class Pipeline:
    """Everything the worker runs; tests reach agents and tables through it."""

    settings: Settings
    app: faust.App
    catalogue: Catalogue
    codec: Codec
    metrics: PipelineMetrics
    topics: dict[str, faust.types.TopicT]
    tables: dict[str, Any]
    agents: dict[str, Any]
    twin_state: Any
    inventory_state: Any = None


class ServiceWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At log level WARNING or above Faust adds a spinner handler to the root logger and sets
    the root logger to DEBUG, so every ``logger.debug`` in aiokafka and Faust builds a
    LogRecord on the hot path (about 12 % of a forwarding hop's CPU, measured with
    py-spy). A service has no terminal to spin; the root logger keeps the configured level.
    """

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        self.spinner = None


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def build(settings: Settings, *, registry: CollectorRegistry | None = None) -> Pipeline:
    """Create the app and register every agent, table and view."""
    catalogue = Catalogue.from_settings(settings)
    codec = Codec.from_dir(settings.schemas_dir)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = PipelineMetrics.create(registry)
    app = faust.App(
        settings.app_id,
        broker=_broker_urls(settings.bootstrap_servers),
        store=settings.store,
        datadir=str(settings.data_dir),
        autodiscover=False,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        producer_linger_ms=settings.producer_linger_ms,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=1,
    )

    def topic(*names: str, **kw: Any) -> faust.types.TopicT:
        return app.topic(*names, key_serializer="raw", value_serializer="raw", **kw)

    topics: dict[str, faust.types.TopicT] = {
        "raw": topic(*[catalogue.raw(s).name for s in SOURCES]),
        "orders_events": topic(catalogue.orders_events.name, partitions=settings.partitions),
        "inventory_events": topic(catalogue.inventory_events.name, partitions=settings.partitions),
        "deadletter": topic(catalogue.deadletter.name, partitions=settings.partitions),
        "alerts": topic(catalogue.alerts.name, partitions=settings.partitions),
        "orders_twin": topic(
            catalogue.orders_twin.name,
            partitions=settings.partitions,
            compacting=True,
            deleting=False,
            internal=True,
        ),
        # inventory: reservations (from the twin) and stock facts, co-partitioned by SKU
        "inventory_reservations": topic(  # internal repartition: declared by the worker if missing
            catalogue.inventory_reservations.name,
            partitions=settings.partitions,
            retention=catalogue.inventory_reservations.retention_ms / 1000,
            deleting=True,
            internal=True,
        ),
        "inventory_in": topic(catalogue.inventory_reservations.name, catalogue.inventory_events.name),
        "inventory_stock": topic(
            catalogue.inventory_stock.name,
            partitions=settings.partitions,
            compacting=True,
            deleting=False,
            internal=True,
        ),
        "inventory_levels": topic(
            catalogue.inventory_levels.name, partitions=settings.partitions, compacting=True, deleting=False
        ),
        "inventory_commands": topic(catalogue.inventory_commands.name, partitions=settings.partitions),
    }
    # Faust opens one RocksDB per table partition, each with its own 2 GiB block cache and
    # three 64 MiB memtables by default: RSS then grows with the data read (a restart's scan
    # of a million twins kept most of them cached). Bounded per partition instead.
    store_options = {
        "block_cache_size": settings.store_block_cache_mib << 20,
        "write_buffer_size": settings.store_write_buffer_mib << 20,
        "max_write_buffer_number": 2,
    }
    order_twin = app.Table(
        "order_twin",
        default=None,
        key_type=bytes,  # bytes => Faust's "raw" serializer: values are our Avro bytes
        value_type=bytes,
        partitions=settings.partitions,
        changelog_topic=topics["orders_twin"],
        options=dict(store_options),  # Faust's store pops keys from the dict it is given
        help="order_id -> OrderTwin (Avro); its changelog is the orders.twin topic.",
    )
    stock = app.Table(
        "stock",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        changelog_topic=topics["inventory_stock"],
        options=dict(store_options),
        help="sku -> StockState (Avro); its changelog is the inventory.stock topic.",
    )
    tables: dict[str, Any] = {"order_twin": order_twin, "stock": stock}
    inventory_metrics = InventoryMetrics.create(metrics.registry)
    fingerprint = keyed_fingerprint(settings.fingerprint_key.get_secret_value().encode())
    agents: dict[str, Any] = {}
    agents["normalise"] = register_normalise(
        app,
        catalogue=catalogue,
        source=topics["raw"],
        orders=topics["orders_events"],
        inventory=topics["inventory_events"],
        deadletter=topics["deadletter"],
        codec=codec,
        fingerprint=fingerprint,
        max_bytes=settings.max_raw_bytes,
        metrics=metrics,
        orders_partitions=settings.partitions,
    )
    agents["track_twin"], twin_state = register_twin(
        app,
        settings=settings,
        source=topics["orders_events"],
        alerts_topic=topics["alerts"],
        table=order_twin,
        codec=codec,
        metrics=metrics,
        now=lambda: datetime.now(UTC),
        reservations=reservation_sender(topics["inventory_reservations"], codec, inventory_metrics),
    )
    agents["track_stock"], inventory_state = register_inventory(
        app,
        settings=settings,
        source=topics["inventory_in"],
        reservations_topic=catalogue.inventory_reservations.name,
        events_topic=catalogue.inventory_events.name,
        levels_topic=topics["inventory_levels"],
        commands_topic=topics["inventory_commands"],
        alerts_topic=topics["alerts"],
        table=stock,
        codec=codec,
        metrics=metrics,
        inventory_metrics=inventory_metrics,
        now=lambda: datetime.now(UTC),
        alert_book=twin_state,
    )
    pipeline = Pipeline(settings, app, catalogue, codec, metrics, topics, tables, agents, twin_state, inventory_state)
    register_views(pipeline)
    register_inventory_views(app, stock, codec, settings)
    return pipeline
