"""Agent tier for inventory: the real ``track_twin`` and ``track_stock`` agents under Faust's
test_context(), memory store, no broker. Every output topic's ``send`` is captured.

The reservations the twin sends are fed to the inventory agent as the repartition topic
would deliver them, with the WMS stock facts and in-band WMS watermarks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ordertwin.settings import Settings
from streams.app import Pipeline, build
from streams.control import CONTROL_HEADER, WATERMARK
from tests.helpers import CODEC
from tests.streams.inventory.facts import SKU, at, movement, snapshot

CONTROL = {CONTROL_HEADER: WATERMARK}
THRESHOLD_S = 600


@pytest.fixture
async def pipeline(tmp_path: Any) -> Pipeline:
    settings = Settings(
        store="memory://",
        data_dir=tmp_path,
        app_id="test-inventory-agents",
        web_port=16067,
        inventory_divergence_threshold_s=THRESHOLD_S,
        inventory_guard_share=0.0,
    )
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

    def decoded(self, schema: str) -> list[dict[str, Any]]:
        return [CODEC.decode_as(schema, v) for _, v in self.sent]


OUTPUTS = (
    "orders_events",
    "inventory_events",
    "deadletter",
    "alerts",
    "inventory_reservations",
    "inventory_levels",
    "inventory_commands",
)


@pytest.fixture
def caps(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> dict[str, Capture]:
    out = {name: Capture() for name in OUTPUTS}
    for name, cap in out.items():
        monkeypatch.setattr(pipeline.topics[name], "send", cap)
    return out


def order_event(order_id: str, status: str, minutes: float, qty: int = 0, **kw: Any) -> dict[str, Any]:
    channel = order_id.split(":", 1)[0]
    system = kw.pop("system", "CHANNEL")
    lines = [{"line_id": None, "sku": SKU, "qty": qty, "unit_price_minor": 100, "raw_status": None}] if qty else []
    return {
        "event_id": f"{order_id}|{system}|{status}|{minutes}",
        "order_id": order_id,
        "channel": channel,
        "source": channel if system == "CHANNEL" else system.lower(),
        "system": system,
        "status": status,
        "raw_status": status.lower(),
        "partial": False,
        "event_time": at(minutes),
        "ingest_time": at(minutes),
        "amount_minor": 100 * qty if qty else None,
        "currency": "CNY" if qty else None,
        "lines": lines,
        "warehouse": kw.get("warehouse"),
        "carrier": None,
        "tracking_no": None,
        "address_fp": None,
        "lines_fp": None,
    }


def wms_watermark(minutes: float) -> bytes:
    mark = {"source": "wms", "raw_partition": 0, "raw_partitions": 1, "watermark": at(minutes), "connector": "t"}
    return CODEC.encode("Watermark", mark)


async def put_event(p: Pipeline, agent: Any, record: dict[str, Any]) -> None:
    agent.original_channel = p.app.topic(p.catalogue.inventory_events.name)
    await agent.put(CODEC.encode("InventoryEvent", record), key=record["sku"].encode())


async def put_watermark(p: Pipeline, agent: Any, minutes: float) -> None:
    agent.original_channel = p.app.topic(p.catalogue.inventory_events.name)
    await agent.put(wms_watermark(minutes), key=b"__watermark__:wms", headers=CONTROL)


async def put_reservations(p: Pipeline, agent: Any, sent: list[tuple[bytes | None, bytes]]) -> None:
    agent.original_channel = p.app.topic(p.catalogue.inventory_reservations.name)
    for key, value in sent:
        await agent.put(value, key=key)


async def twin_reservations(p: Pipeline, caps: dict[str, Capture], events: list[dict[str, Any]]) -> list[Any]:
    """Run order events through track_twin; return the reservation records it sent."""
    first = len(caps["inventory_reservations"].sent)
    async with p.agents["track_twin"].test_context() as agent:
        for record in events:
            await agent.put(CODEC.encode("OrderEvent", record), key=record["order_id"].encode())
    return caps["inventory_reservations"].sent[first:]


def oversell(caps: dict[str, Capture]) -> list[tuple[str, str]]:
    return [(a["rule"], a["state"]) for a in caps["alerts"].decoded("Alert") if a["rule"] == "OVERSELL"]


async def test_channels_selling_one_sku_past_stock_raise_exactly_one_oversell(
    pipeline: Pipeline, caps: dict[str, Capture]
) -> None:
    p = pipeline
    sales = [
        order_event("taobao:1", "PAID", 1, qty=2),
        order_event("jd:2", "PAID", 2, qty=2),
        order_event("pdd:3", "PAID", 3, qty=3),  # 7 promised, 5 on hand
        order_event("douyin:4", "PAID", 4, qty=1),
    ]
    reservations = await twin_reservations(p, caps, sales)
    assert [CODEC.decode_as("ReservationChange", v)["state"] for _, v in reservations] == ["RESERVED"] * 4
    assert {k for k, _ in reservations} == {SKU.encode()}  # re-keyed by SKU
    async with p.agents["track_stock"].test_context() as agent:
        await put_event(p, agent, snapshot("HZ01", 5, 0))
        await put_watermark(p, agent, 0.5)
        await put_reservations(p, agent, reservations)
        assert oversell(caps) == []  # the WMS has vouched only up to 0.5
        await put_watermark(p, agent, 10)
        assert oversell(caps) == [("OVERSELL", "RAISED")]
        await put_reservations(p, agent, reservations)  # duplicates (a replay) change nothing
        await put_event(p, agent, snapshot("HZ01", 5, 0))
        await put_watermark(p, agent, 20)
        assert oversell(caps) == [("OVERSELL", "RAISED")]
        raised = caps["alerts"].decoded("Alert")[0]
        assert raised["subject_type"] == "sku" and raised["subject"] == SKU
        assert raised["details"]["channels"] == "douyin,jd,pdd,taobao" and raised["details"]["available"] == "-3"
        cancels = await twin_reservations(
            p, caps, [order_event("pdd:3", "CANCELLED", 30), order_event("douyin:4", "CANCELLED", 31)]
        )
        await put_reservations(p, agent, cancels)
    assert oversell(caps) == [("OVERSELL", "RAISED"), ("OVERSELL", "RESOLVED")]
    alerts = caps["alerts"].decoded("Alert")
    assert alerts[0]["alert_id"] == alerts[-1]["alert_id"]
    levels = caps["inventory_levels"].decoded("InventoryLevel")
    last = levels[-1]
    assert (last["warehouse"], last["reserved"], last["open_by_channel"]) == ("*", 4, {"jd": 2, "taobao": 2})
    hz = [lv for lv in levels if lv["warehouse"] == "HZ01"][-1]
    assert (hz["on_hand"], hz["available"]) == (5, 5)
    row = CODEC.decode_as("StockState", p.tables["stock"][SKU.encode()])
    assert [k for k, e in row["episodes"].items()] == []
    assert p.inventory_state.oversold == set()


async def test_allocation_and_shipping_move_the_reservation_without_double_counting(
    pipeline: Pipeline, caps: dict[str, Capture]
) -> None:
    p = pipeline
    history = [
        order_event("jd:9", "PAID", 1, qty=4),
        order_event("jd:9", "ALLOCATED", 2, system="WMS", warehouse="HZ01"),
    ]
    shipped = [order_event("jd:9", "OUTBOUND", 5, system="WMS", warehouse="HZ01")]
    async with p.agents["track_stock"].test_context() as agent:
        await put_event(p, agent, snapshot("HZ01", 4, 0))
        await put_reservations(p, agent, await twin_reservations(p, caps, history))
        await put_event(p, agent, movement("HZ01", -4, 5, eid="out-jd9", order_id="jd:9"))  # the WMS is faster
        await put_reservations(p, agent, await twin_reservations(p, caps, shipped))
        await put_watermark(p, agent, 60)
    published = caps["inventory_levels"].decoded("InventoryLevel")
    levels = [(lv["warehouse"], lv["on_hand"], lv["reserved"], lv["available"]) for lv in published]
    assert levels == [
        ("HZ01", 4, 0, 4),
        ("*", 0, 4, -4),  # paid, not yet allocated
        ("*", 0, 0, 0),
        ("HZ01", 4, 4, 0),  # allocated to HZ01
        ("HZ01", 0, 0, 0),  # shipped: the movement took it off on hand, the reservation went with it
    ]
    assert oversell(caps) == []


async def test_a_wms_that_silently_loses_a_movement_raises_stock_divergence_after_the_threshold(
    pipeline: Pipeline, caps: dict[str, Capture]
) -> None:
    p = pipeline
    async with p.agents["track_stock"].test_context() as agent:
        await put_event(p, agent, snapshot("HZ01", 20, 0))
        await put_event(p, agent, movement("HZ01", -2, 1, eid="a"))
        # the -3 at minute 2 never arrives
        await put_event(p, agent, snapshot("HZ01", 15, 5))
        deadline = 5 + THRESHOLD_S / 60
        await put_watermark(p, agent, deadline - 1 / 60)
        assert caps["alerts"].sent == []
        await put_watermark(p, agent, deadline)
        await put_watermark(p, agent, deadline + 30)
        await put_event(p, agent, snapshot("HZ01", 15, 40))  # later counts agree with the broken chain
    alerts = caps["alerts"].decoded("Alert")
    assert [(a["rule"], a["state"], a["details"].get("gap")) for a in alerts] == [("STOCK_DIVERGENCE", "RAISED", "-3")]
    assert alerts[0]["episode_started_at"] == at(5) and alerts[0]["deadline"] == at(5) + timedelta(seconds=THRESHOLD_S)
    assert p.inventory_state.diverged == {SKU: 1}
    hz = caps["inventory_levels"].decoded("InventoryLevel")[-1]
    assert hz["on_hand"] == 15  # the count wins for on hand


async def test_a_late_movement_within_the_threshold_raises_nothing(
    pipeline: Pipeline, caps: dict[str, Capture]
) -> None:
    p = pipeline
    async with p.agents["track_stock"].test_context() as agent:
        await put_event(p, agent, snapshot("HZ01", 20, 0))
        await put_event(p, agent, snapshot("HZ01", 15, 5))
        await put_watermark(p, agent, 10)
        await put_event(p, agent, movement("HZ01", -5, 2, eid="late"))
        await put_watermark(p, agent, 60)
    assert caps["alerts"].sent == []


# --- batches: each changed row written once, to its own partition, after the outputs ---------


class Log:
    """One ordered record of outputs sent, table rows written and records acked."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []

    def of(self, kind: str) -> list[Any]:
        return [what for k, what in self.entries if k == kind]

    def index(self, kind: str) -> list[int]:
        return [i for i, (k, _) in enumerate(self.entries) if k == kind]


@pytest.fixture
def log(pipeline: Pipeline, caps: dict[str, Capture], monkeypatch: pytest.MonkeyPatch) -> Log:
    import faust

    out = Log()
    for name, cap in caps.items():

        async def send(key: bytes | None = None, value: bytes = b"", cap: Capture = cap, **kw: Any) -> None:
            out.entries.append(("send", key))
            await cap(key=key, value=value, **kw)

        monkeypatch.setattr(pipeline.topics[name], "send", send)
    table = pipeline.tables["stock"]
    changelog = table.send_changelog

    def send_changelog(partition: int | None, key: Any, value: Any, *args: Any, **kw: Any) -> Any:
        out.entries.append(("write", (partition, key)))
        return changelog(partition, key, value, *args, **kw)

    monkeypatch.setattr(table, "send_changelog", send_changelog)
    ack = faust.Stream.ack

    async def logged_ack(self: Any, event: Any) -> bool:
        out.entries.append(("ack", (event.message.partition, event.message.offset)))
        return await ack(self, event)

    monkeypatch.setattr(faust.Stream, "ack", logged_ack)
    return out


async def put_batch(p: Pipeline, agent: Any, log: Log, facts: list[tuple[int, dict[str, Any]]]) -> None:
    """Queue the facts at once (as a busy partition would deliver them), wait for their acks."""
    import asyncio

    agent.original_channel = p.app.topic(p.catalogue.inventory_events.name)
    want = len(log.of("ack")) + len(facts)
    for partition, record in facts:
        await agent.put(
            CODEC.encode("InventoryEvent", record), key=record["sku"].encode(), partition=partition, wait=False
        )
    for _ in range(500):
        if len(log.of("ack")) >= want:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(log.of('ack'))} of {want} records acked: {log.entries}")


BATCH = [
    (1, snapshot("HZ01", 10, 0, sku="A")),
    (2, snapshot("HZ01", 20, 0, sku="B")),
    (1, movement("HZ01", -1, 1, eid="a1", sku="A")),
    (1, movement("HZ01", -2, 2, eid="a2", sku="A")),
    (2, movement("HZ01", 5, 3, eid="b1", sku="B")),
]


async def test_a_batch_writes_each_changed_row_once_to_its_own_partition_after_its_outputs(
    pipeline: Pipeline, log: Log
) -> None:
    p = pipeline
    async with p.agents["track_stock"].test_context() as agent:
        await put_batch(p, agent, log, BATCH)
    writes = log.of("write")
    assert sorted(writes) == [(1, b"A"), (2, b"B")]  # once per batch, each under its SKU's partition
    assert len(log.of("send")) == len(BATCH)  # one level per fact, sent as each fact was read
    assert max(log.index("send")) < min(log.index("write"))  # outputs, then rows
    assert max(log.index("write")) < min(log.index("ack"))  # rows, then acks
    assert sorted(log.of("ack")) == [(1, 0), (1, 2), (1, 3), (2, 1), (2, 4)]
    table = p.tables["stock"]
    assert stock_levels(table, b"A") == 7 and stock_levels(table, b"B") == 25


class Elsewhere:
    """A record as Faust sees it, but of the other partition (1 <-> 2)."""

    def __init__(self, event: Any) -> None:
        self.message = type("Message", (), {"partition": 3 - event.message.partition, "topic": event.message.topic})


async def test_negative_control_a_row_written_under_another_partition_s_record_is_seen(
    pipeline: Pipeline, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above sees a misplaced row: each row written under a record of the other
    partition lands there."""
    from streams.inventory import agents

    real = agents.set_current_event
    kept: list[Elsewhere] = []  # Faust holds the current event by weak reference

    def elsewhere(stream: Any, event: Any) -> None:
        if event is not None:
            kept.append(Elsewhere(event))
            event = kept[-1]
        real(stream, event)

    monkeypatch.setattr(agents, "set_current_event", elsewhere)
    p = pipeline
    async with p.agents["track_stock"].test_context() as agent:
        await put_batch(p, agent, log, BATCH)
    assert sorted(log.of("write")) == [(1, b"B"), (2, b"A")]


async def test_at_low_load_a_record_is_written_and_acked_by_the_idle_flush(pipeline: Pipeline, log: Log) -> None:
    """No record follows: the batch is written once its age is up, while the agent waits."""
    p = pipeline
    async with p.agents["track_stock"].test_context() as agent:
        await put_batch(p, agent, log, BATCH[:1])
        assert log.of("write") == [(1, b"A")] and log.of("ack") == [(1, 0)]
        assert len(log.of("send")) == 1
        await put_batch(p, agent, log, [(1, movement("HZ01", -1, 1, eid="a1", sku="A"))])
        assert log.of("write") == [(1, b"A"), (1, b"A")]


async def test_a_batch_is_written_when_the_agent_stops_between_records(pipeline: Pipeline, log: Log) -> None:
    p = pipeline
    async with p.agents["track_stock"].test_context() as agent:
        agent.original_channel = p.app.topic(p.catalogue.inventory_events.name)
        await agent.put(CODEC.encode("InventoryEvent", BATCH[0][1]), key=b"A", partition=1)
        assert log.of("send") and not log.of("write")  # outputs at once, the row with the batch
    assert log.of("write") == [(1, b"A")] and log.of("ack") == [(1, 0)]


def stock_levels(table: Any, key: bytes) -> int:
    row = CODEC.decode_as("StockState", table[key])
    return int(row["levels"]["HZ01"]["on_hand"])
