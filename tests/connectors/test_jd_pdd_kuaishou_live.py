"""JD, PDD and Kuaishou connectors end to end on the real broker.

Each simulator holds 400 orders and injects rate limits (platform codes and HTTP 429), HTTP
500s (and PDD 50000s), timeouts (answers slower than the client waits), duplicated records,
orders modified while the connector pages, and (Kuaishou) empty pages that still hand out a
cursor. An independent confluent-kafka consumer then checks ``raw.<source>``:

1. pass 1 through the faults, pass 2 (once the orders modified during pass 1 are older than
   the safety lag) picks those up: every order id is in the topic, every value is byte for
   byte a version the platform served, the last one per key is the current one, and each
   partition ends with the watermark control record of the final cursor;
2. pass 3 from the stored cursor publishes nothing new (only watermarks).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors.jd.simulator import FaultConfig as JdFaults
from connectors.kuaishou.simulator import FaultConfig as KsFaults
from connectors.pdd.simulator import FaultConfig as PddFaults
from connectors.runner import run_connector, start_simulator
from connectors.state import CursorStore
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from tests.live import read_topic

pytestmark = pytest.mark.live

N_ORDERS = 400
LAG_S, OVERLAP_S = 2.0, 1.0


@dataclass(frozen=True)
class Case:
    faults: Any
    settings: dict[str, Any]  # besides the base URL
    url_field: str
    expect: tuple[str, ...]  # simulator counters that must be > 0


CASES: dict[str, Case] = {
    "jd": Case(
        JdFaults(rate_limit_every=5, http_429_every=19, error_500_every=7, slow_every=11, slow_seconds=0.8,
                 duplicate_every=3, modify_every=4, max_modifications=8),
        {"jd_page_size": 20},
        "jd_base_url",
        ("rate_limited", "http_429", "http_500", "slow", "duplicated", "modified"),
    ),
    "pdd": Case(
        PddFaults(rate_limit_every=5, http_429_every=19, error_500_every=7, internal_error_every=23, slow_every=11,
                  slow_seconds=0.8, duplicate_every=3, modify_every=4, max_modifications=8),
        {"pdd_page_size": 10, "pdd_min_safety_lag_s": LAG_S},
        "pdd_base_url",
        ("rate_limited", "http_429", "http_500", "internal_error", "slow", "duplicated", "modified"),
    ),
    "kuaishou": Case(
        KsFaults(rate_limit_every=5, http_429_every=19, error_500_every=7, slow_every=11, slow_seconds=0.8,
                 duplicate_every=3, modify_every=4, max_modifications=8, empty_page_every=3),
        {"kuaishou_page_size": 20},
        "kuaishou_base_url",
        ("rate_limited", "http_429", "http_500", "slow", "duplicated", "modified", "empty_pages"),
    ),
}  # fmt: skip


def is_control(message: Any) -> bool:
    return is_watermark(dict(message.headers() or []))


def values_by_key(messages: list[Any]) -> dict[str, list[bytes]]:
    """Data values per key in the order Kafka holds them (one key lives in one partition)."""
    out: dict[str, list[bytes]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        if not is_control(m):
            out[m.key().decode()].append(m.value())
    return out


def last_watermarks(messages: list[Any]) -> dict[int, tuple[datetime, int, str]]:
    out = {}
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        if is_control(m):
            out[m.partition()] = parse_raw_watermark(m.value())
    return out


@pytest.mark.parametrize("source", sorted(CASES))
async def test_every_order_reaches_the_raw_topic_through_faults_and_a_rerun_adds_nothing(
    live_settings: Settings, source: str
) -> None:
    case = CASES[source]
    data_end = datetime.now(UTC) - timedelta(minutes=2)
    running = await start_simulator(
        source,
        live_settings,
        n_orders=N_ORDERS,
        seed=20261111,
        start=data_end - timedelta(hours=6),
        end=data_end,
        faults=case.faults,
        host="127.0.0.1",
        port=0,
    )
    sim = running.simulator
    try:
        settings = live_settings.model_copy(
            update={
                case.url_field: running.url,
                "pull_start": (datetime.now(UTC) - timedelta(hours=7)).isoformat(),
                "pull_window_s": 3600.0,  # clamped to each platform's maximum (PDD: 30 min)
                "pull_overlap_s": OVERLAP_S,
                "pull_safety_lag_s": LAG_S,
                "backoff_s": (0.05, 0.1, 0.2, 0.4, 0.8),
                "connector_http_timeout_s": 0.5,  # the slow answers (0.8 s) time out
                "connector_metrics_port": 0,
                **case.settings,
            }
        )
        topic = Catalogue.from_settings(settings).raw(source).name
        registry = CollectorRegistry()

        # 1. Through the faults, then again once the orders modified meanwhile are behind the lag.
        first = await run_connector(source, settings, until_caught_up=True, registry=registry)
        assert first is not None and first.retries > 0 and first.duplicates_skipped > 0
        sim.faults.modify_every = 0  # the shop goes quiet
        await asyncio.sleep(LAG_S + OVERLAP_S + 2)
        second = await run_connector(source, settings, until_caught_up=True, registry=CollectorRegistry())
        assert second is not None and second.start_cursor == first.cursor
        assert second.published <= len(set(sim.modified_keys))  # only what changed during pass 1
        for counter in case.expect:
            assert sim.stats[counter] > 0, counter

        messages = read_topic(settings, topic)
        seen = values_by_key(messages)
        current = sim.store.raw_by_key()
        assert len(current) == N_ORDERS and set(seen) == set(current)  # every order id
        assert all(v in sim.store.versions[k] for k, values in seen.items() for v in values)  # byte-identical
        assert all(values[-1] == current[k] for k, values in seen.items())  # the latest version last
        partitions = settings.partitions
        assert last_watermarks(messages) == {
            p: (second.cursor, partitions, settings.connector_instance) for p in range(partitions)
        }
        data = [m for m in messages if not is_control(m)]
        headers = dict(data[0].headers())
        assert headers["source"] == source.encode() and headers["connector"] == settings.connector_instance.encode()
        sample = registry.get_sample_value
        assert sample("ordertwin_connector_requests_total", {"source": source, "outcome": "rate_limited"})
        assert sample("ordertwin_connector_requests_total", {"source": source, "outcome": "transient"})
        stored = CursorStore(settings).load(source)
        assert stored is not None and datetime.fromisoformat(stored["cursor"]) == second.cursor

        # 2. From the stored cursor: nothing new is published.
        third = await run_connector(source, settings, until_caught_up=True, registry=CollectorRegistry())
        assert third is not None and third.start_cursor == second.cursor and third.published == 0
        after = read_topic(settings, topic, idle_s=1)
        assert len([m for m in after if not is_control(m)]) == len(data)
        assert len(after) == len(messages) + third.windows * partitions  # only watermarks were added
    finally:
        await running.close()
