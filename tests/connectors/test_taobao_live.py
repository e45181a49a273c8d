"""Taobao connector end to end on the real broker: simulator (with injected rate limits and
HTTP 500s) -> connector -> raw.taobao, checked by an independent consumer."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from connectors.runner import run_connector, start_simulator
from connectors.state import CursorStore
from connectors.taobao.simulator import FaultConfig, RunningSimulator
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from tests.live import free_port, read_topic

pytestmark = pytest.mark.live

N_TRADES = 600


@pytest.fixture
async def simulator(live_settings: Settings) -> AsyncIterator[RunningSimulator]:
    end = datetime.now(UTC) - timedelta(minutes=2)
    running = await start_simulator(
        "taobao",
        live_settings,
        n_orders=N_TRADES,
        seed=20261111,
        start=end - timedelta(hours=6),
        end=end,
        faults=FaultConfig(rate_limit_every=5, error_500_every=7, ban_seconds=1),
        host="127.0.0.1",
        port=0,
    )
    yield running
    await running.close()


def is_control(message: Any) -> bool:
    return is_watermark(dict(message.headers() or []))


def by_key(messages: list[Any]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for m in messages:
        if not is_control(m):
            out[m.key().decode()].append(m.value())
    return out


def last_watermarks(messages: list[Any]) -> dict[int, tuple[datetime, int, str]]:
    """Per partition, the watermark control record that comes last."""
    out = {}
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        if is_control(m):
            out[m.partition()] = parse_raw_watermark(m.value())
    return out


async def test_connector_catches_up_then_publishes_nothing_new_then_replays(
    live_settings: Settings, simulator: RunningSimulator
) -> None:
    raw = simulator.simulator.store.raw_by_key()
    assert len(raw) == N_TRADES
    settings = live_settings.model_copy(
        update={
            "taobao_base_url": simulator.url,
            "pull_start": (datetime.now(UTC) - timedelta(hours=7)).isoformat(),
            "pull_window_s": 3600.0,
            "pull_safety_lag_s": 5.0,
            "backoff_s": (0.05, 0.1, 0.2),
            "connector_metrics_port": 0,
        }
    )
    topic = Catalogue.from_settings(settings).raw("taobao").name
    registry = CollectorRegistry()

    # 1. Catch up through the faults: every tid, byte-identical to what the simulator sent.
    first = await run_connector("taobao", settings, until_caught_up=True, registry=registry)
    assert first is not None and first.retries > 0
    stats = simulator.simulator.stats
    assert stats["rate_limited"] > 0 and stats["http_500"] > 0
    messages = read_topic(settings, topic)
    data = [m for m in messages if not is_control(m)]
    seen = by_key(messages)
    assert set(seen) == set(raw)
    assert all(values == [raw[tid]] * len(values) for tid, values in seen.items())
    # Each raw partition ends with a watermark vouching for everything before it.
    partitions = settings.partitions
    assert last_watermarks(messages) == {
        p: (first.cursor, partitions, settings.connector_instance) for p in range(partitions)
    }
    assert len(messages) - len(data) == first.windows * partitions
    headers = dict(data[0].headers())
    assert headers["source"] == b"taobao" and headers["connector"] == settings.connector_instance.encode()
    assert datetime.fromisoformat(headers["received_at"].decode()).tzinfo is not None
    assert all({h for h, _ in m.headers()} >= {"source", "received_at", "connector", "delivery_id"} for m in messages)
    sample = registry.get_sample_value
    assert sample("ordertwin_connector_records_total", {"source": "taobao", "outcome": "published"}) == len(data)
    assert sample("ordertwin_connector_requests_total", {"source": "taobao", "outcome": "rate_limited"}) > 0
    assert sample("ordertwin_connector_requests_total", {"source": "taobao", "outcome": "transient"}) > 0
    lag = sample("ordertwin_connector_poll_lag_seconds", {"source": "taobao"})
    assert lag is not None and lag < 60
    stored = CursorStore(settings).load("taobao")
    assert stored is not None and datetime.fromisoformat(stored["cursor"]) == first.cursor

    # 2. Again, from the stored cursor: nothing new is published.
    second = await run_connector("taobao", settings, until_caught_up=True, registry=CollectorRegistry())
    assert second is not None and second.start_cursor == first.cursor and second.published == 0
    after = read_topic(settings, topic, idle_s=1)
    assert len([m for m in after if not is_control(m)]) == len(data)
    assert len(after) == len(messages) + second.windows * partitions  # only watermarks were added

    # 3. From start: the same trades again (duplicates only), still byte-identical.
    third = await run_connector("taobao", settings, from_start=True, until_caught_up=True, registry=CollectorRegistry())
    assert third is not None and third.published >= N_TRADES
    replay = read_topic(settings, topic)
    assert len([m for m in replay if not is_control(m)]) == len(data) + third.published
    seen_again = by_key(replay)
    assert set(seen_again) == set(raw)
    assert all(values == [raw[tid]] * len(values) for tid, values in seen_again.items())


async def test_run_until_stopped_serves_metrics(live_settings: Settings, simulator: RunningSimulator) -> None:
    """The long-running mode: polls, serves /metrics, and stops promptly on the event."""
    port = free_port()
    settings = live_settings.model_copy(
        update={
            "taobao_base_url": simulator.url,
            "pull_start": (datetime.now(UTC) - timedelta(hours=7)).isoformat(),
            "pull_window_s": 86_000.0,
            "pull_safety_lag_s": 1.0,
            "poll_interval_s": 0.2,
            "backoff_s": (0.05, 0.1, 0.2),
            "connector_metrics_port": port,
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_connector("taobao", settings, stop=stop))

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return str(resp.read().decode())

    published = 0.0
    for _ in range(150):
        await asyncio.sleep(0.2)
        try:
            text = await asyncio.to_thread(scrape)
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "ordertwin_connector_records_total" and s.labels["outcome"] == "published":
                    published = s.value
        if published >= N_TRADES:
            break
    assert published >= N_TRADES
    stop.set()
    assert await asyncio.wait_for(task, timeout=10) is None
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(scrape)  # the metrics server is gone with the connector
