"""KuaishouClient against the in-process open API simulator over real HTTP (ephemeral port)."""

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
from connectors.kuaishou.client import NO_MORE, KuaishouClient, classify_error, from_millis, order_updated, to_millis
from connectors.kuaishou.simulator import FaultConfig, KuaishouSimulator, RunningSimulator, generate_orders, serve
from connectors.kuaishou.source import KS_MAX_WINDOW

APP_KEY, SECRET, TOKEN = "ks-key", "ks-secret", "ks-token"


def t0() -> datetime:
    """Kuaishou only searches the last 90 days: tests use recent times."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(KuaishouSimulator(app_key=APP_KEY, sign_secret=SECRET, access_token=TOKEN), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: Any) -> KuaishouClient:
    args: dict[str, Any] = {"base_url": sim.url, "app_key": APP_KEY, "sign_secret": SECRET, "access_token": TOKEN}
    args.update(kw)
    return KuaishouClient(http, **args)


def test_millis() -> None:
    moment = datetime(2026, 11, 11, 0, 0, 0, 123000, tzinfo=UTC)
    assert to_millis(moment) == 1794355200123 and from_millis(1794355200123) == moment
    assert order_updated({"orderBaseInfo": {"updateTime": 1794355200123}}) == moment
    assert order_updated({"orderBaseInfo": {"updateTime": "soon"}}) is None


@pytest.mark.parametrize("method", ["HMAC_SHA256", "MD5"])
async def test_cursor_pages_hold_exact_bytes_newest_first(
    sim: RunningSimulator, http: aiohttp.ClientSession, method: str
) -> None:
    start = t0()
    store = sim.simulator.store
    store.add_many(generate_orders(230, seed=1, start=start, end=start + timedelta(hours=2)))
    client = make_client(http, sim, sign_method=method)
    pages = []
    cursor = ""
    while True:
        page = await client.cursor_list(start, start + timedelta(hours=2), cursor, 100)
        pages.append(page)
        if not page.has_next:
            break
        cursor = page.cursor
    assert [len(p.orders) for p in pages] == [100, 100, 30] and pages[-1].cursor == NO_MORE
    assert pages[0].cursor.count("_") == 1  # <updateTime>_<oid>: a keyset position
    raw = store.raw_by_key()
    seen = {}
    for page in pages:
        for order, value in zip(page.orders, page.raw, strict=True):
            oid = str(order["orderBaseInfo"]["oid"])
            assert value == raw[oid] and json.loads(value) == order
            seen[oid] = order
    assert set(seen) == set(raw)
    updated = [o["orderBaseInfo"]["updateTime"] for p in pages for o in p.orders]
    assert updated == sorted(updated, reverse=True)
    with pytest.raises(ValueError, match="no more"):
        await client.cursor_list(start, start + timedelta(hours=2), NO_MORE)


async def test_begin_is_inclusive_end_exclusive(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    start = t0()
    order = generate_orders(1, seed=2, start=start, end=start + timedelta(milliseconds=1))[0]
    sim.simulator.store.add(order)
    client = make_client(http, sim)
    ms = timedelta(milliseconds=1)
    assert len((await client.cursor_list(start, start + timedelta(minutes=1))).orders) == 1
    assert (await client.cursor_list(start - timedelta(minutes=1), start)).orders == []  # the engine learns it
    assert len((await client.cursor_list(start - timedelta(minutes=1), start + ms)).orders) == 1


async def test_window_and_history_limits(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    start = t0() - timedelta(days=10)
    await client.cursor_list(start, start + KS_MAX_WINDOW)  # exactly 7 days is fine
    with pytest.raises(PermanentError) as too_long:
        await client.cursor_list(start, start + KS_MAX_WINDOW + timedelta(milliseconds=1))
    assert too_long.value.code == "300004"
    old = datetime.now(UTC) - timedelta(days=91)
    with pytest.raises(PermanentError) as too_old:
        await client.cursor_list(old, old + timedelta(hours=1))
    assert too_old.value.code == "300005"
    with pytest.raises(PermanentError) as backwards:
        await client.cursor_list(start, start)
    assert backwards.value.code == "300003"
    with pytest.raises(ValueError, match="page_size"):
        await client.cursor_list(start, start + timedelta(hours=1), "", 101)


@pytest.mark.parametrize(
    ("kw", "code"),
    [({"sign_secret": "wrong"}, "28"), ({"access_token": "stale"}, "24"), ({"app_key": "other"}, "22")],
)
async def test_credential_errors_are_permanent(
    sim: RunningSimulator, http: aiohttp.ClientSession, kw: dict[str, Any], code: str
) -> None:
    start = t0()
    with pytest.raises(PermanentError) as info:
        await make_client(http, sim, **kw).cursor_list(start, start + timedelta(hours=1))
    assert info.value.code == code and not info.value.retryable


async def test_flow_control_is_retried_after_backoff(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(rate_limit_every=2)
    client = make_client(http, sim)
    window = (t0(), t0() + timedelta(hours=1))
    await client.cursor_list(*window)
    with pytest.raises(RateLimited, match="Exceed qps limit") as info:
        await client.cursor_list(*window)
    assert info.value.code == "802000"
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    await client.cursor_list(*window)
    page = await retry(lambda: client.cursor_list(*window), backoff=Backoff((2.0,), rng=random.Random(2)), sleep=sleep)
    assert page.cursor == NO_MORE and len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0


async def test_http_failures(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    window = (t0(), t0() + timedelta(hours=1))
    sim.simulator.faults = FaultConfig(http_429_every=1)
    with pytest.raises(RateLimited):
        await make_client(http, sim).cursor_list(*window)
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError):
        await make_client(http, sim).cursor_list(*window)
    sim.simulator.faults = FaultConfig(slow_every=1, slow_seconds=1.0)
    with pytest.raises(TransientError, match="Timeout"):
        await make_client(http, sim, timeout=0.2).cursor_list(*window)


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"result": 802000, "error_msg": "Exceed qps limit, KEY [apiId:x;appkey:y], MAX_QPS [300.0]"}, RateLimited),
        ({"result": 1017, "error_msg": "[1017] exceed quota limit,[apiId:x;primaryUserId:1]"}, RateLimited),
        ({"result": 999, "errorMsg": "Exceed quota limit, KEY [appkey:ks1]"}, RateLimited),
        ({"result": 2, "error_msg": "系统繁忙，请稍后重试"}, TransientError),
        ({"result": 28, "error_msg": "验签失败"}, PermanentError),
        ({"result": 2001, "errorMsg": "endTime无效", "msg": "业务处理失败", "subCode": "2001"}, PermanentError),
        ({"result": 300004, "error_msg": "SEARCH TIME RANGE EXPAND 7 DAYS"}, PermanentError),
    ],
)
def test_classify_error(doc: dict[str, Any], kind: type) -> None:
    assert type(classify_error(doc)) is kind
