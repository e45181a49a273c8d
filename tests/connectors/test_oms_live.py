"""The OMS (旺店通旗舰版) connector end to end on the real broker.

The simulator holds 360 ERP orders and injects the platform's per-minute call and concurrency
limits (status 100) and HTTP 429, HTTP 500s, timeouts (answers slower than the client waits),
duplicated records and orders modified while the connector pages. An independent
confluent-kafka consumer then checks ``raw.oms``:

1. pass 1 through the faults, pass 2 (once the orders modified during pass 1 are older than
   the safety lag) picks those up: every trade_no is in the topic, every value is byte for byte
   a version the simulator served, the last one per key is the current one, and each partition
   ends with the watermark of the final cursor;
2. pass 3 from the stored cursor publishes nothing new (only watermarks);
3. every record passes the OMS normaliser (``streams.normalise.core.normalise_record``); the
   events, de-duplicated by (order id, ERP version), name each channel order once per version
   and each channel order belongs to exactly one ERP order.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors.oms.simulator import FaultConfig
from connectors.runner import run_connector, start_simulator
from connectors.state import CursorStore
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from tests.helpers import CODEC, FP
from tests.live import read_topic

pytestmark = pytest.mark.live

N_ORDERS = 360
LAG_S, OVERLAP_S = 2.0, 1.0
FAULTS = FaultConfig(
    rate_limit_every=5, concurrency_limit_every=23, http_429_every=19, error_500_every=7, slow_every=11,
    slow_seconds=0.8, duplicate_every=3, modify_every=4, max_modifications=8,
)  # fmt: skip
EXPECT = ("rate_limited", "concurrency_limited", "http_429", "http_500", "slow", "duplicated", "modified")


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


def check_normalised(messages: list[Any]) -> int:
    """Every data record maps to OrderEvents; return how many distinct (order id, version) there are."""
    by_version: dict[tuple[str, int], set[str]] = defaultdict(set)  # (order id, version) -> event ids
    trade_of: dict[str, set[str]] = defaultdict(set)  # channel order id -> ERP trade_no
    for m in messages:
        if is_control(m):
            continue
        raw = RawRecord(
            source="oms",
            topic=m.topic(),
            partition=m.partition(),
            offset=m.offset(),
            key=m.key(),
            value=m.value(),
            headers=dict(m.headers() or []),
            timestamp_ms=m.timestamp()[1],
        )
        outcome = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=10**6)
        assert outcome.rejection is None, (m.key(), outcome.rejection)
        trade = json.loads(m.value())
        order_ids = [e.record["order_id"] for e in outcome.orders]
        assert len(order_ids) == len(set(order_ids)) == len(trade["src_tids"].split(","))
        for event in outcome.orders:
            by_version[(event.record["order_id"], trade["version_id"])].add(event.record["event_id"])
            trade_of[event.record["order_id"]].add(trade["trade_no"])
    # The same version read twice (overlap, duplicates, re-runs) is the same fact...
    assert all(len(ids) == 1 for ids in by_version.values())
    # ...and no channel order is claimed by two ERP orders.
    assert all(len(trades) == 1 for trades in trade_of.values())
    return len(by_version)


async def test_every_erp_order_reaches_raw_oms_through_faults_and_a_rerun_adds_nothing(
    live_settings: Settings,
) -> None:
    data_end = datetime.now(UTC) - timedelta(minutes=2)
    running = await start_simulator(
        "oms",
        live_settings,
        n_orders=N_ORDERS,
        seed=20261111,
        start=data_end - timedelta(hours=6),
        end=data_end,
        faults=FAULTS,
        host="127.0.0.1",
        port=0,
    )
    sim = running.simulator
    try:
        settings = live_settings.model_copy(
            update={
                "oms_base_url": running.url,
                "oms_page_size": 20,
                "pull_start": (datetime.now(UTC) - timedelta(hours=7)).isoformat(),
                "pull_window_s": 7200.0,  # clamped to 旺店通's 60 minutes
                "pull_overlap_s": OVERLAP_S,
                "pull_safety_lag_s": LAG_S,
                "backoff_s": (0.05, 0.1, 0.2, 0.4, 0.8),
                "connector_http_timeout_s": 0.5,  # the slow answers (0.8 s) time out
                "connector_metrics_port": 0,
            }
        )
        topic = Catalogue.from_settings(settings).raw("oms").name
        registry = CollectorRegistry()

        # 1. Through the faults, then again once the orders modified meanwhile are behind the lag.
        first = await run_connector("oms", settings, until_caught_up=True, registry=registry)
        assert first is not None and first.retries > 0 and first.duplicates_skipped > 0
        assert first.windows >= 7  # 7 hours in windows of under an hour
        sim.faults.modify_every = 0  # the ERP goes quiet
        await asyncio.sleep(LAG_S + OVERLAP_S + 2)
        second = await run_connector("oms", settings, until_caught_up=True, registry=CollectorRegistry())
        assert second is not None and second.start_cursor == first.cursor
        assert second.published <= len(set(sim.modified_keys))  # only what changed during pass 1
        for counter in EXPECT:
            assert sim.stats[counter] > 0, counter
        assert sim.stats["wdt_error"] == 0  # no refused signature, span or parameter

        messages = read_topic(settings, topic)
        seen = values_by_key(messages)
        current = sim.store.raw_by_key()
        assert len(current) == N_ORDERS and set(seen) == set(current)  # every trade_no
        assert all(v in sim.store.versions[k] for k, values in seen.items() for v in values)  # byte-identical
        assert all(values[-1] == current[k] for k, values in seen.items())  # the latest version last
        partitions = settings.partitions
        assert last_watermarks(messages) == {
            p: (second.cursor, partitions, settings.connector_instance) for p in range(partitions)
        }
        data = [m for m in messages if not is_control(m)]
        headers = dict(data[0].headers())
        assert headers["source"] == b"oms" and headers["connector"] == settings.connector_instance.encode()
        sample = registry.get_sample_value
        assert sample("ordertwin_connector_requests_total", {"source": "oms", "outcome": "rate_limited"})
        assert sample("ordertwin_connector_requests_total", {"source": "oms", "outcome": "transient"})
        stored = CursorStore(settings).load("oms")
        assert stored is not None and datetime.fromisoformat(stored["cursor"]) == second.cursor

        # 2. From the stored cursor: nothing new is published.
        third = await run_connector("oms", settings, until_caught_up=True, registry=CollectorRegistry())
        assert third is not None and third.start_cursor == second.cursor and third.published == 0
        after = read_topic(settings, topic, idle_s=1)
        assert len([m for m in after if not is_control(m)]) == len(data)
        assert len(after) == len(messages) + third.windows * partitions  # only watermarks were added

        # 3. Every record is an ERP order the normaliser maps, one fact per (order id, version).
        versions = check_normalised(after)
        channel_orders = sum(len(json.loads(v)["src_tids"].split(",")) for v in current.values())
        assert versions >= channel_orders  # every channel order, at least at its current version
    finally:
        await running.close()
