"""The simulator's generated trades are deterministic and look like TOP's; the engine pulls
them all over real HTTP through injected faults (Kafka replaced by an in-memory publisher
here; the live test uses the real broker)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.metrics import ConnectorMetrics
from connectors.pull import PullConfig, PullEngine
from connectors.taobao.client import TaobaoClient, from_top_time
from connectors.taobao.simulator import FaultConfig, TaobaoSimulator, generate_trades, serve
from connectors.taobao.source import TaobaoTradeSource

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


def test_generation_is_deterministic() -> None:
    a = generate_trades(50, seed=7, start=T0)
    assert a == generate_trades(50, seed=7, start=T0)
    assert a != generate_trades(50, seed=8, start=T0)


def test_generated_trades_look_like_top() -> None:
    end = T0 + timedelta(hours=6)
    trades = generate_trades(600, seed=42, start=T0, end=end)
    assert len({t["tid"] for t in trades}) == 600
    statuses = Counter(t["status"] for t in trades)
    assert {"WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS", "TRADE_FINISHED",
            "TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"} <= set(statuses)  # fmt: skip
    assert any(o["seller_type"] == "B" for t in trades for o in t["orders"]["order"])  # Tmall
    assert any(t["type"] == "tmall_i18n" for t in trades)
    assert any(t["type"] == "step" and "step_trade_status" in t for t in trades)
    assert Counter(t["modified"] for t in trades).most_common(1)[0][1] > 1  # same-second updates
    for t in trades:
        assert isinstance(t["tid"], int) and t["tid"] < 2**63
        modified = from_top_time(t["modified"])
        assert T0 <= modified < end
        times = [from_top_time(t[k]) for k in ("created", "pay_time", "consign_time", "end_time") if k in t]
        assert times == sorted(times) and times[-1] <= modified
        assert re.fullmatch(r".\*\*", t["receiver_name"])
        assert re.fullmatch(r"\d{3}\*{4}\d{4}", t["receiver_mobile"])
        assert t["receiver_address"].endswith("***")
        lines = t["orders"]["order"]
        assert 1 <= len(lines) <= 3 and all(line["outer_sku_id"] for line in lines)
        paid = sum(Decimal(line["payment"]) for line in lines) + Decimal(t["post_fee"])
        assert Decimal(t["payment"]) == paid
        assert re.fullmatch(r"\d+\.\d\d", t["payment"])


class MemoryPublisher:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> None:
        self.records.append((key, value))

    def publish_watermark(self, topic: str, watermark: datetime) -> int:
        return 1

    async def aflush(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        return len(self.records)


class MemoryStore:
    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    async def aload(self, name: str) -> dict[str, Any] | None:
        return self.values.get(name)

    async def asave(self, name: str, value: Mapping[str, Any]) -> None:
        self.values[name] = dict(value)


async def test_engine_pulls_every_trade_through_faults() -> None:
    now = datetime.now(UTC)
    start = now - timedelta(hours=3)
    simulator = TaobaoSimulator(
        app_key="k",
        app_secret="s",
        session_key="x",
        faults=FaultConfig(rate_limit_every=4, error_500_every=7, ban_seconds=0),
    )
    simulator.store.add_many(generate_trades(400, seed=3, start=start, end=now - timedelta(minutes=1)))
    running = await serve(simulator, "127.0.0.1", 0)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    try:
        async with aiohttp.ClientSession() as http:
            client = TaobaoClient(http, base_url=running.url, app_key="k", app_secret="s", session_key="x")
            source = TaobaoTradeSource(client, page_size=40)
            publisher, store = MemoryPublisher(), MemoryStore()
            metrics = ConnectorMetrics(CollectorRegistry())
            engine = PullEngine(
                source,
                publisher,
                store,
                topic="raw.taobao",
                config=PullConfig(max_window=timedelta(minutes=30), initial_cursor=start),
                metrics=metrics,
                backoff=Backoff((0.01, 0.01, 0.01), rng=random.Random(0)),
                sleep=sleep,
            )
            summary = await engine.run_once()
    finally:
        await running.close()
    raw = simulator.store.raw_by_key()
    got = {k.decode(): v for k, v in publisher.records if k}
    assert got == raw  # every tid, byte-identical
    assert summary.retries == len(sleeps) > 0
    assert simulator.stats["rate_limited"] > 0 and simulator.stats["http_500"] > 0
    assert metrics.value("ordertwin_connector_requests_total", source="taobao", outcome="rate_limited") > 0
    assert metrics.value("ordertwin_connector_requests_total", source="taobao", outcome="transient") > 0
    assert json.loads(next(iter(raw.values())))["orders"]["order"]
    assert datetime.fromisoformat(store.values["taobao"]["cursor"]) <= now - timedelta(seconds=30)


def test_first_tid_matches_any_generation_window() -> None:
    from connectors.taobao.simulator import first_tid

    now = datetime.now(UTC)
    assert first_tid(7) == generate_trades(200, seed=7, start=now - timedelta(hours=6), end=now)[0]["tid"]


def test_generated_trades_pass_the_taobao_normaliser() -> None:
    """The simulator's trades are valid input for streams.normalise (no false rejections)."""
    from streams.normalise.core import normalise_record
    from tests.helpers import CODEC, FP, raw_record

    for trade in generate_trades(300, seed=11, start=T0):
        raw = json.dumps(trade, ensure_ascii=False).encode()
        record = raw_record("taobao", raw, key=str(trade["tid"]).encode())
        outcome = normalise_record(record, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
        assert outcome.rejection is None, (trade["status"], outcome.rejection)
        assert len(outcome.orders) == 1
