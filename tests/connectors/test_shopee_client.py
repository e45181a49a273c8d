"""Shopee client and page source against the in-process simulator (no broker), and every
simulated record (order details and pushes) through the normaliser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.shopee.client import ShopeeClient
from connectors.shopee.simulator import FaultConfig, RunningSimulator, ShopeeSimulator, generate_histories, serve
from connectors.shopee.source import ShopeeOrderSource
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record

END = datetime.now(UTC).replace(microsecond=0)
START = END - timedelta(hours=6)
N = 300


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    simulator = ShopeeSimulator.from_settings(Settings())
    simulator.load(generate_histories(N, seed=13, start=START, end=END))
    running = await serve(simulator)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(http: aiohttp.ClientSession, sim: RunningSimulator, **kw: object) -> ShopeeClient:
    s = Settings()
    return ShopeeClient(
        http,
        base_url=sim.url,
        partner_id=int(kw.get("partner_id", s.shopee_partner_id)),  # type: ignore[call-overload]
        partner_key=str(kw.get("partner_key", s.shopee_partner_key.get_secret_value())),
        shop_id=s.shopee_shop_id,
        access_token=str(kw.get("token", s.shopee_access_token.get_secret_value())),
        timeout=5.0,
        clock=kw.get("clock", lambda: datetime.now(UTC)),  # type: ignore[arg-type]
    )


async def test_list_then_detail_every_order_byte_identical(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    source = ShopeeOrderSource(client(http, sim), page_size=70)
    seen: dict[bytes, bytes] = {}
    page_no = 1
    while True:
        page = await source.fetch_page(START, END, page_no)
        for item in page.items:
            assert item.key is not None and item.key not in seen and item.modified is not None
            seen[item.key] = item.value
        if not page.has_next:
            break
        page_no += 1
    assert page_no == 5
    assert {k.decode(): v for k, v in seen.items()} == sim.simulator.store.raw_by_key()
    # get_order_detail was asked in batches of at most 50.
    assert sim.simulator.stats["order_detail"] >= 300 / 50


async def test_optional_fields_are_requested(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    sn = next(iter(sim.simulator.store.raw_by_key()))
    details = await client(http, sim).get_order_detail([sn])
    assert {"item_list", "total_amount", "recipient_address"} <= set(details.orders[0])


async def test_errors_are_classified(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    with pytest.raises(PermanentError, match="Wrong sign") as wrong:
        await client(http, sim, partner_key="other").get_order_list(START, END)
    assert wrong.value.code == "error_sign"
    with pytest.raises(PermanentError, match="access_token"):
        await client(http, sim, token="expired").get_order_list(START, END)
    late = client(http, sim, clock=lambda: datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(PermanentError, match="timestamp"):
        await late.get_order_list(START, END)
    sim.simulator.faults = FaultConfig(rate_limit_every=1)
    with pytest.raises(RateLimited) as limited:
        await client(http, sim).get_order_list(START, END)
    assert limited.value.code == "error_too_many_request"
    sim.simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError, match="request_id"):
        await client(http, sim).get_order_list(START, END)
    sim.simulator.faults = FaultConfig()
    with pytest.raises(ValueError, match="15 days"):
        await client(http, sim).get_order_list(END - timedelta(days=16), END)


def test_every_simulated_record_is_accepted_by_the_normaliser() -> None:
    simulator = ShopeeSimulator.from_settings(Settings())
    simulator.load(generate_histories(N, seed=3, start=START, end=END))
    details = list(simulator.store.raw_by_key().values())
    pushes = [p.body for p in simulator.pushes(seed=3)]
    assert len(pushes) > N and all(json.loads(p)["code"] == 3 for p in pushes)
    for body in details + pushes:
        out = normalise_record(raw_record("shopee", body), codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
        assert out.rejection is None, (out.rejection, body[:200])
