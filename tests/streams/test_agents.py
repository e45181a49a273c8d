"""Agent tier: the real agents under Faust's test_context(), memory store, no broker.

Outbound sends are captured by replacing each output topic's ``send`` (the agents'
only I/O); the order_twin table is the real Faust table on the memory store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ordertwin.settings import Settings
from streams.app import Pipeline, build
from tests.helpers import CODEC, NOW, fixture_bytes


@pytest.fixture
async def pipeline(tmp_path: Any) -> Pipeline:
    settings = Settings(store="memory://", data_dir=tmp_path, app_id="test-agents", web_port=16066)
    p = build(settings)
    p.app.finalize()
    p.app.conf.store = "memory://"
    p.app.flow_control.resume()
    return p


class Capture:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def __call__(self, key: bytes | None = None, value: bytes = b"", **kw: Any) -> None:
        self.sent.append((key, value))


def capture(p: Pipeline, monkeypatch: pytest.MonkeyPatch) -> dict[str, Capture]:
    caps = {name: Capture() for name in ("orders_events", "inventory_events", "deadletter", "inventory_reservations")}
    for name, cap in caps.items():
        monkeypatch.setattr(p.topics[name], "send", cap)
    return caps


async def _row(table: Any, key: bytes, wait_s: float = 5.0) -> bytes:
    """The agent may still be finishing the event put() handed it (recovery awaits I/O)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while table.get(key) is None and loop.time() < deadline:
        await asyncio.sleep(0.01)
    value: bytes = table[key]
    return value


def as_raw_taobao(p: Pipeline, agent: Any) -> Any:
    """The raw agent reads 11 topics; test messages must say they came from raw.taobao."""
    agent.original_channel = p.app.topic(p.catalogue.raw("taobao").name)
    return agent


HEADERS = {"received_at": NOW.isoformat().encode(), "source": b"taobao"}


async def test_normalise_routes_good_records_and_dead_letters_bad_ones(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    caps = capture(pipeline, monkeypatch)
    good = fixture_bytes("taobao", "wait_seller_send_goods.json")
    bad = fixture_bytes("taobao", "bad_unknown_status.json")
    async with pipeline.agents["normalise"].test_context() as agent:
        as_raw_taobao(pipeline, agent)
        await agent.put(good, key=b"1", headers=HEADERS)
        await agent.put(bad, key=b"2", headers=HEADERS)
        await agent.put(b"{oops", key=b"3", headers=HEADERS)
        await agent.put(good, key=b"1", headers=HEADERS)  # processing continues after bad ones
    assert len(caps["orders_events"].sent) == 2
    key, value = caps["orders_events"].sent[0]
    assert key == b"taobao:3987215540123456829"
    assert CODEC.decode_as("OrderEvent", value)["status"] == "PAID"
    rejected = [CODEC.decode_as("RejectedEvent", v) for _, v in caps["deadletter"].sent]
    assert [r["reason"] for r in rejected] == ["UNKNOWN_STATUS", "INVALID_JSON"]
    assert rejected[0]["raw_value"] == bad and rejected[1]["raw_key"] == b"3"
    assert not caps["inventory_events"].sent


async def test_track_twin_upserts_idempotently(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    caps = capture(pipeline, monkeypatch)
    async with pipeline.agents["normalise"].test_context() as agent:
        as_raw_taobao(pipeline, agent)
        for name in ("wait_seller_send_goods.json", "wait_buyer_confirm_goods.json"):
            doc = json.loads(fixture_bytes("taobao", name))
            doc["tid"] = 42
            if name.startswith("wait_buyer_confirm"):
                doc["modified"] = "2026-11-11 09:00:00"
            await agent.put(json.dumps(doc).encode(), key=b"42", headers=HEADERS)
    paid, shipped = caps["orders_events"].sent
    table = pipeline.tables["order_twin"]
    async with pipeline.agents["track_twin"].test_context() as agent:
        await agent.put(paid[1], key=paid[0])
        first = CODEC.decode_as("OrderTwin", await _row(table, b"taobao:42"))
        await agent.put(paid[1], key=paid[0])  # duplicate
        assert CODEC.decode_as("OrderTwin", table[b"taobao:42"]) == first
        await agent.put(shipped[1], key=shipped[0])
        await agent.put(paid[1], key=paid[0])  # late, older fact
    twin = CODEC.decode_as("OrderTwin", table[b"taobao:42"])
    assert first["state"] == "PAID" and first["version"] == 1
    assert twin["state"] == "OUTBOUND" and twin["version"] == 2
    assert twin["systems"]["CHANNEL"]["raw_status"] == "WAIT_BUYER_CONFIRM_GOODS"


def _watermark(source: str, at: Any, raw_partitions: int = 1, raw_partition: int = 0) -> bytes:
    return CODEC.encode(
        "Watermark",
        {
            "source": source,
            "raw_partition": raw_partition,
            "raw_partitions": raw_partitions,
            "watermark": at,
            "connector": "test",
        },
    )


async def test_watermarks_drive_divergence_alerts(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from streams.control import CONTROL_HEADER, WATERMARK

    caps = capture(pipeline, monkeypatch)
    alerts = Capture()
    monkeypatch.setattr(pipeline.topics["alerts"], "send", alerts)
    async with pipeline.agents["normalise"].test_context() as agent:
        as_raw_taobao(pipeline, agent)
        doc = json.loads(fixture_bytes("taobao", "wait_seller_send_goods.json"))
        doc["tid"] = 77
        await agent.put(json.dumps(doc).encode(), key=b"77", headers=HEADERS)
    ((key, paid),) = caps["orders_events"].sent
    paid_at = CODEC.decode_as("OrderEvent", paid)["event_time"]
    control = {CONTROL_HEADER: WATERMARK}
    async with pipeline.agents["track_twin"].test_context() as agent:
        await agent.put(paid, key=key)
        await agent.put(_watermark("wms", paid_at + timedelta(seconds=599)), key=b"wm", headers=control)
        assert alerts.sent == []  # one second before the deadline: nothing
        await agent.put(_watermark("wms", paid_at + timedelta(seconds=600)), key=b"wm", headers=control)
        raised = [CODEC.decode_as("Alert", v) for _, v in alerts.sent]
        assert [(a["rule"], a["state"]) for a in raised] == [("paid_not_in_wms", "RAISED")]
        await agent.put(_watermark("wms", paid_at + timedelta(seconds=900)), key=b"wm", headers=control)
        assert len(alerts.sent) == 1  # once per episode
    twin = CODEC.decode_as("OrderTwin", pipeline.tables["order_twin"][key])
    assert [(e["rule"], e["raised"]) for e in twin["episodes"] if e["rule"] == "paid_not_in_wms"] == [
        ("paid_not_in_wms", True)
    ]
