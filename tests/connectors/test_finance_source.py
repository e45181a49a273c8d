"""FinancePostingSource: page tokens behind the engine's page numbers, and the real
PullEngine over real HTTP (Kafka replaced by an in-memory publisher) at the window
boundaries: a posting at the window's end, one booked late exactly at the cursor, late ones
inside vs. beyond the overlap, and a run through every fault that finds each posting once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.errors import TransientError
from connectors.finance.client import FinanceClient, PostingPage, posting_key, to_ledger_time
from connectors.finance.simulator import FaultConfig, FinanceSimulator, RunningSimulator, generate_postings, serve
from connectors.finance.source import FinancePostingSource
from connectors.metrics import ConnectorMetrics
from connectors.pull import PullConfig, PullEngine, PullSummary
from ordertwin.settings import Settings
from tests.connectors.test_taobao_simulator import MemoryPublisher, MemoryStore

KEY, SECRET = "fin-key", "fin-secret"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.fixture
async def running() -> AsyncIterator[RunningSimulator]:
    sim = await serve(FinanceSimulator(api_key=KEY, api_secret=SECRET, seed=4), "127.0.0.1", 0)
    yield sim
    await sim.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(http: aiohttp.ClientSession, running: RunningSimulator, page_size: int = 200) -> FinancePostingSource:
    client = FinanceClient(http, base_url=running.url, api_key=KEY, api_secret=SECRET, timeout=0.5)
    return FinancePostingSource(client, page_size=page_size)


def posting(at: datetime, voucher: str, entry: int = 1) -> dict[str, Any]:
    doc = generate_postings(1, seed=entry, start=at, end=at + S)[0]
    doc.update(voucher_no=voucher, entry_no=entry, posted_at=to_ledger_time(at))
    return doc


@dataclass
class Run:
    """One engine with a fake clock (windows are deterministic) and what it published."""

    engine: PullEngine
    publisher: MemoryPublisher
    clock: list[datetime]

    async def once(self, now: datetime) -> PullSummary:
        self.clock[0] = now
        return await self.engine.run_once()

    def published_keys(self) -> Counter[bytes]:
        return Counter(k for k, _ in self.publisher.records if k is not None)


def make_run(
    source: FinancePostingSource, *, cursor: datetime, overlap_s: float, window: timedelta = timedelta(hours=1)
) -> Run:
    clock = [cursor]

    async def no_wait(_: float) -> None:
        return None

    publisher = MemoryPublisher()
    engine = PullEngine(
        source,
        publisher,
        MemoryStore(),
        topic="raw.finance",
        config=PullConfig(
            overlap=timedelta(seconds=overlap_s), max_window=window, safety_lag=timedelta(0), initial_cursor=cursor
        ),
        metrics=ConnectorMetrics(CollectorRegistry()),
        backoff=Backoff((0.0,) * 6, rng=random.Random(0)),
        clock=lambda: clock[0],
        sleep=no_wait,
    )
    return Run(engine, publisher, clock)


async def test_page_numbers_follow_the_tokens_and_a_retry_resends_the_same_token(
    running: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim = running.simulator
    sim.store.add_many(generate_postings(25, seed=1, start=T0, end=T0 + timedelta(minutes=30)))
    source = source_for(http, running, page_size=10)
    end = T0 + timedelta(hours=1)
    p1 = await source.fetch_page(T0, end, 1)
    p2 = await source.fetch_page(T0, end, 2)
    p2_again = await source.fetch_page(T0, end, 2)  # the engine retrying page 2
    p3 = await source.fetch_page(T0, end, 3)
    assert [len(p.items) for p in (p1, p2, p3)] == [10, 10, 5] and [p1.has_next, p3.has_next] == [True, False]
    assert p2_again.items == p2.items
    tokens = [q.get("page_token") for q in sim.queries]
    assert tokens[0] is None and tokens[1] == tokens[2] is not None and tokens[3] not in (None, tokens[1])
    assert source.tokens(T0, end) == {1: None, 2: tokens[1], 3: tokens[3]}
    raw = sim.store.raw_by_key()
    for item in (*p1.items, *p2.items, *p3.items):
        assert item.key is not None and raw[item.key.decode()] == item.value
        assert item.modified is not None and T0 <= item.modified < end
    # A page asked out of order (never by the engine) walks the chain from page 1.
    fresh = source_for(http, running, page_size=10)
    assert (await fresh.fetch_page(T0, end, 3)).items == p3.items
    assert (await fresh.fetch_page(T0, end, 5)).items == []


async def test_a_token_that_does_not_move_is_a_transient_error(http: aiohttp.ClientSession) -> None:
    class StuckClient:
        async def postings(self, *_: Any, page_token: str | None = None, **__: Any) -> PostingPage:
            return PostingPage(postings=[{}], raw=[b"{}"], next_page_token=page_token or "t1")

    source = FinancePostingSource(StuckClient())  # type: ignore[arg-type]
    await source.fetch_page(T0, T0 + S, 1)
    with pytest.raises(TransientError, match="did not move"):
        await source.fetch_page(T0, T0 + S, 2)


async def test_a_posting_at_the_window_end_is_in_that_window(
    running: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim = running.simulator
    end = T0 + timedelta(minutes=10)
    for i, at in enumerate((T0, end - S, end, end + S)):
        sim.store.add(posting(at, f"JZ-202611-{i:06d}"))
    run = make_run(source_for(http, running), cursor=T0, overlap_s=0)
    summary = await run.once(end)
    assert summary.cursor == end and summary.windows == 1
    assert set(run.published_keys()) == {b"JZ-202611-000000/1", b"JZ-202611-000001/1", b"JZ-202611-000002/1"}
    # [start, end] closed is asked as [start, end + 1 s): both bounds reach the posting.
    assert sim.queries[0]["posted_from"] == to_ledger_time(T0)
    assert sim.queries[0]["posted_to"] == to_ledger_time(end + S)


@pytest.mark.parametrize(
    ("overlap_s", "late_by_s", "found"),
    [
        (0, 0, True),  # booked late exactly at the cursor: the start bound is inclusive
        (0, 1, False),  # control: without overlap a posting dated before the cursor is lost
        (5, 2, True),
        (5, 5, True),  # at cursor - overlap: the first second of the next window
        (5, 6, False),  # beyond the overlap: the ledger committed it too late (documented limit)
    ],
)
async def test_late_postings_are_found_within_the_overlap(
    running: RunningSimulator, http: aiohttp.ClientSession, overlap_s: int, late_by_s: int, found: bool
) -> None:
    sim = running.simulator
    sim.store.add_many(generate_postings(40, seed=2, start=T0, end=T0 + timedelta(minutes=30)))
    run = make_run(source_for(http, running, page_size=7), cursor=T0, overlap_s=overlap_s)
    first = await run.once(T0 + timedelta(hours=1))
    cursor = first.cursor
    assert cursor == T0 + timedelta(hours=1) and len(run.published_keys()) == 40
    late = posting(cursor - timedelta(seconds=late_by_s), "LZ-202611-000001")
    sim.store.add(late)  # committed now, dated inside the window already pulled
    second = await run.once(cursor + timedelta(minutes=1))
    assert (posting_key(late) in run.published_keys()) is found
    assert second.published == int(found)  # the overlap's re-read postings are not sent again
    assert max(run.published_keys().values()) == 1


async def test_the_engine_collects_every_posting_once_through_every_fault(
    running: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim = running.simulator
    sim.faults = FaultConfig(
        http_429_every=5, retry_after_s=1, error_500_every=7, slow_every=11, slow_seconds=0.7,
        duplicate_every=2, late_every=1, late_by_s=(1, 2, 3), max_late=12,
    )  # fmt: skip
    sim.store.add_many(generate_postings(300, seed=6, start=T0, end=T0 + timedelta(hours=3)))
    run = make_run(source_for(http, running, page_size=10), cursor=T0, overlap_s=5)
    first = await run.once(T0 + timedelta(hours=3, minutes=5))
    sim.faults = FaultConfig()  # the ledger goes quiet: what was booked late must now be found
    second = await run.once(T0 + timedelta(hours=3, minutes=6))
    third = await run.once(T0 + timedelta(hours=3, minutes=7))
    stats = sim.stats
    assert stats["http_429"] and stats["http_500"] and stats["slow"] and stats["duplicated"]
    assert len(sim.late_keys) >= 4 and len(sim.store) == 300 + len(sim.late_keys)
    keys = run.published_keys()
    assert {k.decode() for k in keys} == set(sim.store.raw_by_key())  # every posting, late ones too
    assert max(keys.values()) == 1  # ... each published once
    raw = sim.store.raw_by_key()
    assert all(raw[k.decode()] == v for k, v in run.publisher.records if k is not None)  # byte-identical
    assert first.retries > 0 and first.duplicates_skipped > 0 and first.windows == 4
    assert second.start_cursor == first.cursor and third.published == 0


def test_config_from_settings_respects_the_31_day_maximum() -> None:
    settings = Settings(pull_window_s=90 * 86400.0, finance_page_size=321)
    from connectors.finance.plugin import page_source

    class NoHttp:
        pass

    source = page_source(NoHttp(), settings)  # type: ignore[arg-type]
    assert isinstance(source, FinancePostingSource) and source.page_size == 321
    config = PullConfig.from_settings(settings, source)
    assert config.max_window == timedelta(days=31) - 2 * S


@pytest.mark.parametrize(("overlap_s", "found"), [(0, False), (5, True)])
async def test_the_late_fault_is_caught_only_by_the_overlap(
    running: RunningSimulator, http: aiohttp.ClientSession, overlap_s: int, found: bool
) -> None:
    sim = running.simulator
    sim.faults = FaultConfig(late_every=1, late_by_s=(2, 3), max_late=4)
    sim.store.add_many(generate_postings(60, seed=8, start=T0, end=T0 + timedelta(hours=4)))
    run = make_run(source_for(http, running, page_size=10), cursor=T0, overlap_s=overlap_s)
    await run.once(T0 + timedelta(hours=4, minutes=30))
    assert len(sim.late_keys) == 4
    published = run.published_keys()
    assert all((key.encode() in published) is found for key in sim.late_keys)
    assert len(published) == 60 + (4 if found else 0)
