"""The contract every source plugin meets - a new source is tested by this file the moment its
``connectors/<source>/plugin.py`` exists (see docs/connectors.md).

For each plugin found by :func:`connectors.registry.available`:

* it declares a consistent mode (pull needs a page source, push a webhook spec) and a doc line;
* a **pull** source, run by the real :class:`~connectors.pull.PullEngine` against its own
  simulator (fault-free, in process, no Kafka: an in-memory publisher and cursor store),
  publishes every simulated order - as many distinct keys as orders - and every value passes
  the source's normaliser; a second run from the saved cursor publishes nothing new;
* a **push** source's spec builds from the settings and names the source.

The fault behaviour (429s, 5xx, timeouts, duplicates, SIGKILL, broker loss) is tested per
source in the live tests; this file is the floor every source stands on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.metrics import ConnectorMetrics
from connectors.pull import PullConfig, PullEngine
from connectors.registry import SourcePlugin, available, plugin
from connectors.runner import start_simulator
from connectors.webhook import WebhookSpec, webhook_spec
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record

N_ORDERS = 60
SOURCES = available()
PULL_SOURCES = [s for s in SOURCES if plugin(s).page_source is not None]
PUSH_SOURCES = [s for s in SOURCES if plugin(s).webhook is not None]


class MemoryPublisher:
    """What the engine needs of a publisher, in memory: every record is acknowledged."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []
        self.watermarks: list[datetime] = []

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> None:
        self.records.append((key, value))

    def publish_watermark(self, topic: str, watermark: datetime) -> int:
        self.watermarks.append(watermark)
        return 1

    async def aflush(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 - protocol signature
        return len(self.records)


class MemoryStore:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    async def aload(self, name: str) -> dict[str, Any] | None:
        return self.saved.get(name)

    async def asave(self, name: str, value: Mapping[str, Any]) -> None:
        self.saved[name] = dict(value)


def test_every_catalogue_source_has_a_connector() -> None:
    from ordertwin.topics import SOURCES as CATALOGUE

    assert list(CATALOGUE) == SOURCES, f"sources without a connector plugin: {set(CATALOGUE) - set(SOURCES)}"


@pytest.mark.parametrize("source", SOURCES)
def test_plugin_declaration_is_consistent(source: str) -> None:
    found: SourcePlugin = plugin(source)
    assert found.name == source
    assert found.doc.strip(), "say which platform API the connector speaks"
    assert ("pull" in found.mode) == (found.page_source is not None)
    assert ("webhook" in found.mode) == (found.webhook is not None)
    assert found.start_simulator is not None, "every source needs a simulator"


@pytest.mark.parametrize("source", PUSH_SOURCES)
async def test_push_spec_builds_from_settings(source: str) -> None:
    async with aiohttp.ClientSession() as http:
        spec = webhook_spec(source, plugin(source).webhook, Settings(), http)
    assert isinstance(spec, WebhookSpec)
    assert spec.source == source
    assert spec.route.startswith("/")


@pytest.mark.parametrize("source", PULL_SOURCES)
async def test_pull_engine_collects_every_simulated_order(source: str) -> None:
    settings = Settings(pull_safety_lag_s=2.0, pull_overlap_s=5.0, pdd_min_safety_lag_s=0.0)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    start = end - timedelta(hours=2)
    running = await start_simulator(
        source, settings, n_orders=N_ORDERS, seed=5, start=start, end=end, host="127.0.0.1", port=0
    )
    try:
        settings = settings.model_copy(
            update={f"{source}_base_url": running.url, "pull_start": (start - timedelta(minutes=5)).isoformat()}
        )
        publisher, store = MemoryPublisher(), MemoryStore()
        found = plugin(source)
        assert found.page_source is not None
        async with aiohttp.ClientSession() as http:
            page_source = found.page_source(http, settings)

            async def no_wait(_: float) -> None:
                await asyncio.sleep(0)

            engine = PullEngine(
                page_source,
                publisher,
                store,
                topic=f"raw.{source}",
                config=PullConfig.from_settings(settings, page_source),
                metrics=ConnectorMetrics(CollectorRegistry()),
                backoff=Backoff((0.0,)),
                sleep=no_wait,
            )
            first = await engine.run_once()
            published = len(publisher.records)
            second = await engine.run_once()
    finally:
        await running.close()

    keys = {key for key, _ in publisher.records}
    assert len(keys) == N_ORDERS, f"{source}: {len(keys)} distinct keys for {N_ORDERS} simulated orders"
    assert first.cursor > first.start_cursor and publisher.watermarks, "the cursor and the watermark moved"
    assert store.saved[source]["cursor"] == first.cursor.isoformat() or second.start_cursor == first.cursor
    assert len(publisher.records) == published, "a second run from the saved cursor re-published records"
    for key, value in publisher.records:
        outcome = normalise_record(raw_record(source, value, key=key), codec=CODEC, fingerprint=FP, max_bytes=10**6)
        assert outcome.rejection is None, (source, outcome.rejection)
        assert outcome.orders or outcome.inventory
