"""PDD's documented paging quirk, proven against the simulator over real HTTP.

The increment list is oldest first; an order updated while we page jumps out of the (past)
window and every later order moves up one place. Paging forwards loses the order that moves
onto the page just read; paging from the last page backwards (PddOrderSource) loses nothing,
and the updated order itself is found by a later window. Also: the page plan, a tail that
empties meanwhile, retries that reuse the probe, and the 3-minute lag reaching the engine.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.jd.client import JdClient
from connectors.jd.source import JdOrderSource
from connectors.metrics import ConnectorMetrics
from connectors.pdd.client import PddClient, to_pdd_time
from connectors.pdd.simulator import FaultConfig, PddSimulator, RunningSimulator, StoredOrder, generate_orders, serve
from connectors.pdd.source import PddOrderSource
from connectors.pull import PullConfig, PullEngine
from ordertwin.settings import Settings
from tests.connectors.test_taobao_simulator import MemoryPublisher, MemoryStore

PAGE = 10


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(PddSimulator(client_id="c", client_secret="s", access_token="t", seed=5), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(http: aiohttp.ClientSession, sim: RunningSimulator) -> PddClient:
    return PddClient(http, base_url=sim.url, client_id="c", client_secret="s", access_token="t")


def fill(sim: RunningSimulator, n: int) -> tuple[datetime, datetime, list[StoredOrder]]:
    """``n`` orders updated at distinct seconds inside a 20-minute window that ended 10 minutes ago."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    start = end - timedelta(minutes=20)
    orders = generate_orders(n, seed=9, start=start, end=end, same_second_share=0)
    for i, order in enumerate(orders):
        order["updated_at"] = to_pdd_time(start + timedelta(seconds=10 * i + 5))
    sim.simulator.store.add_many(orders)
    ordered = sorted(sim.simulator.store, key=lambda o: (o.updated, o.key))
    return start, end, ordered


def update_on_page_request(sim: RunningSimulator, page: int, key: str) -> list[int]:
    """Make the platform update ``key`` just before page ``page`` is first asked for; return
    the log of requested pages."""
    requested: list[int] = []

    def hook(simulator: PddSimulator, asked: int) -> None:
        requested.append(asked)
        if asked == page and key not in simulator.modified_keys:
            simulator.modify(key)

    sim.simulator.before_list = hook
    return requested


async def test_forward_paging_loses_an_order_that_was_not_even_updated(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    """The control experiment: what PDD warns about, reproduced."""
    start, end, ordered = fill(sim, 30)
    touched = ordered[3].key  # on page 1, already read when page 2 is asked for
    update_on_page_request(sim, 2, touched)
    client = client_for(http, sim)
    seen: set[str] = set()
    page = 1
    while True:
        got = await client.increment_get(start, end, page, PAGE)
        seen |= {o["order_sn"] for o in got.orders}
        if page * PAGE >= got.total:
            break
        page += 1
    lost = {o.key for o in ordered} - seen
    assert lost == {ordered[10].key}  # the first order of page 2 slid onto page 1 meanwhile
    assert touched in seen


@pytest.mark.parametrize("index", [3, 15, 25])  # on an unread page, the page being read next, a read page
async def test_backward_paging_loses_nothing(sim: RunningSimulator, http: aiohttp.ClientSession, index: int) -> None:
    start, end, ordered = fill(sim, 30)
    touched = ordered[index].key
    requested = update_on_page_request(sim, 2, touched)
    source = PddOrderSource(client_for(http, sim), page_size=PAGE)
    seen: set[str] = set()
    page_no, has_next = 1, True
    while has_next:
        page = await source.fetch_page(start, end, page_no)
        seen |= {i.key.decode() for i in page.items if i.key}
        has_next = page.has_next
        page_no += 1
    assert requested == [1, 3, 2, 1]  # probe, then last -> first
    assert source.platform_pages(start, end) == {1: 3, 2: 2, 3: 1}
    assert {o.key for o in ordered} - seen <= {touched}  # nothing else is missing
    # The updated order left this (past) window; its new time is found by a later one.
    later = await client_for(http, sim).increment_get(end, datetime.now(UTC) + timedelta(seconds=1), 1, PAGE)
    assert touched in {o["order_sn"] for o in later.orders}


async def test_engine_with_backward_paging_publishes_every_order(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    """End to end: an order updated mid-window is published by the next pass, no other is lost."""
    start, _, ordered = fill(sim, 45)
    update_on_page_request(sim, 3, ordered[5].key)
    sim.simulator.faults = FaultConfig(duplicate_every=2)
    publisher, store = MemoryPublisher(), MemoryStore()

    async def no_sleep(seconds: float) -> None:
        return None

    engine = PullEngine(
        PddOrderSource(client_for(http, sim), page_size=PAGE),
        publisher,
        store,
        topic="raw.pdd",
        config=PullConfig(
            overlap=timedelta(seconds=1),
            max_window=timedelta(minutes=29),
            safety_lag=timedelta(seconds=1),
            initial_cursor=start - timedelta(seconds=1),
        ),
        metrics=ConnectorMetrics(CollectorRegistry()),
        backoff=Backoff((0.01,), rng=random.Random(0)),
        sleep=no_sleep,
    )
    await engine.run_once()
    sim.simulator.before_list = None
    await asyncio.sleep(1.5)
    await engine.run_once()
    published = {k.decode() for k, _ in publisher.records if k}
    assert published == {o.key for o in ordered}
    latest = {k.decode(): v for k, v in publisher.records if k}
    assert latest == sim.simulator.store.raw_by_key()


async def test_a_tail_that_empties_meanwhile_steps_down(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    start, end, ordered = fill(sim, 25)  # pages of 10, 10, 5
    tail = [o.key for o in ordered[20:]]

    def hook(simulator: PddSimulator, asked: int) -> None:
        if asked == 3 and not simulator.modified_keys:
            for key in tail:  # all five leave the window between the probe and the last page
                simulator.modify(key)

    sim.simulator.before_list = hook
    source = PddOrderSource(client_for(http, sim), page_size=PAGE)
    first = await source.fetch_page(start, end, 1)
    assert first.items and first.has_next  # platform page 3 came back empty: page 2 served instead
    second = await source.fetch_page(start, end, 2)
    assert not second.has_next
    assert source.platform_pages(start, end) == {1: 2, 2: 1}
    seen = {i.key.decode() for i in [*first.items, *second.items] if i.key}
    assert seen == {o.key for o in ordered[:20]}


async def test_single_page_windows_cost_one_call(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    start, end, _ = fill(sim, 7)
    source = PddOrderSource(client_for(http, sim), page_size=PAGE)
    page = await source.fetch_page(start, end, 1)
    assert not page.has_next and len(page.items) == 7 and sim.simulator.stats["calls"] == 1


async def test_a_retry_of_the_first_page_reuses_the_probe(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    start, end, _ = fill(sim, 30)
    requested = update_on_page_request(sim, 99, "none")
    sim.simulator.faults = FaultConfig(rate_limit_every=2)  # the call after the probe is throttled
    publisher, store = MemoryPublisher(), MemoryStore()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    engine = PullEngine(
        PddOrderSource(client_for(http, sim), page_size=PAGE),
        publisher,
        store,
        topic="raw.pdd",
        config=PullConfig(overlap=timedelta(0), max_window=timedelta(minutes=29), initial_cursor=start),
        metrics=ConnectorMetrics(CollectorRegistry()),
        backoff=Backoff((0.01, 0.01, 0.01), rng=random.Random(0)),
        sleep=sleep,
        clock=lambda: end + timedelta(seconds=30),
    )
    summary = await engine.run_once()
    # Every second call is throttled before it reaches the order service (so ``requested``
    # only logs the calls that got through): the retry of logical page 1 asks platform page 3
    # again without a second probe - re-probing would throttle the last-page call forever.
    assert summary.retries == len(sleeps) == sim.simulator.stats["rate_limited"] == 3
    assert requested == [1, 3, 2, 1] and len(publisher.records) == 30


async def test_the_engine_honours_pdds_three_minute_lag(http: aiohttp.ClientSession) -> None:
    settings = Settings(pull_safety_lag_s=30.0)
    pdd = PddOrderSource(PddClient.from_settings(http, settings), min_safety_lag_s=settings.pdd_min_safety_lag_s)
    assert PullConfig.from_settings(settings, pdd).safety_lag == timedelta(minutes=3)
    longer = settings.model_copy(update={"pull_safety_lag_s": 600.0})
    assert PullConfig.from_settings(longer, pdd).safety_lag == timedelta(minutes=10)  # never shorter than asked
    jd = JdOrderSource(JdClient.from_settings(http, settings))
    assert PullConfig.from_settings(settings, jd).safety_lag == timedelta(seconds=30)  # others unaffected
    assert PullConfig.from_settings(settings, pdd).max_window == timedelta(minutes=30) - timedelta(seconds=2)
