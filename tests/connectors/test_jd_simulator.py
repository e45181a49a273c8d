"""The JD simulator's orders are deterministic, shaped like JOS's, accepted by the normaliser;
the engine pulls them all over real HTTP through every injected fault (Kafka replaced by an
in-memory publisher here; test_jd_live uses the real broker)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.jd.client import JdClient, from_jos_time
from connectors.jd.simulator import STATES, FaultConfig, JdSimulator, advance, generate_orders, serve
from connectors.jd.source import JdOrderSource
from connectors.metrics import ConnectorMetrics
from connectors.pull import PullConfig, PullEngine
from streams.normalise.core import normalise_record
from tests.connectors.test_taobao_simulator import MemoryPublisher, MemoryStore
from tests.helpers import CODEC, FP, raw_record

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


def test_generation_is_deterministic() -> None:
    a = generate_orders(50, seed=7, start=T0)
    assert a == generate_orders(50, seed=7, start=T0)
    assert a != generate_orders(50, seed=8, start=T0)


def test_generated_orders_look_like_jos() -> None:
    end = T0 + timedelta(hours=6)
    orders = generate_orders(600, seed=42, start=T0, end=end)
    assert len({o["orderId"] for o in orders}) == 600
    assert {o["orderState"] for o in orders} == {s for s, _, _ in STATES}
    assert Counter(o["modified"] for o in orders).most_common(1)[0][1] > 1  # same-second updates
    for o in orders:
        assert T0 <= from_jos_time(o["modified"]) < end
        assert from_jos_time(o["orderStartTime"]) <= from_jos_time(o["paymentConfirmTime"])
        assert from_jos_time(o["paymentConfirmTime"]) <= from_jos_time(o["modified"])
        lines = sum(Decimal(i["jdPrice"]) * int(i["itemTotal"]) for i in o["itemInfoList"])
        assert Decimal(o["orderTotalPrice"]) == lines
        assert Decimal(o["orderPayment"]) == lines - Decimal(o["sellerDiscount"]) + Decimal(o["freightPrice"])
        assert o["consigneeInfo"]["fullname"].endswith("*") and "****" in o["consigneeInfo"]["mobile"]
        assert bool(o["waybill"]) == (
            o["orderState"] in ("WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L", "DELIVERY_RETURN")
        )


def _normalise(order: dict[str, object]) -> None:
    value = json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()
    outcome = normalise_record(
        raw_record("jd", value, key=str(order["orderId"]).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )
    assert outcome.rejection is None, (order["orderState"], outcome.rejection)
    assert len(outcome.orders) == 1


def test_every_generated_order_and_every_change_passes_the_normaliser() -> None:
    rng = random.Random(0)
    for order in generate_orders(400, seed=11, start=T0):
        _normalise(order)
        changed = {**order, **advance(order, T0 + timedelta(days=1), rng)}
        _normalise(changed)


async def test_engine_pulls_every_order_through_faults() -> None:
    now = datetime.now(UTC)
    start = now - timedelta(hours=3)
    faults = FaultConfig(
        rate_limit_every=5, http_429_every=13, error_500_every=7, slow_every=11, slow_seconds=0.5,
        duplicate_every=3, modify_every=4, max_modifications=6,
    )  # fmt: skip
    simulator = JdSimulator(app_key="k", app_secret="s", access_token="t", faults=faults, seed=1)
    simulator.store.add_many(generate_orders(400, seed=3, start=start, end=now - timedelta(minutes=1)))
    running = await serve(simulator, "127.0.0.1", 0)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    publisher, store = MemoryPublisher(), MemoryStore()
    metrics = ConnectorMetrics(CollectorRegistry())
    try:
        async with aiohttp.ClientSession() as http:
            client = JdClient(http, base_url=running.url, app_key="k", app_secret="s", access_token="t", timeout=0.3)
            engine = PullEngine(
                JdOrderSource(client, page_size=40),
                publisher,
                store,
                topic="raw.jd",
                config=PullConfig(
                    max_window=timedelta(minutes=30), safety_lag=timedelta(seconds=1), initial_cursor=start
                ),
                metrics=metrics,
                backoff=Backoff((0.01,) * 4, rng=random.Random(0)),
                sleep=sleep,
            )
            first = await engine.run_once()
            first_sleeps = len(sleeps)
            simulator.faults.modify_every = 0  # the shop goes quiet; what changed must now be found
            await asyncio.sleep(2.2)  # orders modified during the first pass are now behind the lag
            second = await engine.run_once()
    finally:
        await running.close()
    stats = simulator.stats
    assert stats["rate_limited"] and stats["http_429"] and stats["http_500"] and stats["slow"] and stats["duplicated"]
    assert stats["modified"] == len(simulator.modified_keys) > 0
    got: dict[str, list[bytes]] = {}
    for key, value in publisher.records:
        assert key is not None
        got.setdefault(key.decode(), []).append(value)
    current = simulator.store.raw_by_key()
    assert set(got) == set(current)  # every orderId
    assert all(values[-1] == current[k] for k, values in got.items())  # the latest version last
    assert all(v in simulator.store.versions[k] for k, values in got.items() for v in values)  # byte-identical
    assert first.retries == first_sleeps > 0 and first.duplicates_skipped > 0
    assert second.start_cursor == first.cursor
    assert {k for k in got if len(got[k]) > 1} <= set(simulator.modified_keys)  # only changed orders twice
    assert metrics.value("ordertwin_connector_requests_total", source="jd", outcome="rate_limited") > 0
    assert metrics.value("ordertwin_connector_requests_total", source="jd", outcome="transient") > 0
