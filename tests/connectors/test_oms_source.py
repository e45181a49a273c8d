"""OmsTradeSource + PullEngine against the 旺店通 simulator over real HTTP (Kafka replaced by an
in-memory publisher; test_oms_live uses the real broker).

Windows and paging at their boundaries: engine page 1 is platform page 0; records at window
ends and records whose modified time equals the stored cursor are published, whichever bound
semantics the platform has; more trades in one second than fit a page; a trade modified while
the connector pages (the control experiment shows plain page_no paging losing a trade there);
duplicates; and no query ever spans more than the documented 60 minutes.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.errors import TransientError
from connectors.metrics import ConnectorMetrics
from connectors.oms.client import OmsClient, from_wdt_time, to_wdt_time
from connectors.oms.plugin import PLUGIN
from connectors.oms.simulator import FaultConfig, OmsSimulator, RunningSimulator, generate_trades, serve
from connectors.oms.source import WDT_MAX_WINDOW, OmsTradeSource
from connectors.pull import PullConfig, PullEngine, PullSummary
from connectors.scenario import generate
from ordertwin.settings import Settings
from tests.connectors.test_taobao_simulator import MemoryPublisher, MemoryStore

SID, KEY, APP_SECRET = "wdt-sid", "wdt-key", "wdt-secret:wdt-salt"
T = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)  # data time; the engine's and the platform's "now" are injected
PAGE = 10


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T + timedelta(hours=4))


@pytest.fixture
async def sim(clock: Clock) -> AsyncIterator[RunningSimulator]:
    running = await serve(OmsSimulator(sid=SID, app_key=KEY, app_secret=APP_SECRET, clock=clock, seed=3))
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(http: aiohttp.ClientSession, sim: RunningSimulator, page_size: int = PAGE) -> OmsTradeSource:
    client = OmsClient(http, base_url=sim.url, sid=SID, app_key=KEY, app_secret=APP_SECRET)
    return OmsTradeSource(client, page_size=page_size)


def engine_for(
    source: OmsTradeSource, clock: Clock, *, start: datetime, max_window: timedelta = timedelta(minutes=30)
) -> tuple[PullEngine, MemoryPublisher, MemoryStore]:
    async def no_sleep(seconds: float) -> None:
        return None

    publisher, store = MemoryPublisher(), MemoryStore()
    engine = PullEngine(
        source,
        publisher,
        store,
        topic="raw.oms",
        config=PullConfig(
            overlap=timedelta(seconds=60),
            max_window=max_window,
            safety_lag=timedelta(seconds=30),
            initial_cursor=start,
        ),
        metrics=ConnectorMetrics(CollectorRegistry()),
        backoff=Backoff((0.01, 0.01, 0.01, 0.01), rng=random.Random(0)),
        sleep=no_sleep,
        clock=clock,
    )
    return engine, publisher, store


def at(trade: dict[str, Any], moment: datetime) -> dict[str, Any]:
    trade["modified"] = to_wdt_time(moment)
    return trade


def published_keys(publisher: MemoryPublisher) -> Counter[str]:
    return Counter(k.decode() for k, _ in publisher.records if k)


def query_log(sim: RunningSimulator) -> list[tuple[datetime, datetime, int]]:
    """Log every order query's (start, end, page_no) as the platform received it."""
    log: list[tuple[datetime, datetime, int]] = []

    def hook(simulator: OmsSimulator, params: Mapping[str, Any], page_no: int) -> None:
        log.append((from_wdt_time(params["start_time"]), from_wdt_time(params["end_time"]), page_no))

    sim.simulator.before_query = hook
    return log


async def test_engine_page_one_is_platform_page_zero(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add_many(generate_trades(25, seed=1, start=T, end=T + timedelta(minutes=30)))
    log = query_log(sim)
    source = source_for(http, sim)
    pages = [await source.fetch_page(T, T + timedelta(minutes=30), n) for n in (1, 2, 3)]
    assert [page_no for _, _, page_no in log] == [0, 1, 2]
    assert [len(p.items) for p in pages] == [10, 10, 5] and [p.has_next for p in pages] == [True, True, False]
    item = pages[0].items[0]
    assert item.key is not None and item.modified is not None
    assert json.loads(item.value)["trade_no"] == item.key.decode()
    assert from_wdt_time(json.loads(item.value)["modified"]) == item.modified
    with pytest.raises(ValueError, match="from 1"):
        await source.fetch_page(T, T, 0)


@pytest.mark.parametrize("inclusive", [True, False], ids=["inclusive-bounds", "exclusive-bounds"])
async def test_every_trade_once_across_window_ends_and_crowded_seconds(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: Clock, inclusive: bool
) -> None:
    sim.simulator.start_inclusive = sim.simulator.end_inclusive = inclusive
    start = T - timedelta(seconds=1)
    trades = generate_trades(200, seed=2, start=T, end=T + timedelta(hours=3))
    # Windows are [cursor - 60 s, cursor - 60 s + 30 min]: the first ends 29 min after the
    # start, each next one 29 min later. Put trades exactly on those ends, and 25 trades
    # (2.5 pages) in one second.
    ends = [start + timedelta(minutes=29 * k) for k in range(1, 7)]
    for i, end in enumerate(ends):
        at(trades[i], end)
    crowded = T + timedelta(hours=1, minutes=7, seconds=13)
    for trade in trades[10:35]:
        at(trade, crowded)
    sim.simulator.store.add_many(trades)
    engine, publisher, store = engine_for(source_for(http, sim), clock, start=start)
    summary = await engine.run_once()
    counts = published_keys(publisher)
    assert set(counts) == {t["trade_no"] for t in trades} and set(counts.values()) == {1}
    assert set(ends) <= {w.end for w in summary.window_log}  # the trades sat exactly on window ends
    assert summary.duplicates_skipped > 0  # the overlap fetched window-end trades twice
    assert (
        store.values["oms"]["cursor"] == summary.cursor.isoformat() == (clock.now - timedelta(seconds=30)).isoformat()
    )
    assert sim.simulator.stats["wdt_error"] == 0


@pytest.mark.parametrize("inclusive", [True, False], ids=["inclusive-bounds", "exclusive-bounds"])
async def test_a_trade_modified_at_the_stored_cursor_is_not_lost(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: Clock, inclusive: bool
) -> None:
    sim.simulator.start_inclusive = sim.simulator.end_inclusive = inclusive
    trades = generate_trades(40, seed=4, start=T, end=T + timedelta(hours=3))
    sim.simulator.store.add_many(trades[:30])
    engine, publisher, _ = engine_for(source_for(http, sim), clock, start=T - timedelta(seconds=1))
    first = await engine.run_once()
    cursor = first.cursor
    assert len(published_keys(publisher)) == 30
    # Changes the platform shows late: one stamped exactly at the cursor, one inside the
    # overlap before it, one at the cursor plus a second; and one already-published trade
    # that changes at the cursor.
    late = [
        at(trades[30], cursor),
        at(trades[31], cursor - timedelta(seconds=30)),
        at(trades[32], cursor + timedelta(seconds=1)),
    ]
    sim.simulator.store.add_many(late)
    sim.simulator.store.update(trades[0]["trade_no"], {"cs_remark": "改地址"}, modified=cursor)
    clock.now += timedelta(minutes=2)
    before = len(publisher.records)
    second = await engine.run_once()
    assert second.window_log[0].start <= cursor - timedelta(seconds=60)  # the overlap reaches back
    again = [k.decode() for k, _ in publisher.records[before:] if k]
    assert sorted(again) == sorted([t["trade_no"] for t in late] + [trades[0]["trade_no"]])
    latest = {k.decode(): v for k, v in publisher.records if k}
    assert latest == sim.simulator.store.raw_by_key()


async def test_plain_page_numbers_lose_a_trade_modified_while_paging(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    """The control experiment: newest first, a trade on the page already read is modified (it
    jumps to now, out of the past window) and every later trade moves up one place; the one
    that moves onto the read page is never seen."""
    trades = generate_trades(30, seed=5, start=T, end=T + timedelta(minutes=30), same_second_share=0)
    for i, trade in enumerate(trades):
        at(trade, T + timedelta(seconds=10 * i + 5))
    sim.simulator.store.add_many(trades)
    newest_first = [t["trade_no"] for t in reversed(trades)]
    touched = newest_first[3]

    def hook(simulator: OmsSimulator, params: Mapping[str, Any], page_no: int) -> None:
        if page_no == 1 and not simulator.modified_keys:
            simulator.modify(touched)

    sim.simulator.before_query = hook
    client = source_for(http, sim).client
    seen: set[str] = set()
    page_no = 0
    while True:
        page = await client.trade_query(T, T + timedelta(minutes=30), page_no, PAGE)
        seen |= {t["trade_no"] for t in page.orders}
        if not page.has_next:
            break
        page_no += 1
    assert set(newest_first) - seen == {newest_first[10]}  # not even modified, and lost


async def test_keyset_paging_loses_nothing_when_a_trade_is_modified_while_paging(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: Clock
) -> None:
    trades = generate_trades(45, seed=6, start=T, end=T + timedelta(minutes=20), same_second_share=0)
    for i, trade in enumerate(trades):
        at(trade, T + timedelta(seconds=20 * i + 5))
    sim.simulator.store.add_many(trades)
    newest_first = [t["trade_no"] for t in reversed(trades)]
    touched = {newest_first[3], newest_first[25]}  # one on the first page read, one not yet read

    def hook(simulator: OmsSimulator, params: Mapping[str, Any], page_no: int) -> None:
        if simulator.stats["query_calls"] == 2:
            for key in touched:
                simulator.modify(key)

    sim.simulator.before_query = hook
    engine, publisher, _ = engine_for(source_for(http, sim), clock, start=T - timedelta(seconds=1))
    await engine.run_once()
    assert set(newest_first) - set(published_keys(publisher)) <= touched  # nobody else is missing
    sim.simulator.before_query = None
    clock.now += timedelta(minutes=1)  # the changes (made at the old "now") are behind the lag
    await engine.run_once()
    assert set(published_keys(publisher)) == set(newest_first)
    latest = {k.decode(): v for k, v in publisher.records if k}
    assert latest == sim.simulator.store.raw_by_key()  # the modified version came last
    assert all(
        json.loads(latest[k])["version_id"] > json.loads(sim.simulator.store.versions[k][0])["version_id"]
        for k in touched
    )


async def test_duplicated_records_are_published_once(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: Clock
) -> None:
    sim.simulator.store.add_many(generate_trades(60, seed=7, start=T, end=T + timedelta(hours=2)))
    sim.simulator.faults = FaultConfig(duplicate_every=1)
    engine, publisher, _ = engine_for(source_for(http, sim), clock, start=T - timedelta(seconds=1))
    summary: PullSummary = await engine.run_once()
    assert sim.simulator.stats["duplicated"] > 0 and summary.duplicates_skipped >= sim.simulator.stats["duplicated"]
    counts = published_keys(publisher)
    assert len(counts) == 60 and set(counts.values()) == {1}


async def test_no_query_spans_more_than_sixty_minutes(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: Clock
) -> None:
    sim.simulator.store.add_many(generate_trades(80, seed=8, start=T, end=T + timedelta(hours=3)))
    log = query_log(sim)
    source = source_for(http, sim, page_size=20)
    config = PullConfig.from_settings(Settings(pull_window_s=7200.0, pull_overlap_s=60.0), source)
    engine, publisher, _ = engine_for(source, clock, start=T - timedelta(seconds=1), max_window=config.max_window)
    summary = await engine.run_once()
    assert summary.windows >= 4 and len(published_keys(publisher)) == 80
    assert max(end - start for start, end, _ in log) <= WDT_MAX_WINDOW
    assert sim.simulator.stats["wdt_error"] == 0


async def test_the_engine_collects_a_scenario_played_in_real_time_through_an_outage(
    http: aiohttp.ClientSession,
) -> None:
    """The scenario hook end to end: records appear as the (injected) clock reaches them, the
    engine polls every 30 s, an outage of "oms" fails every call for two minutes; afterwards
    every ERP order is published, its last version last."""
    start = T + timedelta(minutes=1)
    scenario = generate(
        seed=9, n_orders=40, start=start, span=timedelta(minutes=10), threshold=timedelta(minutes=5),
        outages=[("oms", timedelta(minutes=3), timedelta(minutes=2))],
    )  # fmt: skip
    records = [r for r in scenario.records if r.source == "oms"]
    clock = Clock(T)
    settings = Settings(oms_sid=SID, oms_app_key=KEY, oms_app_secret=APP_SECRET)
    running = await PLUGIN.start_scenario_simulator(  # type: ignore[misc]
        settings, scenario.records, outages=scenario.outages, host="127.0.0.1", port=0, clock=clock
    )
    try:
        engine, publisher, _ = engine_for(source_for(http, running), clock, start=T)
        failed_polls = 0
        while clock.now < max(r.at for r in records) + timedelta(minutes=2):
            clock.now += timedelta(seconds=30)
            try:
                await engine.run_once()
            except TransientError:
                failed_polls += 1  # the outage: the cursor stays, the next poll repeats the window
    finally:
        await running.close()
    assert failed_polls == 4 and running.simulator.stats["outage"] >= 4
    last = {r.key.decode(): r.value for r in sorted(records, key=lambda r: r.at)}
    latest = {k.decode(): v for k, v in publisher.records if k}
    assert latest == last
    assert all(v in [r.value for r in records] for _, v in publisher.records)  # byte for byte
