"""Inventory on a real broker with a real worker process.

Several channels sell the same SKUs concurrently, past what the WMS counted; some orders
are allocated, shipped (WMS outbound movement, then the delivery confirmation) or
cancelled. Raw records go into ``raw.*`` as the connectors would put them, with in-band
watermarks (as ``connectors/feed.py`` does). Then:

- the OVERSELL alerts are exactly the oversold SKUs (one RAISED each, RESOLVED for the one a
  cancellation heals), nothing twice;
- ``inventory.levels`` (last record per key) equals a recomputation from ``orders.events``
  and ``inventory.events`` by an independent consumer, and the plan's own ground truth;
- GET /inventory/{sku} answers the same;
- the same after the worker is SIGKILLed and restarted mid-scenario: no reservation applied
  twice or lost.
"""

from __future__ import annotations

import asyncio
import random
import signal
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from connectors.publish import RawPublisher
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import CONTROL_HEADER
from streams.orders.twin import apply
from tests.helpers import CODEC
from tests.live import WorkerProcess, free_port, read_topic
from tests.streams.inventory.scenario import CHANNELS, InventoryScenario, build, channel_order, wms_snapshot

pytestmark = [pytest.mark.live, pytest.mark.slow]

SOURCES = (*CHANNELS, "wms")
Numbers = tuple[int, int, int, dict[str, int]]  # on hand, reserved, available, open by channel


def _settings(live: Settings) -> Settings:
    return live.model_copy(update={"web_port": free_port(), "store": "rocksdb://", "inventory_guard_share": 0.5})


def now() -> datetime:
    return datetime.now(UTC)


class Feed:
    """Raw records published as connectors would, and every source vouching for its data
    in band every half second; a source's lock keeps its watermark behind its data."""

    def __init__(self, settings: Settings) -> None:
        self.catalogue = Catalogue.from_settings(settings)
        self.pubs = {s: RawPublisher(settings, source=s) for s in SOURCES}
        self.locks = {s: asyncio.Lock() for s in SOURCES}
        self.stop = asyncio.Event()

    async def publish(self, make: Any, *args: Any) -> None:
        """``make(*args, at)`` -> Raw or list of Raw, built at publication time."""
        built = make(*args, now())
        raws = built if isinstance(built, list) else [built]
        for raw in raws:
            async with self.locks[raw.source]:
                pub = self.pubs[raw.source]
                pub.publish(self.catalogue.raw(raw.source).name, raw.key, raw.value, received_at=now())
                await pub.aflush(30)

    async def vouch(self) -> None:
        while not self.stop.is_set():
            for source, pub in self.pubs.items():
                async with self.locks[source]:
                    pub.publish_watermark(self.catalogue.raw(source).name, now() - timedelta(milliseconds=200))
                    await pub.aflush(30)
            await asyncio.sleep(0.5)

    def close(self) -> None:
        for pub in self.pubs.values():
            pub.close()


async def play(feed: Feed, scenario: InventoryScenario, rng: random.Random, pause: float, between: Any = None) -> None:
    """Counts first, then the channels sell concurrently, then (once ``between()`` returns:
    a cancellation must not race the alert it is to resolve) follow-ups (allocation,
    shipment, cancellation) run concurrently per order."""
    await feed.publish(wms_snapshot, scenario.stock)
    await asyncio.sleep(1.0)

    async def sell(sales: list[Any]) -> None:
        for sale in sales:
            await feed.publish(channel_order, sale, "paid")
            await asyncio.sleep(rng.uniform(0, pause))

    await asyncio.gather(*(sell(s) for s in scenario.paid_phase().values()))
    await asyncio.sleep(1.0)
    if between is not None:
        await between()

    async def follow(sale: Any) -> None:
        await asyncio.sleep(rng.uniform(0, pause * 4))
        await feed.publish(scenario.follow_up, sale)

    await asyncio.gather(*(follow(s) for s in scenario.sales))


# --- reading the results back --------------------------------------------------------------


def alerts(settings: Settings) -> list[dict[str, Any]]:
    topic = Catalogue.from_settings(settings).alerts.name
    return [CODEC.decode_as("Alert", m.value()) for m in read_topic(settings, topic, idle_s=1.0)]


def published_levels(settings: Settings) -> dict[tuple[str, str], Numbers]:
    topic = Catalogue.from_settings(settings).inventory_levels.name
    last: dict[tuple[str, str], Numbers] = {}
    for msg in read_topic(settings, topic, idle_s=1.0):  # in offset order per partition; keys stay in theirs
        lv = CODEC.decode_as("InventoryLevel", msg.value())
        last[(lv["sku"], lv["warehouse"])] = (lv["on_hand"], lv["reserved"], lv["available"], lv["open_by_channel"])
    return {k: v for k, v in last.items() if v[0] or v[1]}


def recompute(settings: Settings) -> dict[tuple[str, str], Numbers]:
    """Levels from orders.events + inventory.events alone, by an independent reader."""
    catalogue = Catalogue.from_settings(settings)
    twins: dict[str, dict[str, Any]] = {}
    for msg in read_topic(settings, catalogue.orders_events.name, idle_s=1.0):
        if dict(msg.headers() or []).get(CONTROL_HEADER):
            continue
        event = CODEC.decode_as("OrderEvent", msg.value())
        twins[event["order_id"]], _ = apply(twins.get(event["order_id"]), event)
    snaps: dict[tuple[str, str], tuple[datetime, str, int]] = {}
    moves: dict[tuple[str, str], dict[str, tuple[datetime, int]]] = defaultdict(dict)
    shipped: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # (order, sku) -> outbound units
    for msg in read_topic(settings, catalogue.inventory_events.name, idle_s=1.0):
        if dict(msg.headers() or []).get(CONTROL_HEADER):
            continue
        ev = CODEC.decode_as("InventoryEvent", msg.value())
        key = (ev["sku"], ev["warehouse"])
        if ev["kind"] == "SNAPSHOT":
            mine = (ev["event_time"], ev["event_id"], ev["quantity"])
            if key not in snaps or mine[:2] > snaps[key][:2]:
                snaps[key] = mine
        else:
            moves[key][ev["event_id"]] = (ev["event_time"], ev["quantity"])
            if ev["reason"] == "OUTBOUND" and ev["order_id"]:
                shipped[(ev["order_id"], ev["sku"])][ev["event_id"]] = -ev["quantity"]
    on_hand: dict[tuple[str, str], int] = {}
    for key in set(snaps) | set(moves):
        since, _, qty = snaps.get(key, (datetime.min.replace(tzinfo=UTC), "", 0))
        on_hand[key] = qty + sum(q for t, q in moves[key].values() if t > since)
    held: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for twin in twins.values():
        if twin["state"] not in ("PAID", "ALLOCATED"):
            continue  # released: shipped (the WMS movement took the units), cancelled, returned
        views = twin["systems"]
        warehouse = next((views[s]["warehouse"] for s in ("WMS", "OMS") if s in views and views[s]["warehouse"]), "*")
        for line in twin["lines"]:
            ahead = sum(shipped[(twin["order_id"], line["sku"])].values())  # shipped before the twin knew
            held[(line["sku"], warehouse)][twin["channel"]] += max(0, line["qty"] - ahead)
    out: dict[tuple[str, str], Numbers] = {}
    for key in set(on_hand) | set(held):
        channels = {ch: n for ch, n in sorted(held[key].items()) if n}
        have, reserved = on_hand.get(key, 0), sum(channels.values())
        if have or reserved:
            out[key] = (have, reserved, have - reserved, channels)
    return out


def reservation_outcomes(worker: WorkerProcess) -> dict[str, float]:
    """Reservation changes the restarted worker applied / ignored (replays), from /metrics."""
    with urllib.request.urlopen(worker.base + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("ordertwin_inventory_reservation_changes_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] += float(line.rsplit(" ", 1)[1])
    return dict(out)


def truth(scenario: InventoryScenario) -> dict[tuple[str, str], tuple[int, int]]:
    return {k: v for k, v in scenario.levels().items() if v != (0, 0)}


async def settled(worker: WorkerProcess, scenario: InventoryScenario, within: float = 120.0) -> None:
    """Until GET /inventory/{sku} shows the plan's final numbers for every SKU."""
    want = truth(scenario)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        seen: dict[tuple[str, str], tuple[int, int]] = {}
        for sku in scenario.stock:
            status, body = await asyncio.to_thread(worker.get, f"/inventory/{sku}")
            if status == 200:
                for lv in body["warehouses"]:
                    if lv["on_hand"] or lv["reserved"]:
                        seen[(sku, lv["warehouse"])] = (lv["on_hand"], lv["reserved"])
        if seen == want:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError({"want": want, "seen": seen, "log": worker.tail_log(30)})
        await asyncio.sleep(1)


def check_alerts(settings: Settings, scenario: InventoryScenario) -> None:
    oversell = [a for a in alerts(settings) if a["rule"] == "OVERSELL"]
    raised = [a for a in oversell if a["state"] == "RAISED"]
    resolved = [a for a in oversell if a["state"] == "RESOLVED"]
    expected = scenario.oversold()
    assert Counter(a["subject"] for a in raised) == Counter(list(expected)), [
        (a["subject"], a["alert_id"]) for a in raised
    ]
    assert sorted(a["subject"] for a in resolved) == sorted(sku for sku, healed in expected.items() if healed)
    assert {a["alert_id"] for a in resolved} <= {a["alert_id"] for a in raised}
    for a in raised:
        assert a["subject_type"] == "sku" and set(a["details"]["channels"].split(",")) <= set(CHANNELS)


def check_levels(settings: Settings, scenario: InventoryScenario) -> None:
    levels = published_levels(settings)
    assert levels == recompute(settings)
    assert {k: (v[0], v[1]) for k, v in levels.items()} == truth(scenario)


async def wait_for_oversell_alerts(
    settings: Settings, scenario: InventoryScenario, within: float = 60.0, *, raised_only: bool = False
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            if raised_only:
                raised = {a["subject"] for a in alerts(settings) if a["rule"] == "OVERSELL" and a["state"] == "RAISED"}
                assert raised == set(scenario.oversold()), raised
            else:
                check_alerts(settings, scenario)
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)


async def test_channels_overselling_shared_skus_raise_exactly_the_oversold(
    live_settings: Settings, tmp_path: Path
) -> None:
    settings = _settings(live_settings)
    scenario = build(seed=11, orders_per_sku=9)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    feed = Feed(settings)
    vouching = asyncio.create_task(feed.vouch())
    try:
        worker.wait_healthy()
        raised = partial(wait_for_oversell_alerts, settings, scenario, raised_only=True)
        await play(feed, scenario, random.Random(1), pause=0.05, between=raised)
        await settled(worker, scenario)
        await wait_for_oversell_alerts(settings, scenario)
        check_levels(settings, scenario)
        status, body = worker.get("/inventory/INV-OVER")
        assert status == 200 and body["available"] < 0 and body["episodes"][0]["rule"] == "OVERSELL"
        assert worker.get("/inventory/NO-SUCH-SKU")[0] == 404
        commands = read_topic(settings, Catalogue.from_settings(settings).inventory_commands.name, idle_s=1.0)
        locked = {CODEC.decode_as("ChannelStockLock", m.value())["sku"] for m in commands}
        assert set(scenario.oversold()) <= locked
    finally:
        feed.stop.set()
        await vouching
        feed.close()
        worker.stop()


async def test_a_worker_sigkill_mid_scenario_applies_no_reservation_twice_and_loses_none(
    live_settings: Settings, tmp_path: Path
) -> None:
    settings = _settings(live_settings)
    scenario = build(seed=5, orders_per_sku=90)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    feed = Feed(settings)
    vouching = asyncio.create_task(feed.vouch())
    try:
        worker.wait_healthy()
        raised = partial(wait_for_oversell_alerts, settings, scenario, 180, raised_only=True)
        playing = asyncio.create_task(play(feed, scenario, random.Random(2), pause=0.08, between=raised))
        await asyncio.sleep(3.5)  # the channels are mid-sale
        assert not playing.done()
        worker.stop(sig=signal.SIGKILL)
        worker = WorkerProcess(settings, tmp_path / "worker2.log").start()
        await asyncio.to_thread(worker.wait_healthy, 120)
        await playing
        await settled(worker, scenario, within=180)
        await wait_for_oversell_alerts(settings, scenario)
        check_levels(settings, scenario)
        raised = [a for a in alerts(settings) if a["rule"] == "OVERSELL" and a["state"] == "RAISED"]
        assert len({a["alert_id"] for a in raised}) == len(raised)
        print("after the restart:", reservation_outcomes(worker))
    finally:
        feed.stop.set()
        await vouching
        feed.close()
        worker.stop()
