"""Every channel's real connector collects a scenario played in real time, on the real broker.

Per channel, 300 orders whose versions fall over a few seconds from now (Taobao: the scenario
generator's own timelines, ~30 s; the others: their simulator's order generator, 1-6 versions
per order over 5-8 s) are served by the channel's scenario simulator, with a 3 s outage of
the source in the middle. ``run_connector`` runs the real connector against it - the pull
(and, for Shopify, Shopee and 抖店, the webhook receiver the simulator pushes each version to
at its time). Afterwards an independent consumer must find in ``raw.<source>`` the latest
version of every order, byte for byte, nothing the platform never sent, and a watermark past
the last version; the simulator must have answered calls during the outage.

Then, as ``make run`` plays it, one scenario of the generator (``channels=`` all seven, 350
orders) on all seven scenario simulators at once, every real connector running concurrently,
with outages of PDD (pull) and Shopee (push) meanwhile: every channel's raw topic ends with
the latest version of each of its orders and a watermark past its last one.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry

from connectors.registry import plugin
from connectors.runner import run_connector
from connectors.scenario import generate
from connectors.scenario.model import Outage
from connectors.scenario_store import RunningScenario
from connectors.webhook import webhook_spec
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from tests.connectors.test_scenario_simulators import CHANNELS, records_for
from tests.live import free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]

N_ORDERS = 300
S = timedelta(seconds=1)


def split(messages: list[Any]) -> tuple[dict[bytes, list[bytes]], list[datetime]]:
    """Data values per key (in log order) and the watermarks of a raw topic."""
    values: dict[bytes, list[bytes]] = defaultdict(list)
    marks: list[datetime] = []
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        if is_watermark(dict(m.headers() or [])):
            marks.append(parse_raw_watermark(m.value())[0])
        else:
            values[m.key()].append(m.value())
    return values, marks


async def receiver_url(source: str, settings: Settings, port: int) -> str:
    async with aiohttp.ClientSession() as http:
        spec = webhook_spec(source, plugin(source).webhook, settings, http)
    return f"http://127.0.0.1:{port}{spec.route}"


@pytest.mark.parametrize("source", CHANNELS)
async def test_the_real_connector_collects_the_latest_version_of_every_order(
    live_settings: Settings, source: str
) -> None:
    found = plugin(source)
    assert found.start_scenario_simulator is not None
    start = datetime.now(UTC).replace(microsecond=0) + 3 * S
    kind = "generated" if source == "taobao" else "native"  # Taobao: no simulator-made versions
    records = records_for(source, N_ORDERS, kind=kind, seed=2026, start=start)
    final = {r.key: r for r in sorted(records, key=lambda r: r.at)}
    assert len(final) == N_ORDERS and len(records) > N_ORDERS
    down = Outage(source, start + 2 * S, start + 5 * S)
    pushes = "webhook" in found.mode
    webhook_port = free_port()
    target = await receiver_url(source, live_settings, webhook_port) if pushes else None
    running: RunningScenario = await found.start_scenario_simulator(
        live_settings, records, outages=[down], host="127.0.0.1", port=0, target=target
    )
    settings = live_settings.model_copy(
        update={
            f"{source}_base_url": running.url,
            f"{source}_webhook_port": webhook_port,
            "pull_start": (start - timedelta(minutes=1)).isoformat(),
            "pull_safety_lag_s": 1.0,
            "pdd_min_safety_lag_s": 1.0,
            "pull_overlap_s": 1.0,
            "poll_interval_s": 0.3,
            "backoff_s": (0.05, 0.1, 0.2, 0.4),
            "connector_http_timeout_s": 5.0,
            "connector_metrics_port": 0,
        }
    )
    if source == "shopify":
        running.simulator.faults.retry_after_s = 0.2  # its leaky bucket stays on; waits stay short
    topic = Catalogue.from_settings(settings).raw(source).name
    last = max(running.feed.push_time(r) for r in records)
    stop = asyncio.Event()
    task = asyncio.create_task(run_connector(source, settings, stop=stop, registry=CollectorRegistry()))
    try:
        deadline = time.monotonic() + (last - datetime.now(UTC)).total_seconds() + 120
        while True:
            assert not task.done(), task.exception() if task.done() else None
            try:  # in a thread: the connector and the simulator share this event loop
                values, marks = split(await asyncio.to_thread(read_topic, settings, topic, idle_s=0.3, max_s=5))
            except KafkaException:  # a fresh topic's partition leaders may not be known yet
                values, marks = {}, []
            missing = [k for k, r in final.items() if r.value not in values.get(k, [])]
            if not missing and marks and max(marks) >= last:
                break
            assert time.monotonic() < deadline, f"{len(missing)} orders lack their latest version; marks {marks[-1:]}"
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await running.close()

    # Nothing the platform never sent: a version's payload, or (Shopee) one of its status pushes.
    allowed: dict[bytes, set[bytes]] = defaultdict(set)
    for record in records:
        allowed[record.key].add(record.value)
    if running.pusher is not None:
        for _, record, push in running.pusher.sent:
            allowed[record.key].add(push.body)
    assert set(values) == set(final)
    assert all(v in allowed[k] for k, vs in values.items() for v in vs)
    # The outage was lived through: calls were refused while it lasted, nothing was lost.
    assert running.simulator.stats["outage"] > 0
    if running.pusher is not None:
        pushed = {record for _, record, _ in running.pusher.sent}
        assert pushed == set(records)
        assert all(when >= running.feed.push_time(record) for when, record, _ in running.pusher.sent)
        assert all(when >= down.end for when, record, _ in running.pusher.sent if down.start <= record.at < down.end)
        assert running.pusher.delivered


async def test_one_generated_scenario_reaches_every_channels_raw_topic(live_settings: Settings) -> None:
    """As ``make run`` plays it: one scenario of the generator on all seven channels, every
    scenario simulator serving (and pushing) its share, every real connector running at once,
    an outage of a pull source (PDD) and of a push source (Shopee) meanwhile."""
    start = datetime.now(UTC).replace(microsecond=0) + 3 * S
    scenario = generate(
        seed=2027, n_orders=350, start=start, span=8 * S, threshold=5 * S, channels=CHANNELS,
        outages=[("pdd", 20 * S, 3 * S), ("shopee", 21 * S, 3 * S)],  # late, in the orders' shipping
    )  # fmt: skip
    per_source = {c: [r for r in scenario.records if r.source == c] for c in CHANNELS}
    assert all(per_source.values())
    update: dict[str, Any] = {
        "pull_start": (start - timedelta(minutes=1)).isoformat(),
        "pull_safety_lag_s": 1.0,
        "pdd_min_safety_lag_s": 1.0,
        "pull_overlap_s": 1.0,
        "poll_interval_s": 0.3,
        "backoff_s": (0.05, 0.1, 0.2, 0.4),
        "connector_http_timeout_s": 5.0,
        "connector_metrics_port": 0,
    }
    running: dict[str, RunningScenario] = {}
    stop = asyncio.Event()
    tasks: dict[str, asyncio.Task[Any]] = {}
    try:
        for source in CHANNELS:
            found = plugin(source)
            assert found.start_scenario_simulator is not None
            target = None
            if "webhook" in found.mode:
                update[f"{source}_webhook_port"] = free_port()
                target = await receiver_url(source, live_settings, update[f"{source}_webhook_port"])
            running[source] = await found.start_scenario_simulator(
                live_settings, per_source[source], outages=scenario.outages, host="127.0.0.1", port=0, target=target
            )
            update[f"{source}_base_url"] = running[source].url
        settings = live_settings.model_copy(update=update)
        running["shopify"].simulator.faults.retry_after_s = 0.2
        catalogue = Catalogue.from_settings(settings)
        for source in CHANNELS:
            tasks[source] = asyncio.create_task(
                run_connector(source, settings, stop=stop, registry=CollectorRegistry())
            )
        last = max(scenario.publish_at(r) for r in scenario.records)
        deadline = time.monotonic() + (last - datetime.now(UTC)).total_seconds() + 180
        pending = set(CHANNELS)
        while pending:
            for source in sorted(pending):
                task = tasks[source]
                assert not task.done(), (source, task.exception() if task.done() else None)
                try:
                    messages = await asyncio.to_thread(
                        read_topic, settings, catalogue.raw(source).name, idle_s=0.3, max_s=5
                    )
                except KafkaException:
                    continue
                values, marks = split(messages)
                final = {r.key: r.value for r in sorted(per_source[source], key=lambda r: r.at)}
                done = all(v in values.get(k, []) for k, v in final.items())
                if done and marks and max(marks) >= max(scenario.publish_at(r) for r in per_source[source]):
                    pending.discard(source)
            assert time.monotonic() < deadline, f"not complete: {sorted(pending)}"
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        for task in tasks.values():
            await asyncio.wait_for(task, timeout=30)
        for sim in running.values():
            await sim.close()
    assert {c for c in CHANNELS if running[c].simulator.stats["outage"]} == {"pdd", "shopee"}
    shopee = running["shopee"].pusher
    assert shopee is not None and {r for _, r, _ in shopee.sent} == set(per_source["shopee"])
    held = [(when, r) for when, r, _ in shopee.sent if any(o.covers("shopee", r.at) for o in scenario.outages)]
    assert held and all(when >= scenario.publish_at(r) > r.at for when, r in held)  # pushed after the outage
