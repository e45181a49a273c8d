"""Foundation, end to end on the real broker: Taobao simulator -> connector -> raw.taobao ->
worker (normalise + twin, RocksDB store, separate process) -> HTTP API, orders.events and
the dead-letter topic, checked by independent readers. Nothing lost, nothing duplicated.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.runner import run_connector, start_simulator
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import CONTROL_HEADER
from tests.helpers import CODEC
from tests.live import WorkerProcess, free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]

N = 500


def _settings(live: Settings) -> Settings:
    return live.model_copy(
        update={
            "web_port": free_port(),
            "taobao_simulator_port": free_port(),
            "connector_metrics_port": 0,
            "pull_safety_lag_s": 1.0,
            "pull_overlap_s": 5.0,
            "backoff_s": (0.05, 0.1, 0.2),
            "store": "rocksdb://",
        }
    )


def _malformed(base: dict[str, object]) -> list[tuple[dict[str, object], str]]:
    unknown = {**copy.deepcopy(base), "tid": 9_000_000_000_000_000_001, "status": "TRADE_TELEPORTED"}
    bad_money = {**copy.deepcopy(base), "tid": 9_000_000_000_000_000_002, "payment": "twelve yuan"}
    no_sku = copy.deepcopy(base)
    no_sku["tid"] = 9_000_000_000_000_000_003
    for line in no_sku["orders"]["order"]:  # type: ignore[index]
        line.pop("outer_sku_id", None)
        line.pop("outer_iid", None)
    return [(unknown, "UNKNOWN_STATUS"), (bad_money, "WRONG_TYPE"), (no_sku, "MISSING_FIELD")]


def _order_events(settings: Settings) -> list[dict[str, object]]:
    topic = Catalogue.from_settings(settings).orders_events.name
    out = []
    for msg in read_topic(settings, topic):
        if dict(msg.headers() or []).get(CONTROL_HEADER):
            continue
        out.append(CODEC.decode_as("OrderEvent", msg.value()))
    return out


async def test_orders_flow_from_taobao_to_the_twin(live_settings: Settings, tmp_path: Path) -> None:
    settings = _settings(live_settings)
    end = datetime.now(UTC) - timedelta(seconds=5)
    sim = await start_simulator("taobao", settings, n_orders=N, seed=11, start=end - timedelta(hours=2), end=end)
    settings = settings.model_copy(update={"taobao_base_url": sim.url})
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        trades = [json.loads(t.raw) for t in sim.simulator.store]
        tids = {str(t["tid"]) for t in trades}
        assert len(tids) == N
        bad = _malformed(trades[0])
        for doc, _reason in bad:
            sim.simulator.store.add(doc, modified=end - timedelta(minutes=30))

        summary = await run_connector("taobao", settings, until_caught_up=True, from_start=True)
        assert summary is not None and summary.published >= N + 3

        worker.start().wait_healthy()
        deadline = time.monotonic() + 120
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            _, health = worker.get("/health")
            if health.get("twin_rows") == N:
                break
            await asyncio.sleep(1)
        assert health.get("twin_rows") == N, worker.tail_log()

        # Every order is there, through the HTTP API; unknown ids are a JSON 404.
        versions = {}
        for tid in sorted(tids):
            status, body = worker.get(f"/orders/taobao:{tid}")
            assert status == 200, (tid, body)
            assert body["twin"]["order_id"] == f"taobao:{tid}"
            versions[tid] = body["twin"]["version"]
        assert set(versions.values()) == {1}
        assert worker.get("/orders/taobao:404") == (404, {"error": "order not found", "order_id": "taobao:404"})

        # An independent consumer reads exactly N decodable OrderEvents, one per trade.
        events = _order_events(settings)
        assert len(events) == N
        assert {e["order_id"] for e in events} == {f"taobao:{t}" for t in tids}

        # The dead-letter topic holds exactly the 3 bad records, with reasons and original bytes.
        dead = [
            CODEC.decode_as("RejectedEvent", m.value())
            for m in read_topic(settings, Catalogue.from_settings(settings).deadletter.name)
        ]
        assert sorted((d["raw_key"], d["reason"]) for d in dead) == sorted(
            (str(doc["tid"]).encode(), reason) for doc, reason in bad
        )
        assert all(json.loads(d["raw_value"])["tid"] for d in dead)

        # Re-running the connector from the start duplicates nothing in the twin.
        again = await run_connector("taobao", settings, until_caught_up=True, from_start=True)
        assert again is not None and again.published >= N
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_order_events(settings)) < 2 * N:
            await asyncio.sleep(1)
        assert len(_order_events(settings)) == 2 * N  # the raw replay is normalised again...
        await asyncio.sleep(2)
        _, health = worker.get("/health")
        assert health["twin_rows"] == N  # ...but the twin does not change
        for tid in sorted(tids)[:50]:
            _, body = worker.get(f"/orders/taobao:{tid}")
            assert body["twin"]["version"] == 1
    finally:
        worker.stop()
        await sim.close()
