"""TaobaoClient against the in-process TOP simulator over real HTTP on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from connectors.backoff import Backoff, retry
from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.taobao.client import (
    TaobaoClient,
    array_items,
    classify_error,
    from_top_time,
    to_top_time,
)
from connectors.taobao.simulator import FaultConfig, RunningSimulator, TaobaoSimulator, generate_trades, serve
from connectors.taobao.source import TaobaoTradeSource

APP_KEY, SECRET, SESSION = "12345678", "sim-secret", "sim-session"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    simulator = TaobaoSimulator(app_key=APP_KEY, app_secret=SECRET, session_key=SESSION)
    running = await serve(simulator, "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: Any) -> TaobaoClient:
    args: dict[str, Any] = {
        "base_url": sim.url,
        "app_key": APP_KEY,
        "app_secret": SECRET,
        "session_key": SESSION,
    }
    args.update(kw)
    return TaobaoClient(http, **args)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --- time at the edge -----------------------------------------------------------------------


def test_top_times_are_beijing_time() -> None:
    assert to_top_time(T0) == "2026-11-11 08:00:00"
    parsed = from_top_time("2026-11-11 08:00:00")
    assert parsed == T0 and parsed.utcoffset() == timedelta(hours=8)
    with pytest.raises(ValueError, match="naive"):
        to_top_time(datetime(2026, 11, 11))


# --- paging and bytes -----------------------------------------------------------------------


async def test_pages_return_every_trade_with_its_exact_bytes(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    store = sim.simulator.store
    store.add_many(generate_trades(230, seed=1, start=T0, end=T0 + timedelta(hours=2)))
    client = make_client(http, sim)
    pages = [await client.trades_sold_increment_get(T0, T0 + timedelta(hours=2), n, 100) for n in (1, 2, 3)]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [len(p.trades) for p in pages] == [100, 100, 30]
    raw_by_tid = store.raw_by_key()
    seen = {}
    for page in pages:
        for trade, raw in zip(page.trades, page.raw, strict=True):
            assert raw == raw_by_tid[str(trade["tid"])]  # byte-identical to what the platform sent
            assert json.loads(raw) == trade
            seen[str(trade["tid"])] = trade
    assert set(seen) == set(raw_by_tid)
    modified = [from_top_time(t["modified"]) for p in pages for t in p.trades]
    assert modified == sorted(modified, reverse=True)  # TOP: newest first


async def test_window_bounds_are_beijing_time_and_inclusive(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    trade = generate_trades(1, seed=2, start=T0, end=T0 + timedelta(seconds=1))[0]
    assert trade["modified"] == "2026-11-11 08:00:00"
    sim.simulator.store.add(trade)
    client = make_client(http, sim)
    assert len((await client.trades_sold_increment_get(T0, T0 + timedelta(minutes=1))).trades) == 1
    assert len((await client.trades_sold_increment_get(T0 - timedelta(minutes=1), T0)).trades) == 1
    assert (await client.trades_sold_increment_get(T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))).trades == []


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
async def test_every_sign_method_is_accepted(sim: RunningSimulator, http: aiohttp.ClientSession, method: str) -> None:
    page = await make_client(http, sim, sign_method=method).trades_sold_increment_get(T0, T0 + timedelta(hours=1))
    assert page.trades == [] and page.has_next is False


async def test_default_type_filter_would_hide_tmall_global(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    trade = generate_trades(1, seed=3, start=T0, end=T0 + timedelta(seconds=1))[0]
    trade["type"] = "tmall_i18n"
    sim.simulator.store.add(trade)
    window = (T0, T0 + timedelta(minutes=1))
    assert len((await make_client(http, sim).trades_sold_increment_get(*window)).trades) == 1
    assert (await make_client(http, sim, trade_types=()).trades_sold_increment_get(*window)).trades == []


async def test_malformed_records_pass_through_unchanged(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    store = sim.simulator.store
    when = T0 + timedelta(minutes=5)
    odd: list[dict[str, Any]] = [
        {"tid": 1001, "status": "SOMETHING_NEW", "payment": "1.00", "modified": to_top_time(when)},
        {"tid": 1002, "status": "WAIT_BUYER_PAY", "payment": "十块", "modified": to_top_time(when)},
        {"status": "WAIT_BUYER_PAY", "payment": "2.00", "modified": to_top_time(when)},  # no tid
        {"tid": "1004", "status": "TRADE_FINISHED", "modified": "yesterday"},  # unreadable modified
    ]
    for record in odd[:3]:
        store.add(record)
    store.add(odd[3], modified=when)
    source = TaobaoTradeSource(make_client(http, sim), page_size=10)
    page = await source.fetch_page(T0, T0 + timedelta(minutes=10), 1)
    assert sorted(json.loads(i.value).get("status") for i in page.items) == sorted(r["status"] for r in odd)
    keys = {i.key for i in page.items}
    assert keys == {b"1001", b"1002", None, b"1004"}
    by_key = {i.key: i for i in page.items}
    assert by_key[b"1001"].modified == when
    assert by_key[b"1004"].modified is None


# --- errors ---------------------------------------------------------------------------------


async def test_bad_signature_is_a_permanent_error(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim, app_secret="wrong-secret")
    with pytest.raises(PermanentError) as info:
        await client.trades_sold_increment_get(T0, T0 + timedelta(hours=1))
    assert info.value.code == "25" and not info.value.retryable
    assert sim.simulator.stats["top_error_25"] == 1


async def test_bad_session_and_app_key(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    with pytest.raises(PermanentError) as info:
        await make_client(http, sim, session_key="stale").trades_sold_increment_get(T0, T0 + timedelta(hours=1))
    assert info.value.code == "27"
    with pytest.raises(PermanentError) as info:
        await make_client(http, sim, app_key="999").trades_sold_increment_get(T0, T0 + timedelta(hours=1))
    assert info.value.code == "29"


async def test_window_longer_than_a_day_is_refused(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    with pytest.raises(PermanentError) as info:
        await client.trades_sold_increment_get(T0, T0 + timedelta(days=1, seconds=1))
    assert info.value.sub_code == "isv.invalid-parameter"
    await client.trades_sold_increment_get(T0, T0 + timedelta(days=1))  # exactly one day is fine


async def test_page_size_limits(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    with pytest.raises(ValueError, match="page_size"):
        await client.trades_sold_increment_get(T0, T0 + timedelta(hours=1), 1, 101)
    form = client.signed_params("taobao.trades.sold.increment.get", {"page_size": 101})
    async with http.post(sim.url, data=form) as resp:
        body = await resp.json()
    assert body["error_response"]["code"] in (40, 41)


async def test_rate_limit_is_retryable_and_retried(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(rate_limit_every=2, ban_seconds=3)
    client = make_client(http, sim)
    window = (T0, T0 + timedelta(hours=1))
    await client.trades_sold_increment_get(*window)  # call 1: fine
    with pytest.raises(RateLimited) as info:
        await client.trades_sold_increment_get(*window)  # call 2: App Call Limited
    assert info.value.code == "7" and info.value.retry_after == 3.0 and info.value.retryable
    sleep = FakeSleep()
    await client.trades_sold_increment_get(*window)  # call 3
    page = await retry(  # call 4 is limited, call 5 succeeds
        lambda: client.trades_sold_increment_get(*window),
        backoff=Backoff((0.01, 0.01), rng=random.Random(0)),
        sleep=sleep,
    )
    assert page.has_next is False
    assert sleep.calls == [3.0]  # waited for the ban, not the (shorter) schedule
    assert sim.simulator.stats["rate_limited"] == 2


async def test_http_500_is_transient(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError) as info:
        await make_client(http, sim).trades_sold_increment_get(T0, T0 + timedelta(hours=1))
    assert info.value.http_status == 500 and info.value.retryable


async def test_timeout_is_transient(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(slow_every=1, slow_seconds=1.0)
    with pytest.raises(TransientError, match="Timeout"):
        await make_client(http, sim, timeout=0.2).trades_sold_increment_get(T0, T0 + timedelta(hours=1))


async def test_connection_refused_is_transient(http: aiohttp.ClientSession) -> None:
    simulator = TaobaoSimulator(app_key=APP_KEY, app_secret=SECRET, session_key=SESSION)
    running = await serve(simulator, "127.0.0.1", 0)
    await running.close()  # the port is now closed
    with pytest.raises(TransientError):
        await make_client(http, running).trades_sold_increment_get(T0, T0 + timedelta(hours=1))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": 7, "msg": "App Call Limited", "sub_code": "accesscontrol.limited-by-app-access-count"}, RateLimited),
        ({"code": 15, "msg": "Remote service error", "sub_code": "isv.trade-service-rejection"}, RateLimited),
        ({"code": 15, "msg": "Remote service error", "sub_code": "isp.top-remote-connection-timeout"}, TransientError),
        ({"code": 10, "msg": "Service Currently Unavailable"}, TransientError),
        ({"code": 15, "msg": "Remote service error"}, TransientError),
        ({"code": 25, "msg": "Invalid signature"}, PermanentError),
        ({"code": 27, "msg": "Invalid session"}, PermanentError),
        ({"code": 15, "msg": "Remote service error", "sub_code": "isv.invalid-parameter"}, PermanentError),
    ],
)
def test_classify_error(error: dict[str, Any], kind: type) -> None:
    assert type(classify_error(error)) is kind


def test_ban_seconds_are_parsed() -> None:
    err = classify_error({"code": 7, "msg": "App Call Limited", "sub_msg": "This ban will last for 71 more seconds"})
    assert isinstance(err, RateLimited) and err.retry_after == 71.0


# --- slicing the exact bytes ----------------------------------------------------------------


def test_array_items_keeps_exact_text() -> None:
    text = (
        '{ "a" : {"x":[1,2]}, "r": {"has_next":true,\n "trades" : { "trade" : [ '
        '{"tid":1,"s":"]},\\"[{"} ,\n{"tid":2, "n":"张**", "e":"\\u5f20"} ] } } }'
    )
    items = array_items(text, ("r", "trades", "trade"))
    assert [raw for raw, _ in items] == ['{"tid":1,"s":"]},\\"[{"}', '{"tid":2, "n":"张**", "e":"\\u5f20"}']
    assert items[1][1] == {"tid": 2, "n": "张**", "e": "张"}
    assert array_items(text, ("r", "missing", "trade")) == []
    assert array_items('{"r":{"trades":{"trade":[]}}}', ("r", "trades", "trade")) == []
