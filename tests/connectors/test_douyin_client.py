"""抖店 client and page source against the in-process simulator (no broker), and every
simulated record through the normaliser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from connectors.douyin.client import DouyinClient
from connectors.douyin.push import order_messages
from connectors.douyin.simulator import DouyinSimulator, FaultConfig, RunningSimulator, generate_histories, serve
from connectors.douyin.source import DouyinOrderSource
from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.webhook import BadRequest
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record

END = datetime.now(UTC).replace(microsecond=0)
START = END - timedelta(hours=6)
N = 300


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    simulator = DouyinSimulator.from_settings(Settings())
    simulator.load(generate_histories(N, seed=17, start=START, end=END))
    running = await serve(simulator)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: str) -> DouyinClient:
    s = Settings()
    return DouyinClient(
        http,
        base_url=sim.url,
        app_key=s.douyin_app_key,
        app_secret=kw.get("secret", s.douyin_app_secret.get_secret_value()),
        access_token=kw.get("token", s.douyin_access_token.get_secret_value()),
        sign_method=kw.get("sign_method", "hmac-sha256"),
        timeout=5.0,
    )


@pytest.mark.parametrize("sign_method", ["hmac-sha256", "md5"])
async def test_search_list_pages_newest_first_byte_identical(
    http: aiohttp.ClientSession, sim: RunningSimulator, sign_method: str
) -> None:
    source = DouyinOrderSource(client(http, sim, sign_method=sign_method), page_size=100)
    seen: dict[bytes, bytes] = {}
    previous = None
    for page_no in range(1, 10):
        page = await source.fetch_page(START, END, page_no)
        for item in page.items:
            assert item.key is not None and item.modified is not None
            assert previous is None or item.modified <= previous  # newest first
            previous = item.modified
            seen[item.key] = item.value
        if not page.has_next:
            break
    assert page_no == 3
    assert {k.decode(): v for k, v in seen.items()} == sim.simulator.store.raw_by_key()


async def test_order_detail_returns_the_exact_shop_order(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    order_id, raw = next(iter(sim.simulator.store.raw_by_key().items()))
    got, parsed = await client(http, sim).order_detail(order_id)
    assert got == raw and parsed["order_id"] == order_id
    with pytest.raises(PermanentError, match="订单不存在"):
        await client(http, sim).order_detail("1")


async def test_errors_are_classified(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    with pytest.raises(PermanentError, match="签名") as bad:
        await client(http, sim, secret="other").search_list(START, END)
    assert bad.value.code == "40004"
    with pytest.raises(PermanentError, match="access_token"):
        await client(http, sim, token="expired").search_list(START, END)
    sim.simulator.faults = FaultConfig(rate_limit_every=1)
    with pytest.raises(RateLimited):
        await client(http, sim).search_list(START, END)
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError, match="HTTP 500"):
        await client(http, sim).search_list(START, END)


def test_push_messages_name_orders() -> None:
    simulator = DouyinSimulator.from_settings(Settings())
    simulator.load(generate_histories(20, seed=1, start=START, end=END))
    for push in simulator.pushes():
        (delivery,) = order_messages(json.loads(push.body))
        assert delivery.event_id == push.event_id and delivery.ref == push.order_id and delivery.value is None
    assert order_messages([{"tag": "200", "msg_id": "x", "data": "{}"}]) == []  # after-sales: not an order fact
    with pytest.raises(BadRequest):
        order_messages({"tag": "100"})
    with pytest.raises(BadRequest):
        order_messages([{"tag": "100", "msg_id": "x", "data": "{}"}])


def test_every_simulated_record_is_accepted_by_the_normaliser() -> None:
    histories = generate_histories(N, seed=23, start=START, end=END)
    bodies = [json.dumps(v.order, ensure_ascii=False).encode() for h in histories for v in h.versions]
    assert len(bodies) > N
    for body in bodies:
        out = normalise_record(raw_record("douyin", body), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
        assert out.rejection is None, (out.rejection, body[:200])
