"""Kuaishou's cursor paging behind the engine's numbered pages: page k + 1 is opened with the
cursor page k returned, a retried page resends its own cursor, ``"nomore"`` ends a window,
empty pages that still point further are followed, and an order updated while we page is
not lost (the cursor is a keyset position, the order reappears in a later window)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.errors import TransientError
from connectors.kuaishou.client import NO_MORE, CursorPage, KuaishouClient
from connectors.kuaishou.simulator import (
    FaultConfig,
    KuaishouSimulator,
    RunningSimulator,
    StoredOrder,
    generate_orders,
    serve,
)
from connectors.kuaishou.source import KS_MAX_WINDOW, KuaishouOrderSource
from connectors.metrics import ConnectorMetrics
from connectors.pull import PullConfig, PullEngine
from ordertwin.settings import Settings
from tests.connectors.test_taobao_simulator import MemoryPublisher, MemoryStore

PAGE = 10


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(KuaishouSimulator(app_key="k", sign_secret="s", access_token="t", seed=3), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(http: aiohttp.ClientSession, sim: RunningSimulator) -> KuaishouOrderSource:
    client = KuaishouClient(http, base_url=sim.url, app_key="k", sign_secret="s", access_token="t")
    return KuaishouOrderSource(client, page_size=PAGE)


def fill(sim: RunningSimulator, n: int) -> tuple[datetime, datetime, list[StoredOrder]]:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    start = end - timedelta(minutes=20)
    sim.simulator.store.add_many(generate_orders(n, seed=4, start=start, end=end, same_ms_share=0))
    return start, end, sorted(sim.simulator.store, key=lambda o: (o.updated_ms, o.oid), reverse=True)


def log_cursors(sim: RunningSimulator) -> list[str]:
    sent: list[str] = []
    sim.simulator.before_list = lambda _simulator, cursor: sent.append(cursor)
    return sent


async def test_each_page_is_opened_with_the_cursor_of_the_one_before(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    start, end, ordered = fill(sim, 25)
    sent = log_cursors(sim)
    source = source_for(http, sim)
    pages = [await source.fetch_page(start, end, n) for n in (1, 2, 3)]
    assert [p.has_next for p in pages] == [True, True, False]
    chain = source.cursors(start, end)
    assert sent == [chain[1], chain[2], chain[3]] and chain[1] == ""
    assert chain[2] == f"{ordered[9].updated_ms}_{ordered[9].oid}"  # the last order of page 1
    assert [i.key.decode() for p in pages for i in p.items if i.key] == [o.key for o in ordered]


async def test_a_retried_page_resends_its_own_cursor(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    start, end, _ = fill(sim, 25)
    sent = log_cursors(sim)
    source = source_for(http, sim)
    await source.fetch_page(start, end, 1)
    again = [await source.fetch_page(start, end, 2) for _ in range(2)]  # e.g. the flush failed, or a retry
    assert sent[1] == sent[2] != "" and again[0] == again[1]
    first_again = await source.fetch_page(start, end, 1)  # a new pass over the window starts at ""
    assert sent[3] == "" and first_again.has_next


async def test_an_empty_page_that_points_further_is_followed(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    start, end, ordered = fill(sim, 5)
    sim.simulator.faults = FaultConfig(empty_page_every=1)  # the first answer has no orders, only a cursor
    page = await source_for(http, sim).fetch_page(start, end, 1)
    assert [i.key.decode() for i in page.items if i.key] == [o.key for o in ordered] and not page.has_next
    assert sim.simulator.stats["empty_pages"] == 1 and sim.simulator.stats["list_calls"] == 2


class StuckClient:
    """A platform whose cursor does not move on an empty page."""

    def __init__(self) -> None:
        self.calls = 0

    async def cursor_list(self, start: datetime, end: datetime, cursor: str = "", page_size: int = 100) -> CursorPage:
        self.calls += 1
        return CursorPage(orders=[], raw=[], cursor="123_4")


async def test_a_cursor_that_does_not_move_is_a_platform_fault() -> None:
    source = KuaishouOrderSource(cast(KuaishouClient, StuckClient()))
    t = datetime(2026, 11, 11, tzinfo=UTC)
    with pytest.raises(TransientError, match="did not move"):
        await source.fetch_page(t, t + timedelta(hours=1), 1)


async def test_pages_asked_out_of_order_are_reached_by_walking(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    start, end, ordered = fill(sim, 25)
    source = source_for(http, sim)
    third = await source.fetch_page(start, end, 3)
    assert [i.key.decode() for i in third.items if i.key] == [o.key for o in ordered[20:]]
    assert set(source.cursors(start, end)) == {1, 2, 3}


async def test_an_order_updated_while_paging_is_not_lost(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    start, _, ordered = fill(sim, 45)
    touched = ordered[30].key  # still ahead of the cursor when page 2 is asked for
    page_2_cursor: list[str] = []

    def hook(simulator: KuaishouSimulator, cursor: str) -> None:
        if cursor and not page_2_cursor:
            page_2_cursor.append(cursor)
            simulator.modify(touched)

    sim.simulator.before_list = hook
    sim.simulator.faults = FaultConfig(duplicate_every=2, rate_limit_every=5)
    publisher, store = MemoryPublisher(), MemoryStore()

    async def no_sleep(seconds: float) -> None:
        return None

    engine = PullEngine(
        source_for(http, sim),
        publisher,
        store,
        topic="raw.kuaishou",
        config=PullConfig(overlap=timedelta(seconds=1), safety_lag=timedelta(seconds=1), initial_cursor=start),
        metrics=ConnectorMetrics(CollectorRegistry()),
        backoff=Backoff((0.01, 0.01), rng=random.Random(0)),
        sleep=no_sleep,
    )
    first = await engine.run_once()
    in_first = {k.decode() for k, _ in publisher.records if k}
    assert in_first == {o.key for o in ordered} - {touched}  # the others all came, despite the shift
    await asyncio.sleep(1.5)
    await engine.run_once()
    latest = {k.decode(): v for k, v in publisher.records if k}
    assert latest == sim.simulator.store.raw_by_key() and first.duplicates_skipped > 0


async def test_windows_are_clamped_to_seven_days(http: aiohttp.ClientSession) -> None:
    settings = Settings(pull_window_s=30 * 86400)
    source = KuaishouOrderSource(KuaishouClient.from_settings(http, settings))
    assert PullConfig.from_settings(settings, source).max_window == KS_MAX_WINDOW - timedelta(milliseconds=2)
    assert source.order == "unordered"  # the engine follows the platform cursor


def test_cursor_page_has_next() -> None:
    assert CursorPage(orders=[], raw=[], cursor="1_2").has_next
    assert not CursorPage(orders=[], raw=[], cursor=NO_MORE).has_next
