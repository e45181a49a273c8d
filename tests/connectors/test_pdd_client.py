"""PddClient against the in-process PDD gateway over real HTTP on 127.0.0.1 (ephemeral port)."""

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
from connectors.pdd.client import PddClient, classify_error, from_pdd_time, order_updated, unix_seconds
from connectors.pdd.simulator import FaultConfig, PddSimulator, RunningSimulator, generate_orders, serve
from connectors.pdd.source import PDD_MAX_WINDOW

CLIENT_ID, SECRET, TOKEN = "pdd-id", "pdd-secret", "pdd-token"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
W = (T0, T0 + timedelta(minutes=30))


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(PddSimulator(client_id=CLIENT_ID, client_secret=SECRET, access_token=TOKEN), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: Any) -> PddClient:
    args: dict[str, Any] = {"base_url": sim.url, "client_id": CLIENT_ID, "client_secret": SECRET, "access_token": TOKEN}
    args.update(kw)
    return PddClient(http, **args)


def test_times() -> None:
    assert unix_seconds(T0) == 1794355200
    assert from_pdd_time("2026-11-11 08:00:00") == T0
    assert order_updated({"updated_at": "2026-11-11 08:00:00"}) == T0
    assert order_updated({"updated_at": "yesterday"}) is None


async def test_pages_hold_exact_bytes_oldest_first_with_total(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    store = sim.simulator.store
    store.add_many(generate_orders(230, seed=1, start=W[0], end=W[1]))
    client = make_client(http, sim)
    pages = [await client.increment_get(*W, page, 100) for page in (1, 2, 3)]
    assert [len(p.orders) for p in pages] == [100, 100, 30] and {p.total for p in pages} == {230}
    raw = store.raw_by_key()
    seen = {}
    for page in pages:
        for order, value in zip(page.orders, page.raw, strict=True):
            assert value == raw[order["order_sn"]] and json.loads(value) == order
            seen[order["order_sn"]] = order
    assert set(seen) == set(raw)
    updated = [from_pdd_time(o["updated_at"]) for p in pages for o in p.orders]
    assert updated == sorted(updated)  # oldest first: why PDD says "page backwards"


async def test_bounds_are_inclusive_and_filters_are_all(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    orders = generate_orders(40, seed=2, start=T0, end=T0 + timedelta(seconds=1))
    for i, order in enumerate(orders):
        order["is_lucky_flag"] = 2 if i % 2 else 1  # lottery orders too
    sim.simulator.store.add_many(orders)
    client = make_client(http, sim)
    assert (await client.increment_get(T0, T0 + timedelta(minutes=1))).total == 40
    assert (await client.increment_get(T0 - timedelta(minutes=1), T0)).total == 40
    assert (await client.increment_get(T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))).total == 0


async def test_window_longer_than_30_minutes_is_refused(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    await client.increment_get(T0, T0 + PDD_MAX_WINDOW)  # exactly 30 minutes is fine
    with pytest.raises(PermanentError, match="30分钟") as info:
        await client.increment_get(T0, T0 + PDD_MAX_WINDOW + timedelta(seconds=1))
    assert info.value.code == "10000"


async def test_page_size_limits(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim)
    with pytest.raises(ValueError, match="page_size"):
        await client.increment_get(*W, 1, 101)
    with pytest.raises(PermanentError, match="page_size"):
        await client.call(
            "pdd.order.number.list.increment.get",
            {"start_updated_at": unix_seconds(W[0]), "end_updated_at": unix_seconds(W[1]), "is_lucky_flag": 0,
             "order_status": 5, "refund_status": 5, "page": 1, "page_size": 101},
        )  # fmt: skip


async def test_use_has_next_drops_total_count(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add_many(generate_orders(3, seed=3, start=W[0], end=W[1]))
    client = make_client(http, sim)
    base = {"start_updated_at": unix_seconds(W[0]), "end_updated_at": unix_seconds(W[1]), "is_lucky_flag": 0,
            "order_status": 5, "refund_status": 5, "page": 1, "page_size": 2}  # fmt: skip
    _, with_next = await client.call("pdd.order.number.list.increment.get", {**base, "use_has_next": True})
    body = with_next["order_sn_increment_get_response"]
    assert body["has_next"] is True and "total_count" not in body  # so the client never asks for it


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"client_secret": "wrong"}, "20004"),
        ({"access_token": "stale"}, "20032"),
        ({"client_id": "other"}, "10016"),
        ({"clock": lambda: datetime.now(UTC) - timedelta(minutes=11)}, "10001"),  # PDD allows 10 minutes
    ],
)
async def test_credentials_and_clock_errors_are_permanent(
    sim: RunningSimulator, http: aiohttp.ClientSession, kw: dict[str, Any], code: str
) -> None:
    with pytest.raises(PermanentError) as info:
        await make_client(http, sim, **kw).increment_get(*W)
    assert info.value.code == code and not info.value.retryable


async def test_rate_limit_is_retried_after_backoff(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(rate_limit_every=2)
    client = make_client(http, sim)
    await client.increment_get(*W)
    with pytest.raises(RateLimited) as info:
        await client.increment_get(*W)
    assert info.value.code == "70031" and info.value.retryable
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    await client.increment_get(*W)  # call 3
    page = await retry(lambda: client.increment_get(*W), backoff=Backoff((4.0,), rng=random.Random(1)), sleep=sleep)
    assert page.total == 0 and len(sleeps) == 1 and 2.0 <= sleeps[0] <= 4.0


async def test_server_side_failures_are_transient(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.faults = FaultConfig(internal_error_every=1)
    with pytest.raises(TransientError) as internal:
        await make_client(http, sim).increment_get(*W)
    assert internal.value.code == "50000"
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError):
        await make_client(http, sim).increment_get(*W)
    sim.simulator.faults = FaultConfig(http_429_every=1)
    with pytest.raises(RateLimited):
        await make_client(http, sim).increment_get(*W)
    sim.simulator.faults = FaultConfig(slow_every=1, slow_seconds=1.0)
    with pytest.raises(TransientError, match="Timeout"):
        await make_client(http, sim, timeout=0.2).increment_get(*W)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"error_code": 70031, "error_msg": "调用过于频繁，请调整调用频率"}, RateLimited),
        ({"error_code": 52101, "error_msg": "当前接口被限流，请稍后重试"}, RateLimited),
        ({"error_code": 50000, "error_msg": "系统内部错误"}, TransientError),
        ({"error_code": 52103, "error_msg": "服务暂时不可用，请稍后重试"}, TransientError),
        ({"error_code": 50001, "error_msg": "业务服务错误", "sub_msg": "服务繁忙"}, TransientError),
        ({"error_code": 50001, "error_msg": "业务服务错误", "sub_msg": "订单不存在"}, PermanentError),
        ({"error_code": 20004, "error_msg": "签名sign校验失败"}, PermanentError),
        ({"error_code": 10019, "error_msg": "access_token已过期"}, PermanentError),
        ({"error_code": 10000, "error_msg": "参数错误", "sub_code": "10000", "sub_msg": "时间跨度"}, PermanentError),
    ],
)
def test_classify_error(error: dict[str, Any], kind: type) -> None:
    assert type(classify_error(error)) is kind
