"""The finance connector end to end on the real broker.

The ledger simulator holds 320 postings (payments, full and partial refunds, chargebacks,
batched vouchers) and injects HTTP 429 with Retry-After, HTTP 500, timeouts (answers slower
than the client waits), postings repeated across pages, and late postings: whenever a new
query starts, a posting is committed dated 1-3 s before the end of a window already pulled
to its last page, so only the window overlap brings it back. An independent confluent-kafka
consumer then checks ``raw.finance``:

1. pass 1 through the faults, pass 2 (faults off, once the last late postings are behind the
   safety lag) picks up what pass 1 could not: every posting id is in the topic, every value
   is byte for byte what the ledger served, a posting appears twice only where a restarted
   connector re-reads its overlap, and each partition ends with the watermark of the final
   cursor; every record passes the finance normaliser, one fact per posting;
2. pass 3 from the stored cursor publishes nothing new (only watermarks).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors.finance.simulator import FaultConfig
from connectors.runner import run_connector, start_simulator
from connectors.state import CursorStore
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record
from tests.live import read_topic

pytestmark = pytest.mark.live

N_POSTINGS = 320
LAG_S, OVERLAP_S = 2.0, 5.0
FAULTS = FaultConfig(
    http_429_every=13, retry_after_s=1, error_500_every=7, slow_every=11, slow_seconds=0.8,
    duplicate_every=3, late_every=1, late_by_s=(1, 2, 3), max_late=10,
)  # fmt: skip


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


async def test_every_posting_reaches_raw_finance_through_faults_and_a_rerun_adds_nothing(
    live_settings: Settings,
) -> None:
    data_end = datetime.now(UTC) - timedelta(minutes=2)
    running = await start_simulator(
        "finance",
        live_settings,
        n_orders=N_POSTINGS,
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
                "finance_base_url": running.url,
                "finance_page_size": 10,
                "pull_start": (datetime.now(UTC) - timedelta(hours=7)).isoformat(),
                "pull_window_s": 3600.0,
                "pull_overlap_s": OVERLAP_S,
                "pull_safety_lag_s": LAG_S,
                "backoff_s": (0.05, 0.1, 0.2, 0.4, 0.8),
                "connector_http_timeout_s": 0.5,  # the slow answers (0.8 s) time out
                "connector_metrics_port": 0,
            }
        )
        topic = Catalogue.from_settings(settings).raw("finance").name
        registry = CollectorRegistry()

        # 1. Through the faults, then again once the last late postings are behind the lag.
        first = await run_connector("finance", settings, until_caught_up=True, registry=registry)
        assert first is not None and first.retries > 0 and first.duplicates_skipped > 0
        sim.faults.late_every = 0  # the ledger goes quiet
        await asyncio.sleep(LAG_S + OVERLAP_S + 2)
        second = await run_connector("finance", settings, until_caught_up=True, registry=CollectorRegistry())
        assert second is not None and second.start_cursor == first.cursor
        assert second.published <= len(sim.late_keys)  # late postings only (found now, or re-read)
        for counter in ("http_429", "http_500", "slow", "duplicated", "late"):
            assert sim.stats[counter] > 0, counter

        messages = read_topic(settings, topic)
        seen = values_by_key(messages)
        served = sim.store.raw_by_key()
        assert len(served) == N_POSTINGS + len(sim.late_keys) and len(sim.late_keys) >= 3
        assert set(seen) == set(served)  # every posting id, the late ones too
        assert all(v == served[k] for k, values in seen.items() for v in values)  # byte for byte
        # Published twice only by the restarted pass 2 re-reading pass 1's last overlap.
        reread_from = first.cursor - timedelta(seconds=OVERLAP_S + 1)
        twice = {k for k, values in seen.items() if len(values) > 1}
        assert all(len(seen[k]) == 2 for k in twice)
        assert all(s.posted_at >= reread_from for k in twice if (s := sim.store.get(k)) is not None)

        partitions = settings.partitions
        assert last_watermarks(messages) == {
            p: (second.cursor, partitions, settings.connector_instance) for p in range(partitions)
        }
        data = [m for m in messages if not is_control(m)]
        headers = dict(data[0].headers())
        assert headers["source"] == b"finance" and headers["connector"] == settings.connector_instance.encode()
        sample = registry.get_sample_value
        assert sample("ordertwin_connector_requests_total", {"source": "finance", "outcome": "rate_limited"})
        assert sample("ordertwin_connector_requests_total", {"source": "finance", "outcome": "transient"})
        stored = CursorStore(settings).load("finance")
        assert stored is not None and datetime.fromisoformat(stored["cursor"]) == second.cursor

        # Every record passes the finance normaliser: one fact per posting, none twice.
        facts: dict[str, set[str]] = defaultdict(set)
        for m in data:
            raw = raw_record("finance", m.value(), topic=topic, offset=m.offset(), key=m.key(),
                             headers=dict(m.headers()))  # fmt: skip
            outcome = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=settings.max_raw_bytes)
            assert outcome.rejection is None, (m.key(), outcome.rejection)
            assert len(outcome.orders) == 1 and not outcome.inventory
            facts[m.key().decode()].add(outcome.orders[0].record["event_id"])
        assert set(facts) == set(served) and all(len(ids) == 1 for ids in facts.values())
        assert len({next(iter(ids)) for ids in facts.values()}) == len(served)

        # 2. From the stored cursor: nothing new is published.
        third = await run_connector("finance", settings, until_caught_up=True, registry=CollectorRegistry())
        assert third is not None and third.start_cursor == second.cursor and third.published == 0
        after = read_topic(settings, topic, idle_s=1)
        assert len([m for m in after if not is_control(m)]) == len(data)
        assert len(after) == len(messages) + third.windows * partitions  # only watermarks were added
    finally:
        await running.close()
