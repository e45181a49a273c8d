"""The Kuaidi100 simulator without a broker: realistic, deterministic traces that the normaliser
accepts; delivery through 5xx faults, duplicates and shuffling into the real receiver (fake
publisher) exactly once; the scenario hook pushing each record on time, or after an outage."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from connectors.carrier.push import envelope, make_spec, push_id
from connectors.carrier.simulator import (
    FINAL_STATES,
    FaultConfig,
    FaultyGateway,
    GatewayFaults,
    Waybill,
    callback_url,
    generate_waybills,
    kuaidi100_success,
    publish_at,
    push_form,
    push_of,
    serve_gateway,
    start_scenario_simulator,
    start_simulator,
    waybill_param,
    waybill_pushes,
)
from connectors.publish import RecordAck
from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario.payloads import carrier_push, dumps, make_identity
from connectors.webhook import WebhookMetrics, WebhookReceiver
from connectors.webhook_sender import SenderFaults
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.connectors.test_webhook_receiver import FakePublisher
from tests.helpers import CODEC, FP, raw_record

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
END = T0 + timedelta(hours=6)


def test_generation_is_deterministic_and_in_the_window() -> None:
    a = generate_waybills(120, seed=7, start=T0, end=END)
    assert a == generate_waybills(120, seed=7, start=T0, end=END)
    assert a != generate_waybills(120, seed=8, start=T0, end=END)
    assert len({w.nu for w in a}) == 120
    for w in a:
        times = [at for _, at in w.steps]
        assert times == sorted(times) and times[0] >= T0 and times[-1] <= END
        assert w.steps[0][0] == "1"  # every trace starts with 揽收


def test_traces_look_like_kuaidi100_and_pass_the_normaliser() -> None:
    waybills = generate_waybills(300, seed=3, start=T0, end=END)
    pushes = waybill_pushes(waybills)
    assert len(pushes) == sum(len(w.steps) for w in waybills)
    assert len({p.event_id for p in pushes}) == len(pushes)  # every push is a new param text
    finals = Counter(w.steps[-1][0] for w in waybills)
    assert set(finals) == {"3", "304", "4", "6", "0"}  # 签收, 驿站签收, 退签, 退回, still on the way
    assert any("," in w.order_ref for w in waybills)  # merged parcels
    statuses: Counter[str] = Counter()
    for push in pushes:
        param = json.loads(push.body)
        last = param["lastResult"]
        data = last["data"]
        assert [d["time"] for d in data] == sorted((d["time"] for d in data), reverse=True)  # newest first
        assert param["status"] == ("shutdown" if last["state"] in FINAL_STATES else "polling")
        assert all("*" in d["context"] for d in data if "电话" in d["context"])  # masked, as Kuaidi100 shows
        value = envelope(push.order_id, push.body.decode())
        outcome = normalise_record(
            raw_record("carrier", value, key=push.order_id.encode()), codec=CODEC, fingerprint=FP, max_bytes=10**6
        )
        assert outcome.rejection is None, (last["state"], outcome.rejection)
        assert len(outcome.orders) == push.order_id.count(",") + 1
        statuses.update(o.record["status"] for o in outcome.orders)
    assert set(statuses) == {"IN_TRANSIT", "DELIVERED", "RETURNED"}


def test_plain_trace_is_the_scenario_payload() -> None:
    """For 揽收/在途/签收 the simulator's param is exactly what the scenario renders."""
    o = make_identity(1, T0, random.Random(5), set())
    steps = (("1", T0), ("0", T0 + timedelta(hours=3)), ("3", T0 + timedelta(hours=20)))
    w = Waybill(o.order_id, o, o.addresses[0], steps)
    for upto in (1, 2, 3):
        assert waybill_param(w, upto) == carrier_push(o, list(steps[:upto]), address=o.addresses[0])["param"]


def test_callback_url_and_publish_time() -> None:
    assert str(callback_url("http://h:1/webhooks/carrier", "taobao:1,taobao:2")).startswith(
        "http://h:1/webhooks/carrier?order_id=taobao"
    )
    assert str(callback_url("http://h:1/webhooks/carrier", "")) == "http://h:1/webhooks/carrier"
    outages = [
        Outage("carrier", T0, T0 + timedelta(minutes=2)),
        Outage("carrier", T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)),  # back to back: chains
        Outage("wms", T0 + timedelta(minutes=5), T0 + timedelta(minutes=9)),  # not ours
    ]
    assert publish_at(T0 + timedelta(seconds=30), outages) == T0 + timedelta(minutes=3)
    assert publish_at(T0 + timedelta(minutes=6), outages) == T0 + timedelta(minutes=6)
    assert publish_at(T0 - timedelta(seconds=1), outages) == T0 - timedelta(seconds=1)


async def _receiver(publisher: FakePublisher) -> AsyncIterator[tuple[WebhookReceiver, str]]:
    spec = make_spec(Settings())
    receiver = WebhookReceiver(
        spec, publisher, topic="raw.carrier", metrics=WebhookMetrics(CollectorRegistry()), ack_timeout=2.0
    )
    server = TestServer(receiver.app())
    await server.start_server()
    try:
        yield receiver, str(server.make_url(spec.route))
    finally:
        await server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str, FakePublisher]]:
    publisher = FakePublisher()
    async for r, url in _receiver(publisher):
        yield r, url, publisher


async def test_pushes_reach_the_receiver_exactly_once_through_5xx_duplicates_and_shuffling(
    receiver: tuple[WebhookReceiver, str, FakePublisher],
) -> None:
    rcv, url, publisher = receiver
    faults = FaultConfig(
        sender=SenderFaults(duplicate_rate=0.3, out_of_order=True, late_rate=0.1, late_delay_s=0.2,
                            retry_delays_s=(0.02, 0.05, 0.1, 0.2, 0.2, 0.2)),
        gateway=GatewayFaults(error_502_every=5, lost_answer_every=7),
    )  # fmt: skip
    start = datetime.now(UTC) - timedelta(hours=6)
    running = await start_simulator(
        Settings(), n_orders=60, seed=11, start=start, end=start + timedelta(hours=5), faults=faults, target=url,
        host="127.0.0.1", port=0,
    )  # fmt: skip
    try:
        report = await asyncio.wait_for(running.wait(), timeout=120)
    finally:
        await running.close()
    pushes = running.simulator.pushes()
    assert report.delivered == {p.event_id for p in pushes} and not report.gave_up
    assert report.stats["duplicated"] > 0 and report.stats["late"] > 0
    assert report.stats["http_502"] > 0 and report.stats["http_504"] > 0 and report.stats["retries"] > 0
    assert running.gateway is not None and running.gateway.gateway.stats["http_504"] == report.stats["http_504"]
    published = Counter(r[3] for r in publisher.records)
    assert set(published) == report.delivered and max(published.values()) == 1
    expected = {p.event_id: (p.order_id.encode(), envelope(p.order_id, p.body.decode())) for p in pushes}
    assert all((key, value) == expected[eid] for _, key, value, eid in publisher.records if eid is not None)
    assert rcv.metrics.value("ordertwin_webhook_deduplicated_total", source="carrier") > 0


async def test_gateway_forwards_answers_untouched(receiver: tuple[WebhookReceiver, str, FakePublisher]) -> None:
    _, url, publisher = receiver
    gateway = await serve_gateway(FaultyGateway(url, GatewayFaults(lost_answer_every=2)))
    try:
        param = waybill_param(generate_waybills(1, seed=1, start=T0, end=END)[0], 1)
        target = callback_url(gateway.url_for(url), "taobao:1")
        async with aiohttp.ClientSession() as http:
            for expected_status in (200, 504):
                async with http.post(target, data=push_form(param, "kd100-dev-salt")) as resp:
                    body = await resp.read()
                    assert resp.status == expected_status
                    assert kuaidi100_success(resp.status, body) == (expected_status == 200)
    finally:
        await gateway.close()
    assert len(publisher.records) == 1 and publisher.records[0][1] == b"taobao:1"


@dataclass
class TimedPublisher(FakePublisher):
    """Notes when each value reached the publisher."""

    arrivals: list[tuple[bytes, datetime]] = field(default_factory=list)

    def submit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Any = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> concurrent.futures.Future[RecordAck]:
        self.arrivals.append((value, datetime.now(UTC)))
        return super().submit(topic, key, value, headers, received_at=received_at, delivery_id=delivery_id)


async def test_scenario_records_are_pushed_on_time_or_after_the_outage() -> None:
    publisher = TimedPublisher()
    async for _, url in _receiver(publisher):
        await _play_scenario(url, publisher)


async def _play_scenario(url: str, publisher: TimedPublisher) -> None:
    arrivals = publisher.arrivals
    now = datetime.now(UTC)
    records = []
    for i, offset in enumerate((0.2, 0.4, 0.6)):
        o = make_identity(i, now - timedelta(days=1), random.Random(i), set())
        doc = carrier_push(o, [("1", now - timedelta(hours=3)), ("0", now)], address=o.addresses[0])
        at = now + timedelta(seconds=offset)
        records.append(ScenarioRecord(at, "carrier", o.tracking_no.encode(), dumps(doc), o.order_id))
    other = ScenarioRecord(now, "wms", b"DO1", b"{}", "taobao:1")  # not ours: ignored
    outage_end = now + timedelta(seconds=1.5)
    outages = [Outage("carrier", now + timedelta(seconds=0.3), outage_end)]  # covers the 2nd and 3rd
    running = await start_scenario_simulator(Settings(), [*records, other], outages=outages, target=url)
    try:
        report = await asyncio.wait_for(running.wait(), timeout=30)
    finally:
        await running.close()
    assert report.delivered == {push_of(r).event_id for r in records}
    assert len(arrivals) == 3 and arrivals[0][0] == records[0].value
    # Byte for byte the scenario's record, keyed by the order (the scenario's own key is the waybill).
    assert {(r[1], r[2]) for r in publisher.records} == {(r.order_id.encode(), r.value) for r in records}
    times = dict(arrivals)
    assert records[0].at <= times[records[0].value] < outage_end
    assert times[records[1].value] >= outage_end and times[records[2].value] >= outage_end
    assert push_of(records[0]).event_id == push_id(json.loads(records[0].value)["param"])
