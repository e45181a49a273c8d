"""OmsClient against the in-process 旺店通 simulator over real HTTP on 127.0.0.1 (ephemeral
port): pages, exact bytes, the 60-minute span, and how every failure maps to an error kind."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.backoff import Backoff, retry
from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.oms.client import OmsClient, classify_error, from_wdt_time, to_wdt_time
from connectors.oms.simulator import (
    CONCURRENCY_LIMIT_MESSAGE,
    RATE_LIMIT_MESSAGE,
    FaultConfig,
    OmsSimulator,
    RunningSimulator,
    generate_trades,
    serve,
)
from connectors.oms.source import WDT_MAX_WINDOW, OmsTradeSource
from connectors.pull import PullConfig
from ordertwin.settings import Settings
from tests.live import free_port

SID, KEY, APP_SECRET = "wdt-sid", "wdt-key", "wdt-secret:wdt-salt"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(OmsSimulator(sid=SID, app_key=KEY, app_secret=APP_SECRET), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, url: str, **kw: Any) -> OmsClient:
    args: dict[str, Any] = {"base_url": url, "sid": SID, "app_key": KEY, "app_secret": APP_SECRET}
    args.update(kw)
    return OmsClient(http, **args)


def test_wdt_times_are_beijing_time() -> None:
    assert to_wdt_time(T0) == "2026-11-11 08:00:00"
    assert from_wdt_time("2026-11-11 08:00:00") == T0
    with pytest.raises(ValueError, match="naive"):
        to_wdt_time(datetime(2026, 11, 11))


async def test_pages_count_from_zero_and_return_exact_bytes_newest_first(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    store = sim.simulator.store
    store.add_many(generate_trades(230, seed=1, start=T0, end=T0 + timedelta(minutes=50)))
    client = make_client(http, sim.url)
    pages = [await client.trade_query(T0, T0 + timedelta(minutes=50), n, 100) for n in (0, 1, 2)]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [len(p.orders) for p in pages] == [100, 100, 30] and {p.total for p in pages} == {230}
    raw = store.raw_by_key()
    seen = {}
    for page in pages:
        for trade, value in zip(page.orders, page.raw, strict=True):
            assert value == raw[trade["trade_no"]] and json.loads(value) == trade
            seen[trade["trade_no"]] = trade
    assert set(seen) == set(raw)
    modified = [from_wdt_time(t["modified"]) for p in pages for t in p.orders]
    assert modified == sorted(modified, reverse=True)  # order_type=1: 修改时间降序


async def test_bounds_inclusive_by_default_and_exclusive_on_request(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    trade = generate_trades(1, seed=3, start=T0, end=T0 + timedelta(seconds=1))[0]
    sim.simulator.store.add(trade)
    client = make_client(http, sim.url)
    assert len((await client.trade_query(T0, T0 + timedelta(minutes=1))).orders) == 1
    assert len((await client.trade_query(T0 - timedelta(minutes=1), T0)).orders) == 1
    assert (await client.trade_query(T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))).orders == []
    sim.simulator.start_inclusive = sim.simulator.end_inclusive = False
    assert (await client.trade_query(T0, T0 + timedelta(minutes=1))).orders == []
    assert (await client.trade_query(T0 - timedelta(minutes=1), T0)).orders == []
    assert len((await client.trade_query(T0 - timedelta(seconds=1), T0 + timedelta(seconds=1))).orders) == 1


async def test_span_is_capped_at_sixty_minutes(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim.url)
    await client.trade_query(T0, T0 + WDT_MAX_WINDOW)  # exactly 60 minutes: accepted
    with pytest.raises(PermanentError, match="查询时间过宽") as caught:
        await client.trade_query(T0, T0 + WDT_MAX_WINDOW + timedelta(seconds=1))
    assert caught.value.code == "100"
    with pytest.raises(PermanentError, match="结束时间"):
        await client.trade_query(T0, T0 - timedelta(seconds=1))
    # The engine's windows stay inside it, one second of slack at each end included.
    config = PullConfig.from_settings(Settings(pull_window_s=7200.0), OmsTradeSource(client))
    assert config.max_window == WDT_MAX_WINDOW - timedelta(seconds=2)


async def test_arguments_are_checked_before_any_call(http: aiohttp.ClientSession) -> None:
    client = make_client(http, "http://127.0.0.1:1/openapi")
    with pytest.raises(ValueError, match="page_size"):
        await client.trade_query(T0, T0, 0, 201)
    with pytest.raises(ValueError, match="page_no"):
        await client.trade_query(T0, T0, -1, 10)
    with pytest.raises(ValueError, match="secret:salt"):
        make_client(http, "http://127.0.0.1:1/openapi", app_secret="no-salt")


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (100, RATE_LIMIT_MESSAGE, RateLimited),
        (100, "超过每分钟最大调用频率限制，请稍后重试", RateLimited),  # full-width comma, as the SDKs spell it
        (100, CONCURRENCY_LIMIT_MESSAGE, RateLimited),
        (100, "系统繁忙,请稍后重试", TransientError),
        (500, "服务调用超时", TransientError),
        (100, "您的查询时间过宽,查询时间不能大于60分钟", PermanentError),
        (100, "签名错误", PermanentError),
        (100, "卖家账号sid不存在", PermanentError),
        ("2", "", PermanentError),
    ],
)
def test_error_classification_by_message(status: Any, message: str, kind: type[Exception]) -> None:
    error = classify_error(status, message)
    assert type(error) is kind
    assert error.code == str(status) and error.source == "oms"


async def test_platform_faults_map_to_error_kinds(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim.url)
    end = T0 + timedelta(minutes=5)
    sim.simulator.faults = FaultConfig(rate_limit_every=1)
    with pytest.raises(RateLimited, match="调用频率") as limited:
        await client.trade_query(T0, end)
    assert limited.value.code == "100" and limited.value.http_status == 200
    sim.simulator.faults = FaultConfig(concurrency_limit_every=1)
    with pytest.raises(RateLimited, match="并发次数"):
        await client.trade_query(T0, end)
    sim.simulator.faults = FaultConfig(http_429_every=1)
    with pytest.raises(RateLimited, match="HTTP 429"):
        await client.trade_query(T0, end)
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError, match="HTTP 500"):
        await client.trade_query(T0, end)
    sim.simulator.faults = FaultConfig(slow_every=1, slow_seconds=1.0)
    with pytest.raises(TransientError, match="Timeout"):
        await make_client(http, sim.url, timeout=0.2).trade_query(T0, end)
    assert {k: sim.simulator.stats[k] for k in ("rate_limited", "concurrency_limited", "http_429", "http_500")} == {
        "rate_limited": 1,
        "concurrency_limited": 1,
        "http_429": 1,
        "http_500": 1,
    }


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"app_secret": "other-secret:wdt-salt"}, "签名错误"),
        ({"app_secret": "wdt-secret:other-salt"}, "salt"),
        ({"sid": "someone-else"}, "sid"),
        ({"app_key": "other-key"}, "key"),
        ({"clock": lambda: datetime.now(UTC) - timedelta(minutes=3)}, "120"),
    ],
)
async def test_credential_and_clock_errors_are_permanent(
    sim: RunningSimulator, http: aiohttp.ClientSession, kw: dict[str, Any], match: str
) -> None:
    with pytest.raises(PermanentError, match=match):
        await make_client(http, sim.url, **kw).trade_query(T0, T0 + timedelta(minutes=1))
    assert sim.simulator.stats["ok"] == 0


async def test_clock_skew_within_two_minutes_is_accepted(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim.url, clock=lambda: datetime.now(UTC) + timedelta(seconds=100))
    assert (await client.trade_query(T0, T0 + timedelta(minutes=1))).orders == []


async def test_rate_limit_is_retried_then_succeeds(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add_many(generate_trades(5, seed=4, start=T0, end=T0 + timedelta(minutes=5)))
    sim.simulator.faults = FaultConfig(rate_limit_every=2, http_429_every=3)
    client = make_client(http, sim.url)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    await client.trade_query(T0, T0 + timedelta(minutes=5))  # call 1: fine
    page = await retry(
        lambda: client.trade_query(T0, T0 + timedelta(minutes=5)),
        backoff=Backoff((1.0, 2.0, 4.0), rng=random.Random(0)),
        sleep=sleep,
    )  # calls 2 and 4: rate limited, call 3: HTTP 429, call 5: fine
    assert len(page.orders) == 5 and len(waits) == 3
    assert sim.simulator.stats["rate_limited"] == 2 and sim.simulator.stats["http_429"] == 1


async def test_unreachable_gateway_is_transient(http: aiohttp.ClientSession) -> None:
    with pytest.raises(TransientError, match="ClientConnectorError"):
        await make_client(http, f"http://127.0.0.1:{free_port()}/openapi").trade_query(T0, T0)


# --- answers the simulator never gives: a hand-written gateway -----------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _gateway(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/openapi", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/openapi"


def _text(text: str, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=status, body=text.encode("utf-8"), content_type="application/json")

    return handler


ODD = (
    '{ "status" : "0",\n "data" : { "total_count" : 2 , "order" : [\n'
    '  {"trade_no":"JY1","modified":"2026-11-11 08:00:00","amount":1.50,"name":"\\u4fdd\\u6e29\\u676f"} ,\n'
    '  {"trade_no" : "JY2", "modified":"2026-11-11 08:00:01", "detail_list":[{"num":"1.0000"}]}\n] } }'
)


async def test_records_are_sliced_byte_for_byte_from_any_formatting(http: aiohttp.ClientSession) -> None:
    runner, url = await _gateway(_text(ODD))
    try:
        page = await make_client(http, url).trade_query(T0, T0 + timedelta(minutes=1), 0, 2)
    finally:
        await runner.cleanup()
    assert page.raw == [
        b'{"trade_no":"JY1","modified":"2026-11-11 08:00:00","amount":1.50,"name":"\\u4fdd\\u6e29\\u676f"}',
        b'{"trade_no" : "JY2", "modified":"2026-11-11 08:00:01", "detail_list":[{"num":"1.0000"}]}',
    ]
    assert page.orders[0]["name"] == "保温杯" and page.total == 2 and page.has_next is False


@pytest.mark.parametrize(
    ("text", "status", "kind", "match"),
    [
        ('{"status":0,"data":{"order":[{"trade_no":"x"}', 200, TransientError, "not JSON"),
        ("<html>bad gateway</html>", 502, TransientError, "HTTP 502"),
        ("not found", 404, PermanentError, "HTTP 404"),
        ("[1,2]", 200, PermanentError, "not a JSON object"),
        ('{"status":0,"data":"x"}', 200, PermanentError, "data is not an object"),
        ('{"status":0,"data":{"order":[],"total_count":-1}}', 200, PermanentError, "total_count"),
        ('{"message":"no status at all"}', 200, PermanentError, "no status"),
    ],
)
async def test_malformed_answers(
    http: aiohttp.ClientSession, text: str, status: int, kind: type[Exception], match: str
) -> None:
    runner, url = await _gateway(_text(text, status))
    try:
        with pytest.raises(kind, match=match):
            await make_client(http, url).trade_query(T0, T0 + timedelta(minutes=1))
    finally:
        await runner.cleanup()


async def test_without_total_count_only_a_full_page_has_a_next(http: aiohttp.ClientSession) -> None:
    one = '{"trade_no":"JY1","modified":"2026-11-11 08:00:00"}'
    runner, url = await _gateway(_text('{"status":0,"data":{"order":[' + one + "," + one + "]}}"))
    try:
        client = make_client(http, url)
        assert (await client.trade_query(T0, T0, 0, 2)).has_next is True
        assert (await client.trade_query(T0, T0, 0, 3)).has_next is False
    finally:
        await runner.cleanup()
    runner, url = await _gateway(_text('{"status":0,"data":null}'))
    try:
        empty = await make_client(http, url).trade_query(T0, T0)
    finally:
        await runner.cleanup()
    assert empty.orders == [] and empty.has_next is False
