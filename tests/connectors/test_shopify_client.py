"""Shopify client and page source against the in-process simulator (no broker), and every
simulated record through the normaliser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.shopify.client import ShopifyClient, parse_link, parse_shopify_time
from connectors.shopify.simulator import FaultConfig, RunningSimulator, ShopifySimulator, generate_histories, serve
from connectors.shopify.source import ShopifyOrderSource
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record

END = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=6)
N = 300


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    simulator = ShopifySimulator.from_settings(Settings(), faults=FaultConfig(bucket_size=0))
    simulator.load(generate_histories(N, seed=11, start=START, end=END))
    running = await serve(simulator)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: str) -> ShopifyClient:
    s = Settings()
    return ShopifyClient(
        http,
        base_url=sim.url,
        api_version=s.shopify_api_version,
        access_token=kw.get("token", s.shopify_access_token.get_secret_value()),
        timeout=float(kw.get("timeout", "5")),
    )


async def test_pages_through_every_order_of_a_window_byte_identical(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    source = ShopifyOrderSource(client(http, sim), page_size=40)
    seen: dict[bytes, bytes] = {}
    page_no = 1
    while True:
        page = await source.fetch_page(START - timedelta(seconds=1), END, page_no)
        for item in page.items:
            assert item.key is not None and item.key not in seen
            assert item.modified is not None and START <= item.modified <= END
            seen[item.key] = item.value
        if not page.has_next:
            break
        page_no += 1
    assert page_no == 8  # 300 orders / 40 per page
    assert {k.decode(): v for k, v in seen.items()} == sim.simulator.store.raw_by_key()
    cancelled = [v for v in seen.values() if json.loads(v)["cancelled_at"]]
    assert cancelled  # status=any: the default (open) would have hidden these


async def test_window_bounds_are_inclusive(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    some = json.loads(next(iter(sim.simulator.store.raw_by_key().values())))
    at = parse_shopify_time(some["updated_at"])
    page = await client(http, sim).get_orders(at, at, limit=250)
    assert some["id"] in [o["id"] for o in page.orders]


async def test_errors_are_classified(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    with pytest.raises(PermanentError, match="401"):
        await client(http, sim, token="wrong").get_orders(START, END)
    sim.simulator.faults = FaultConfig(rate_limit_every=1, retry_after_s=2.5, bucket_size=0)
    with pytest.raises(RateLimited) as limited:
        await client(http, sim).get_orders(START, END)
    assert limited.value.retry_after == 2.5 and limited.value.http_status == 429
    sim.simulator.faults = FaultConfig(error_500_every=1, bucket_size=0)
    with pytest.raises(TransientError, match="HTTP 500"):
        await client(http, sim).get_orders(START, END)
    sim.simulator.faults = FaultConfig(slow_every=1, slow_seconds=1.0, bucket_size=0)
    with pytest.raises(TransientError, match="Timeout"):
        await client(http, sim, timeout="0.3").get_orders(START, END)


async def test_leaky_bucket_throttles_bursts(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    sim.simulator.faults = FaultConfig(bucket_size=3, leak_per_s=0.001)
    c = client(http, sim)
    for _ in range(3):
        page = await c.get_orders(START, END, limit=1)
    assert page.call_limit == "3/3"
    with pytest.raises(RateLimited):
        await c.get_orders(START, END, limit=1)


async def test_page_info_requests_take_only_limit(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    first = await client(http, sim).get_orders(START, END, limit=10)
    assert first.next_page_info
    url = f"{sim.url}/admin/api/2025-01/orders.json"
    headers = {"X-Shopify-Access-Token": Settings().shopify_access_token.get_secret_value()}
    params = {"limit": "10", "page_info": first.next_page_info, "status": "any"}
    async with http.get(url, params=params, headers=headers) as resp:
        assert resp.status == 400


def test_link_header_parsing() -> None:
    header = (
        '<https://s.myshopify.com/admin/api/2025-01/orders.json?limit=50&page_info=abc%3D>; rel="previous", '
        '<https://s.myshopify.com/admin/api/2025-01/orders.json?limit=50&page_info=def>; rel="next"'
    )
    links = parse_link(header)
    assert set(links) == {"previous", "next"} and links["next"].endswith("page_info=def")


def test_triggered_at_with_nanoseconds_parses() -> None:
    assert parse_shopify_time("2023-03-29T18:00:27.877041743Z") == datetime(2023, 3, 29, 18, 0, 27, 877041, UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_shopify_time("2023-03-29T18:00:27")


def test_every_simulated_record_is_accepted_by_the_normaliser() -> None:
    simulator = ShopifySimulator.from_settings(Settings())
    simulator.load(generate_histories(N, seed=5, start=START, end=END))
    bodies = [p.body for p in simulator.pushes(seed=5)] + list(simulator.store.raw_by_key().values())
    assert len(bodies) > 2 * N
    for body in bodies:
        out = normalise_record(raw_record("shopify", body), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
        assert out.rejection is None, (out.rejection, body[:200])
