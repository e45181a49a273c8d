"""The PDD simulator's orders are deterministic, shaped like PDD's, accepted by the normaliser;
the engine pulls them all over real HTTP, paging backwards, through every injected fault
(Kafka replaced by an in-memory publisher here; test_pdd_live uses the real broker)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.metrics import ConnectorMetrics
from connectors.pdd.client import PddClient, from_pdd_time
from connectors.pdd.simulator import COMBOS, FaultConfig, PddSimulator, advance, generate_orders, serve
from connectors.pdd.source import PddOrderSource
from connectors.pull import PullConfig, PullEngine
from streams.normalise.core import normalise_record
from tests.connectors.test_taobao_simulator import MemoryPublisher, MemoryStore
from tests.helpers import CODEC, FP, raw_record

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


def test_generation_is_deterministic() -> None:
    a = generate_orders(50, seed=7, start=T0)
    assert a == generate_orders(50, seed=7, start=T0)
    assert a != generate_orders(50, seed=8, start=T0)


def test_generated_orders_look_like_pdd() -> None:
    end = T0 + timedelta(hours=6)
    orders = generate_orders(800, seed=42, start=T0, end=end)
    assert len({o["order_sn"] for o in orders}) == 800
    combos = {(o["order_status"], o["refund_status"], o["confirm_status"]) for o in orders}
    assert combos == {c[:3] for c in COMBOS}
    assert {o["step_order_info"]["step_trade_status"] for o in orders if o["step_order_info"]} == {0, 1, 2}
    assert any(o["is_lucky_flag"] == 2 for o in orders)
    for o in orders:
        assert T0 <= from_pdd_time(o["updated_at"]) < end
        goods = sum(Decimal(str(i["goods_price"])) * i["goods_count"] for i in o["item_list"])
        assert Decimal(str(o["goods_amount"])) == goods
        pay = goods - Decimal(str(o["discount_amount"])) + Decimal(str(o["postage"]))
        assert Decimal(str(o["pay_amount"])) == pay
        assert o["receiver_name"].startswith("~") and o["receiver_phone_mask"].count("*") == 4
        assert bool(o["tracking_number"]) == (o["order_status"] >= 2)


def _normalise(order: dict[str, Any]) -> None:
    value = json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()
    record = raw_record("pdd", value, key=order["order_sn"].encode())
    outcome = normalise_record(record, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
    assert outcome.rejection is None, (order["order_status"], order["refund_status"], outcome.rejection)
    assert len(outcome.orders) == 1


def test_every_generated_order_and_every_change_passes_the_normaliser() -> None:
    rng = random.Random(0)
    for order in generate_orders(400, seed=11, start=T0):
        _normalise(order)
        _normalise({**order, **advance(order, T0 + timedelta(days=1), rng)})


async def test_engine_pulls_every_order_through_faults() -> None:
    now = datetime.now(UTC)
    start = now - timedelta(hours=3)
    faults = FaultConfig(
        rate_limit_every=6, http_429_every=17, error_500_every=9, internal_error_every=13, slow_every=11,
        slow_seconds=0.5, duplicate_every=3, modify_every=4, max_modifications=6,
    )  # fmt: skip
    simulator = PddSimulator(client_id="c", client_secret="s", access_token="t", faults=faults, seed=1)
    simulator.store.add_many(generate_orders(500, seed=3, start=start, end=now - timedelta(minutes=1)))
    running = await serve(simulator, "127.0.0.1", 0)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    publisher, store = MemoryPublisher(), MemoryStore()
    metrics = ConnectorMetrics(CollectorRegistry())
    try:
        async with aiohttp.ClientSession() as http:
            client = PddClient(
                http, base_url=running.url, client_id="c", client_secret="s", access_token="t", timeout=0.3
            )
            engine = PullEngine(
                PddOrderSource(client, page_size=20),
                publisher,
                store,
                topic="raw.pdd",
                config=PullConfig(
                    max_window=timedelta(minutes=29), safety_lag=timedelta(seconds=1), initial_cursor=start
                ),
                metrics=metrics,
                backoff=Backoff((0.01,) * 5, rng=random.Random(0)),
                sleep=sleep,
            )
            first = await engine.run_once()
            first_sleeps = len(sleeps)
            simulator.faults.modify_every = 0
            await asyncio.sleep(2.2)
            await engine.run_once()
    finally:
        await running.close()
    stats = simulator.stats
    assert all(stats[k] for k in ("rate_limited", "http_429", "http_500", "internal_error", "slow", "duplicated"))
    assert stats["modified"] == len(simulator.modified_keys) > 0
    got: dict[str, list[bytes]] = {}
    for key, value in publisher.records:
        assert key is not None
        got.setdefault(key.decode(), []).append(value)
    current = simulator.store.raw_by_key()
    assert set(got) == set(current)
    assert all(values[-1] == current[k] for k, values in got.items())
    assert all(v in simulator.store.versions[k] for k, values in got.items() for v in values)
    assert first.retries == first_sleeps > 0 and first.duplicates_skipped > 0
    assert Counter(len(v) for v in got.values())[1] >= len(current) - len(simulator.modified_keys)
    assert metrics.value("ordertwin_connector_requests_total", source="pdd", outcome="rate_limited") > 0
