"""The Kuaishou simulator's orders are deterministic, shaped like the open platform's, accepted
by the normaliser; the engine pulls them all over real HTTP through the platform cursor and
every injected fault (Kafka replaced by an in-memory publisher; test_kuaishou_live uses the
real broker)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.kuaishou.client import KuaishouClient, to_millis
from connectors.kuaishou.simulator import (
    STATUS_WEIGHTS,
    FaultConfig,
    KuaishouSimulator,
    advance,
    generate_orders,
    serve,
)
from connectors.kuaishou.source import KuaishouOrderSource
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


def test_generated_orders_look_like_kuaishou() -> None:
    end = T0 + timedelta(hours=6)
    orders = generate_orders(800, seed=42, start=T0, end=end)
    bases = [o["orderBaseInfo"] for o in orders]
    assert len({b["oid"] for b in bases}) == 800
    assert {b["status"] for b in bases} == {s for s, _ in STATUS_WEIGHTS}
    assert Counter(b["updateTime"] for b in bases).most_common(1)[0][1] > 1  # same-millisecond updates
    refunds = {
        (b["status"], o["orderRefundList"][0]["refundStatus"])
        for b, o in zip(bases, orders, strict=True)
        if o["orderRefundList"]
    }
    assert (80, 60) in refunds and any(status == 40 for status, _ in refunds)
    for base, order in zip(bases, orders, strict=True):
        assert to_millis(T0) <= base["updateTime"] < to_millis(end)
        assert base["createTime"] <= base["updateTime"]
        item = order["orderItemInfo"]
        assert base["totalFee"] == item["price"] * item["num"] - item["discountFee"] + base["expressFee"]
        assert bool(order["orderLogisticsInfo"]) == (base["status"] in (40, 50, 70))
        assert order["orderAddress"]["desensitiseMobile"].count("*") == 4 and order["orderAddress"]["mobile"] == ""


def _normalise(order: dict[str, Any]) -> None:
    value = json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()
    record = raw_record("kuaishou", value, key=str(order["orderBaseInfo"]["oid"]).encode())
    outcome = normalise_record(record, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
    assert outcome.rejection is None, (order["orderBaseInfo"]["status"], outcome.rejection)
    assert len(outcome.orders) == 1


def test_every_generated_order_and_every_change_passes_the_normaliser() -> None:
    rng = random.Random(0)
    for order in generate_orders(400, seed=11, start=T0):
        _normalise(order)
        changed = json.loads(json.dumps(order))
        for part, values in advance(order, to_millis(T0) + 86_400_000, rng).items():
            if isinstance(values, dict):
                changed[part].update(values)
            else:
                changed[part] = values
        _normalise(changed)


async def test_engine_pulls_every_order_through_faults() -> None:
    now = datetime.now(UTC)
    start = now - timedelta(hours=3)
    faults = FaultConfig(
        rate_limit_every=6, http_429_every=17, error_500_every=9, slow_every=11, slow_seconds=0.5,
        duplicate_every=3, modify_every=4, max_modifications=6, empty_page_every=3,
    )  # fmt: skip
    simulator = KuaishouSimulator(app_key="k", sign_secret="s", access_token="t", faults=faults, seed=1)
    simulator.store.add_many(generate_orders(500, seed=3, start=start, end=now - timedelta(minutes=1)))
    running = await serve(simulator, "127.0.0.1", 0)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    publisher, store = MemoryPublisher(), MemoryStore()
    metrics = ConnectorMetrics(CollectorRegistry())
    try:
        async with aiohttp.ClientSession() as http:
            client = KuaishouClient(
                http, base_url=running.url, app_key="k", sign_secret="s", access_token="t", timeout=0.3
            )
            engine = PullEngine(
                KuaishouOrderSource(client, page_size=20),
                publisher,
                store,
                topic="raw.kuaishou",
                config=PullConfig(
                    max_window=timedelta(minutes=30), safety_lag=timedelta(seconds=1), initial_cursor=start
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
    assert all(stats[k] for k in ("rate_limited", "http_429", "http_500", "slow", "duplicated", "empty_pages"))
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
    assert metrics.value("ordertwin_connector_requests_total", source="kuaishou", outcome="rate_limited") > 0
