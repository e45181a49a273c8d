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
    facts = pipeline.metrics.registry.get_sample_value
    assert facts("ordertwin_twin_facts_total", {"system": "CHANNEL", "status": "PAID"}) == 3  # each fact read
    assert facts("ordertwin_twin_facts_total", {"system": "CHANNEL", "status": "OUTBOUND"}) == 1


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


def _order_event(system: str, status: str, minutes: int, **kw: Any) -> bytes:
    from tests.streams.orders.test_twin import ev

    return CODEC.encode("OrderEvent", ev(system, status, minutes, **kw))


def _finance_etc_watermarks(minutes: float, raw_partition: int) -> list[bytes]:
    from datetime import timedelta

    from tests.streams.orders.test_twin import T0

    at = T0 + timedelta(minutes=minutes)
    return [_watermark(s, at, 2, raw_partition) for s in ("taobao", "oms", "wms", "carrier", "finance")]


async def test_history_heard_before_the_watermark_raises_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SIGKILL flake through the real agent: after a restart raw.finance partition 0
    (the refund, 13 min after payment) drains before partition 1 (the payment posting at
    2 min). In band, partition 0's watermark follows the refund, partition 1's the posting,
    so the finance watermark (their minimum) stays at 1 min until the posting is in."""
    from datetime import timedelta

    from streams.control import CONTROL_HEADER, WATERMARK
    from tests.streams.orders.test_twin import LINES, T0

    capture(pipeline, monkeypatch)
    alerts = Capture()
    monkeypatch.setattr(pipeline.topics["alerts"], "send", alerts)
    control = {CONTROL_HEADER: WATERMARK}
    key = b"taobao:1"
    async with pipeline.agents["track_twin"].test_context() as agent:
        await agent.put(_order_event("CHANNEL", "PAID", 0, lines=LINES, amount_minor=100), key=key)
        for rp in (0, 1):  # everything vouched up to 1 min before the kill
            for wm in _finance_etc_watermarks(1, rp):
                await agent.put(wm, key=b"wm", headers=control)
        await agent.put(_order_event("WMS", "ALLOCATED", 3), key=key)
        await agent.put(_order_event("FINANCE", "REFUNDED", 13, amount_minor=100), key=key)
        await agent.put(_watermark("finance", T0 + timedelta(minutes=14), 2, 0), key=b"wm", headers=control)
        assert alerts.sent == []  # was: paid_not_in_finance RAISED + RESOLVED
        await agent.put(_order_event("FINANCE", "PAID", 2, amount_minor=100), key=key)
        await agent.put(_watermark("finance", T0 + timedelta(minutes=14), 2, 1), key=b"wm", headers=control)
        for e in (("OMS", "ALLOCATED", 1), ("WMS", "CANCELLED", 13), ("CHANNEL", "CANCELLED", 12)):
            await agent.put(_order_event(*e), key=key)
        for rp in (0, 1):
            for wm in _finance_etc_watermarks(100, rp):
                await agent.put(wm, key=b"wm", headers=control)
    assert [CODEC.decode_as("Alert", v)["rule"] for _, v in alerts.sent] == []
    twin = CODEC.decode_as("OrderTwin", pipeline.tables["order_twin"][key])
    assert twin["episodes"] == [] and twin["state"] == "CANCELLED"


async def test_late_heal_heard_early_is_raised_by_the_watermark(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real late posting (13 min, nothing earlier) heard before finance's watermark passed
    the deadline: the episode waits in the deadline index and the watermark that passes
    the deadline raises and resolves it, once."""
    from datetime import timedelta

    from streams.control import CONTROL_HEADER, WATERMARK
    from tests.streams.orders.test_twin import LINES, T0

    capture(pipeline, monkeypatch)
    alerts = Capture()
    monkeypatch.setattr(pipeline.topics["alerts"], "send", alerts)
    control = {CONTROL_HEADER: WATERMARK}
    key = b"taobao:1"
    async with pipeline.agents["track_twin"].test_context() as agent:
        for e in (("OMS", "ALLOCATED", 1), ("WMS", "ALLOCATED", 2)):
            await agent.put(_order_event(*e), key=key)
        await agent.put(_order_event("CHANNEL", "PAID", 0, lines=LINES, amount_minor=100), key=key)
        for rp in (0, 1):
            for wm in _finance_etc_watermarks(1, rp):
                await agent.put(wm, key=b"wm", headers=control)
        await agent.put(_order_event("FINANCE", "PAID", 13, amount_minor=100), key=key)
        await agent.put(_watermark("finance", T0 + timedelta(minutes=14), 2, 0), key=b"wm", headers=control)
        await agent.put(_watermark("finance", T0 + timedelta(minutes=9.99), 2, 1), key=b"wm", headers=control)
        assert alerts.sent == []
        await agent.put(_watermark("finance", T0 + timedelta(minutes=10), 2, 1), key=b"wm", headers=control)
        raised = [CODEC.decode_as("Alert", v) for _, v in alerts.sent]
        assert [(a["rule"], a["state"]) for a in raised] == [
            ("paid_not_in_finance", "RAISED"),
            ("paid_not_in_finance", "RESOLVED"),
        ]
        assert raised[1]["resolved_at"] == T0 + timedelta(minutes=13)
        await agent.put(_order_event("FINANCE", "PAID", 13, amount_minor=100), key=key)  # replayed
        await agent.put(_watermark("finance", T0 + timedelta(minutes=30), 2, 1), key=b"wm", headers=control)
    assert len(alerts.sent) == 2


def _paid_twin(*, raised: bool) -> dict[str, Any]:
    """taobao:1 paid long ago, heard by nobody else: three episodes, raised or not yet."""
    from streams.orders.divergence import evaluate, raise_due
    from streams.orders.twin import apply
    from tests.streams.orders.test_twin import LINES, ev

    paid = ev("CHANNEL", "PAID", 0, lines=LINES, amount_minor=100)
    twin, _ = apply(None, paid)
    twin, _ = evaluate(twin, at_ms=0, now=NOW, default_threshold_s=600)
    if raised:
        twin, _ = raise_due(twin, lambda _source: 2**62, NOW)
    return twin


def _recovering(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, on_topic: list[dict[str, Any]]) -> None:
    """The worker owns every orders.events partition; the alerts topic holds ``on_topic``."""
    from faust.types import TP

    import streams.orders.agents as agents

    events = pipeline.topics["orders_events"].get_topic_name()
    monkeypatch.setattr(pipeline.app.assignor, "assigned_actives", lambda: {TP(events, p) for p in range(4)})
    monkeypatch.setattr(agents, "read_alerts", lambda *_args: on_topic)


async def _recovered(pipeline: Pipeline, wait_s: float = 5.0) -> None:
    """put() can return while recovery still awaits its read of the alerts topic."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not pipeline.twin_state.indexed and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert pipeline.twin_state.indexed


async def test_recovery_re_emits_a_raised_alert_the_topic_never_got(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row says raised, the alerts topic has no RAISED (lost in the crash): recovery
    sends it (it used to count it as sent before sending, so it was never sent)."""
    from streams.control import CONTROL_HEADER, WATERMARK

    capture(pipeline, monkeypatch)
    alerts = Capture()
    monkeypatch.setattr(pipeline.topics["alerts"], "send", alerts)
    pipeline.tables["order_twin"].data[b"taobao:1"] = CODEC.encode("OrderTwin", _paid_twin(raised=True))
    _recovering(pipeline, monkeypatch, on_topic=[])
    async with pipeline.agents["track_twin"].test_context() as agent:
        await agent.put(_watermark("wms", NOW), key=b"wm", headers={CONTROL_HEADER: WATERMARK}, partition=1)
        await _recovered(pipeline)
    sent = sorted((a["rule"], a["state"]) for a in (CODEC.decode_as("Alert", v) for _, v in alerts.sent))
    assert sent == [(r, "RAISED") for r in ("paid_not_in_finance", "paid_not_in_oms", "paid_not_in_wms")]


async def test_recovery_repairs_rows_in_their_own_partition(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alerts reached the topic, the row saying so did not (the crash fell between).
    Recovery runs on whatever event comes first; a table write then lands in that event's
    partition (Faust partitions table writes by the current event), so the repaired row
    must wait for its own order's next event instead of being written there."""
    from types import SimpleNamespace

    from streams.control import CONTROL_HEADER, WATERMARK
    from streams.orders.divergence import make_alert
    from streams.orders.rules import RULES_BY_ID
    from tests.streams.orders.test_twin import ev

    capture(pipeline, monkeypatch)
    alerts = Capture()
    monkeypatch.setattr(pipeline.topics["alerts"], "send", alerts)
    table = pipeline.tables["order_twin"]
    unraised = _paid_twin(raised=False)
    table.data[b"taobao:1"] = CODEC.encode("OrderTwin", unraised)
    on_topic = [make_alert(unraised, RULES_BY_ID[e["rule"]], e, "RAISED", NOW) for e in unraised["episodes"]]
    _recovering(pipeline, monkeypatch, on_topic=on_topic)
    writes: list[tuple[int | None, bytes]] = []

    def send_changelog(partition: int | None, key: bytes, value: bytes, *args: Any, **kw: Any) -> Any:
        writes.append((partition, key))
        return SimpleNamespace(message=SimpleNamespace(partition=partition))

    monkeypatch.setattr(table, "send_changelog", send_changelog)
    control = {CONTROL_HEADER: WATERMARK}
    async with pipeline.agents["track_twin"].test_context() as agent:
        await agent.put(_watermark("wms", NOW), key=b"wm", headers=control, partition=0)  # recovery runs here
        await _recovered(pipeline)
        assert writes == [] and alerts.sent == []
        late_oms = CODEC.encode("OrderEvent", ev("OMS", "ALLOCATED", 1))  # the order's next fact
        await agent.put(late_oms, key=b"taobao:1", partition=1)
    assert writes == [(1, b"taobao:1")]
    twin = CODEC.decode_as("OrderTwin", table[b"taobao:1"])
    assert sorted((e["rule"], e["raised"]) for e in twin["episodes"]) == [
        ("paid_not_in_finance", True),
        ("paid_not_in_wms", True),
    ]
    resolved = [CODEC.decode_as("Alert", v) for _, v in alerts.sent]
    assert [(a["rule"], a["state"]) for a in resolved] == [("paid_not_in_oms", "RESOLVED")]  # nothing repeated


def _unraised_rows(pipeline: Pipeline, n: int) -> None:
    """``n`` orders paid long ago and heard by nobody else: three pending deadlines each."""
    twin = _paid_twin(raised=False)
    for i in range(n):
        order_id = f"taobao:{100 + i}"
        row = {**twin, "order_id": order_id}
        pipeline.tables["order_twin"].data[order_id.encode()] = CODEC.encode("OrderTwin", row)


def _indexed(pipeline: Pipeline) -> list[tuple[int, bytes, str]]:
    """Every (deadline, key, rule) entry of the twin's deadline indexes."""
    return sorted(
        entry
        for part in pipeline.twin_state.partitions.values()
        for heap in part.index._heaps.values()
        for entry in heap
    )


async def test_rebuild_streams_rows_and_lets_the_loop_run(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart on a large table must not freeze the worker: the rebuild yields to the event
    loop between slices (the API and other agents answer meanwhile) and still indexes
    every pending deadline exactly once."""
    import asyncio

    import streams.orders.agents as agents
    from streams.control import CONTROL_HEADER, WATERMARK

    capture(pipeline, monkeypatch)
    monkeypatch.setattr(pipeline.topics["alerts"], "send", Capture())
    _unraised_rows(pipeline, 25)
    _recovering(pipeline, monkeypatch, on_topic=[])
    monkeypatch.setattr(agents, "REBUILD_SLICE", 4)
    trace: list[str] = []
    real_pending = agents.pending_deadlines

    def pending(twin: Any) -> Any:
        trace.append("row")
        return real_pending(twin)

    monkeypatch.setattr(agents, "pending_deadlines", pending)

    async def other_work() -> None:
        while True:
            trace.append("tick")
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(other_work())
    try:
        async with pipeline.agents["track_twin"].test_context() as agent:
            await agent.put(_watermark("carrier", NOW), key=b"wm", headers={CONTROL_HEADER: WATERMARK}, partition=0)
            await _recovered(pipeline)
    finally:
        ticker.cancel()
    rows = [i for i, what in enumerate(trace) if what == "row"]
    assert len(rows) == 25
    assert "tick" in trace[rows[0] : rows[-1]]  # other work ran while rows were being read
    entries = _indexed(pipeline)
    assert len(entries) == 75 and len(set(entries)) == 75
    assert {key for _, key, _ in entries} == {f"taobao:{100 + i}".encode() for i in range(25)}


async def test_rebuild_overtaken_by_a_reassignment_starts_over(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partitions reassigned while the rebuild reads the table: the half-built index is
    dropped and the rebuild starts again on the new assignment (re-reading the alerts
    topic) instead of declaring an index built from a table that changed under it."""
    import streams.orders.agents as agents
    from streams.control import CONTROL_HEADER, WATERMARK

    capture(pipeline, monkeypatch)
    monkeypatch.setattr(pipeline.topics["alerts"], "send", Capture())
    _unraised_rows(pipeline, 12)
    _recovering(pipeline, monkeypatch, on_topic=[])
    reads: list[int] = []
    monkeypatch.setattr(agents, "read_alerts", lambda *_args: reads.append(1) or [])
    monkeypatch.setattr(agents, "REBUILD_SLICE", 3)
    real_pending = agents.pending_deadlines
    rows = 0

    def pending(twin: Any) -> Any:
        nonlocal rows
        rows += 1
        if rows == 5:
            pipeline.twin_state.generation += 1  # what a rebalance signal does
        return real_pending(twin)

    monkeypatch.setattr(agents, "pending_deadlines", pending)
    async with pipeline.agents["track_twin"].test_context() as agent:
        await agent.put(_watermark("carrier", NOW), key=b"wm", headers={CONTROL_HEADER: WATERMARK}, partition=0)
        await _recovered(pipeline)
    assert len(reads) == 2  # the first pass gave up at its next yield and the second ran whole
    assert rows == 6 + 12
    entries = _indexed(pipeline)
    assert len(entries) == 36 and len(set(entries)) == 36
