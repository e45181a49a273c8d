"""JdClient against the in-process JOS simulator over real HTTP on 127.0.0.1 (ephemeral port)."""

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
from connectors.jd.client import (
    METHOD_SEARCH,
    ORDER_STATES,
    JdClient,
    classify_api_result,
    classify_error,
    from_jos_time,
    response_key,
    to_jos_time,
)
from connectors.jd.simulator import FaultConfig, JdSimulator, RunningSimulator, generate_orders, one_month_after, serve
from connectors.jd.source import JOS_MAX_WINDOW, JdOrderSource
from connectors.pull import PullConfig
from ordertwin.settings import Settings

APP_KEY, SECRET, TOKEN = "jd-key", "jd-secret", "jd-token"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(JdSimulator(app_key=APP_KEY, app_secret=SECRET, access_token=TOKEN), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: Any) -> JdClient:
    args: dict[str, Any] = {"base_url": sim.url, "app_key": APP_KEY, "app_secret": SECRET, "access_token": TOKEN}
    args.update(kw)
    return JdClient(http, **args)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_jos_times_are_beijing_time() -> None:
    assert to_jos_time(T0) == "2026-11-11 08:00:00"
    assert from_jos_time("2026-11-11 08:00:00") == T0
    assert response_key("jingdong.pop.order.enSearch") == "jingdong_pop_order_enSearch_responce"
    with pytest.raises(ValueError, match="naive"):
        to_jos_time(datetime(2026, 11, 11))


async def test_pages_return_every_order_with_its_exact_bytes_newest_first(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    store = sim.simulator.store
    store.add_many(generate_orders(230, seed=1, start=T0, end=T0 + timedelta(hours=2)))
    client = make_client(http, sim)
    pages = [await client.order_search(T0, T0 + timedelta(hours=2), n, 100) for n in (1, 2, 3)]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [len(p.orders) for p in pages] == [100, 100, 30] and {p.total for p in pages} == {230}
    raw = store.raw_by_key()
    seen = {}
    for page in pages:
        for order, value in zip(page.orders, page.raw, strict=True):
            assert value == raw[order["orderId"]] and json.loads(value) == order
            seen[order["orderId"]] = order
    assert set(seen) == set(raw)
    modified = [from_jos_time(o["modified"]) for p in pages for o in p.orders]
    assert modified == sorted(modified, reverse=True)  # sortType=1, dateType=0


@pytest.mark.parametrize("method", ["jingdong.pop.order.enSearch", METHOD_SEARCH])
async def test_both_search_methods_answer_under_their_own_key(
    sim: RunningSimulator, http: aiohttp.ClientSession, method: str
) -> None:
    sim.simulator.store.add_many(generate_orders(3, seed=2, start=T0, end=T0 + timedelta(minutes=5)))
    page = await make_client(http, sim, method=method).order_search(T0, T0 + timedelta(minutes=5))
    assert len(page.orders) == 3 and page.has_next is False


async def test_bounds_are_inclusive_and_states_filter(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    order = generate_orders(1, seed=3, start=T0, end=T0 + timedelta(seconds=1))[0]
    order["orderState"] = "UN_KNOWN"
    sim.simulator.store.add(order)
    client = make_client(http, sim)
    assert "UN_KNOWN" in ORDER_STATES  # the default asks for every documented state
    assert len((await client.order_search(T0, T0 + timedelta(minutes=1))).orders) == 1
    assert len((await client.order_search(T0 - timedelta(minutes=1), T0)).orders) == 1
    assert (await client.order_search(T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))).orders == []
    narrow = make_client(http, sim, order_states=("FINISHED_L",))
    assert (await narrow.order_search(T0, T0 + timedelta(minutes=1))).orders == []


async def test_window_cap_is_one_calendar_month(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    await client.order_search(start, start + JOS_MAX_WINDOW)  # 28 days: accepted in February too
    with pytest.raises(PermanentError, match="1个月"):
        await client.order_search(start, start + timedelta(days=29))  # past 1 March
    assert sim.simulator.stats["api_error"] == 1


async def test_the_source_window_fits_every_month(http: aiohttp.ClientSession) -> None:
    start = datetime(2026, 1, 1, 13, 30, tzinfo=UTC)
    for day in range(0, 366, 3):
        moment = start + timedelta(days=day)
        assert moment + JOS_MAX_WINDOW <= one_month_after(moment)
    settings = Settings(pull_window_s=100 * 86400)  # asked for more than JOS allows: clamped
    source = JdOrderSource(JdClient.from_settings(http, settings))
    config = PullConfig.from_settings(settings, source)
    assert config.max_window == JOS_MAX_WINDOW - 2 * source.resolution


async def test_page_size_limits(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    with pytest.raises(ValueError, match="page_size"):
        await client.order_search(T0, T0 + timedelta(hours=1), 1, 101)
    _, doc = await client.call(
        client.method,
        {"start_date": "2026-11-11 08:00:00", "end_date": "2026-11-11 09:00:00", "order_state": "FINISHED_L",
         "optional_fields": "orderId", "page": "1", "page_size": "101"},
    )  # fmt: skip
    api_result = doc[response_key(client.method)]["searchorderinfo_result"]["apiResult"]
    assert api_result["success"] is False and "page_size" in api_result["englishErrCode"]
    assert isinstance(classify_api_result(api_result), PermanentError)


async def test_bad_signature_token_app_key_and_clock_are_permanent(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    window = (T0, T0 + timedelta(hours=1))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"app_secret": "wrong"}, "12"),
        ({"access_token": "stale"}, "19"),
        ({"app_key": "other"}, "17"),
        ({"clock": lambda: datetime.now(UTC) - timedelta(minutes=7)}, "8"),  # JOS allows 6 minutes
    ]
    for kw, code in cases:
        with pytest.raises(PermanentError) as info:
            await make_client(http, sim, **kw).order_search(*window)
        assert info.value.code == code and not info.value.retryable
    await make_client(http, sim, clock=lambda: datetime.now(UTC) - timedelta(minutes=5)).order_search(*window)


async def test_rate_limit_is_retryable_and_retried(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(rate_limit_every=2)
    client = make_client(http, sim)
    window = (T0, T0 + timedelta(hours=1))
    await client.order_search(*window)  # call 1
    with pytest.raises(RateLimited) as info:
        await client.order_search(*window)  # call 2: App Call Limited
    assert info.value.code == "2" and info.value.retryable
    sleep = FakeSleep()
    await client.order_search(*window)  # call 3
    page = await retry(  # call 4 limited, call 5 fine
        lambda: client.order_search(*window), backoff=Backoff((5.0, 5.0), rng=random.Random(0)), sleep=sleep
    )
    assert page.orders == [] and len(sleep.calls) == 1 and 2.5 <= sleep.calls[0] <= 5.0


async def test_http_429_500_timeout_and_refused_connections(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    window = (T0, T0 + timedelta(hours=1))
    sim.simulator.faults = FaultConfig(http_429_every=1)
    with pytest.raises(RateLimited) as limited:
        await make_client(http, sim).order_search(*window)
    assert limited.value.http_status == 429
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError) as failed:
        await make_client(http, sim).order_search(*window)
    assert failed.value.http_status == 500
    sim.simulator.faults = FaultConfig(slow_every=1, slow_seconds=1.0)
    with pytest.raises(TransientError, match="Timeout"):
        await make_client(http, sim, timeout=0.2).order_search(*window)
    closed = await serve(JdSimulator(app_key=APP_KEY, app_secret=SECRET, access_token=TOKEN), "127.0.0.1", 0)
    await closed.close()
    with pytest.raises(TransientError):
        await make_client(http, closed).order_search(*window)


async def test_duplicates_in_a_page_are_passed_on_as_sent(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add_many(generate_orders(5, seed=4, start=T0, end=T0 + timedelta(minutes=5)))
    sim.simulator.faults = FaultConfig(duplicate_every=1)
    page = await make_client(http, sim).order_search(T0, T0 + timedelta(minutes=5))
    assert len(page.orders) == 6 and page.raw[0] == page.raw[-1]  # the engine skips the repeat


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": "2", "zh_desc": "限制时间内调用失败次数", "en_desc": "App Call Limited"}, RateLimited),
        ({"code": "99", "zh_desc": "调用频率超过限制", "en_desc": ""}, RateLimited),
        ({"code": "66", "zh_desc": "服务不可用", "en_desc": "service unavailable"}, TransientError),
        ({"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}, PermanentError),
        ({"code": "19", "zh_desc": "无效access_token", "en_desc": "Invalid access_token"}, PermanentError),
        ({"code": "8", "zh_desc": "非法的时间戳参数", "en_desc": "Invalid Timestamp"}, PermanentError),
    ],
)
def test_classify_error(error: dict[str, Any], kind: type) -> None:
    assert type(classify_error(error)) is kind


def test_classify_api_result() -> None:
    busy = {"success": False, "chineseErrCode": "系统繁忙,请稍后再试", "englishErrCode": "", "numberCode": 500}
    assert isinstance(classify_api_result(busy), TransientError)
    bad = {"success": False, "chineseErrCode": "开始时间和结束时间，不得相差超过1个月", "numberCode": 10103}
    assert isinstance(classify_api_result(bad), PermanentError)
