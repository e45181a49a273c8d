"""The WMS simulator without a broker: generated calls pass the normaliser; delivery through
the Qimen gateway's 5xx, duplicates and shuffling reaches the receiver exactly once; the
scenario hook pushes each record at its time, or after an outage covering it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.publish import RecordAck
from connectors.scenario import Outage, ScenarioRecord, generate
from connectors.scenario import payloads as p
from connectors.webhook import RunningReceiver, WebhookMetrics, WebhookReceiver, serve_receiver
from connectors.webhook_sender import SenderFaults
from connectors.wms import signing
from connectors.wms.push import call_key, make_spec, parse_call, short_method
from connectors.wms.simulator import (
    WMS_SECRET,
    GatewayFaults,
    WmsSimulator,
    call_from_record,
    due_at,
    generate_calls,
    qimen_success,
    start_scenario_simulator,
)
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from tests.helpers import CODEC, FP

SETTINGS = Settings()
END = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)
START = END - timedelta(hours=6)


def normalised(value: bytes, offset: int = 0) -> Any:
    raw = RawRecord("wms", "raw.wms", 0, offset, None, value, {"received_at": END.isoformat().encode()})
    return normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)


def test_generated_calls_are_realistic_and_all_pass_the_normaliser() -> None:
    calls = generate_calls(120, seed=7, start=START, end=END)
    assert calls == generate_calls(120, seed=7, start=START, end=END)  # reproducible
    assert len(calls) >= 300 and len({c.event_id for c in calls}) == len(calls)
    assert all(START <= c.at <= END for c in calls) and calls == sorted(calls, key=lambda c: c.at)
    methods = Counter(short_method(c.method) for c in calls)
    assert set(methods) == {
        "orderprocess.report",
        "deliveryorder.confirm",
        "stockchange.report",
        "returnorder.confirm",
        "inventory.report",
    }
    statuses: Counter[str] = Counter()
    for i, call in enumerate(calls):
        outcome = normalised(call.envelope("k", "c"), i)
        assert outcome.rejection is None, (outcome.rejection, call.body[:200])
        parsed = parse_call(f"http://h/w?{signing.signed_query(call.params('k', 'c'), call.body, 's')}", call.body)
        assert call_key(parsed) == call.ref.encode()  # the receiver keys it by the document it is about
        statuses.update(CODEC.decode_as("OrderEvent", e.value)["raw_status"] for e in outcome.orders)
    for status in ("ACCEPT", "PICK", "PACKAGE", "DELIVERED", "SIGN", "CANCELED", "CANCELEDFAIL", "TMSCANCELED", "THRK"):
        assert statuses[status] > 0, status
    # One delivery order's facts are a second or more apart and in order.
    per_order: dict[str, list[datetime]] = {}
    for call in calls:
        if short_method(call.method) == "orderprocess.report":
            per_order.setdefault(call.ref, []).append(call.at)
    assert all(len(set(ts)) == len(ts) for ts in per_order.values())


def test_qimen_success_needs_2xx_and_flag_success() -> None:
    assert qimen_success(200, b'{"response":{"flag":"success","code":"0"}}')
    assert not qimen_success(200, b'{"response":{"flag":"failure","code":"-1"}}')
    assert not qimen_success(200, b"ok")
    assert not qimen_success(503, b'{"response":{"flag":"success"}}')


@dataclass
class TimedPublisher:
    """Acknowledges at once and notes what was published, and when."""

    records: list[tuple[bytes | None, bytes, str | None, datetime]] = field(default_factory=list)

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
        future: concurrent.futures.Future[RecordAck] = concurrent.futures.Future()
        self.records.append((key, value, delivery_id, datetime.now(UTC)))
        future.set_result(RecordAck(topic, 0, len(self.records) - 1))
        return future


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[RunningReceiver, TimedPublisher]]:
    publisher = TimedPublisher()
    spec = make_spec(SETTINGS)
    running = await serve_receiver(
        WebhookReceiver(spec, publisher, topic="raw.wms", metrics=WebhookMetrics(CollectorRegistry())),
        "127.0.0.1",
        0,
    )
    try:
        yield running, publisher
    finally:
        await running.runner.cleanup()


async def test_every_call_reaches_the_receiver_once_through_gateway_5xx_and_duplicates(
    receiver: tuple[RunningReceiver, TimedPublisher],
) -> None:
    running, publisher = receiver
    now = datetime.now(UTC).replace(microsecond=0)
    sim = WmsSimulator.from_settings(SETTINGS, generate_calls(40, seed=11, start=now - timedelta(hours=3), end=now))
    gateway = await sim.gateway(running.url, GatewayFaults(error_before_every=5, error_after_every=7)).start(
        "127.0.0.1", 0
    )
    faults = SenderFaults(
        duplicate_rate=0.3, out_of_order=True, late_rate=0.1, late_delay_s=0.2, retry_delays_s=(0.05,) * 8
    )
    try:
        report = await sim.send(gateway, faults, seed=3)
    finally:
        await gateway.close()
    expected = sim.expected()
    assert report.delivered == set(expected) and not report.gave_up
    assert report.stats["duplicated"] > 0 and report.stats["http_502"] > 0 and report.stats["http_504"] > 0
    assert gateway.stats["error_before"] > 0 and gateway.stats["error_after"] > 0
    published = Counter(r[2] for r in publisher.records)
    assert set(published) == set(expected) and max(published.values()) == 1
    assert all(value == expected[str(delivery_id)] for _, value, delivery_id, _ in publisher.records)
    duplicates = running.receiver.metrics.value("ordertwin_webhook_requests_total", source="wms", outcome="duplicate")
    assert duplicates >= gateway.stats["error_after"]  # each lost answer's redelivery was deduplicated


# --- the scenario hook ---------------------------------------------------------------------------


def _scenario_wms_records() -> list[ScenarioRecord]:
    scenario = generate(
        seed=5,
        n_orders=40,
        start=END,
        span=timedelta(seconds=120),
        threshold=timedelta(seconds=5),
        fault_rate=0.3,
    )
    return [r for r in scenario.records if r.source == "wms"]


def test_scenario_records_become_calls_publishing_the_same_record() -> None:
    records = _scenario_wms_records()
    queries = [r for r in records if json.loads(r.value)["method"].endswith("deliveryorder.query")]
    assert queries and len(queries) < len(records)
    for i, record in enumerate(records):
        call = call_from_record(record)
        assert call.ref == record.key.decode() and call.at == record.at
        envelope = call.envelope(p.QIMEN_APP_KEY, p.QIMEN_CUSTOMER_ID)
        got, want = normalised(envelope, i), normalised(record.value, i)
        assert got.rejection is None and want.rejection is None
        # Same canonical facts (event ids and all) whichever way the record travels.
        assert [e.record for e in got.orders] == [e.record for e in want.orders]
        if record not in queries:  # signed for the scenario's app: the very same bytes
            assert envelope == record.value
        else:  # a query response is pushed as the equivalent confirmation
            assert short_method(call.method) == "deliveryorder.confirm"


def test_due_at_moves_records_to_the_end_of_chained_wms_outages() -> None:
    t = END
    outages = [
        Outage("wms", t, t + timedelta(seconds=10)),
        Outage("wms", t + timedelta(seconds=10), t + timedelta(seconds=20)),
        Outage("carrier", t + timedelta(seconds=20), t + timedelta(seconds=60)),
    ]
    assert due_at(t - timedelta(seconds=1), outages) == t - timedelta(seconds=1)
    assert due_at(t + timedelta(seconds=3), outages) == t + timedelta(seconds=20)
    assert due_at(t + timedelta(seconds=25), outages) == t + timedelta(seconds=25)  # another source's outage


async def test_scenario_simulator_pushes_on_time_and_after_an_outage(
    receiver: tuple[RunningReceiver, TimedPublisher],
) -> None:
    running, publisher = receiver
    records = _scenario_wms_records()[:12]
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    first = records[0].at
    # Re-time the records into the next few seconds (whole seconds, order kept), event times included.
    retimed = []
    for r in records:
        at = base + timedelta(seconds=(r.at - first).total_seconds() // 4)
        value = r.value.replace(p.china(r.at).encode(), p.china(at).encode())
        retimed.append(ScenarioRecord(at=at, source="wms", key=r.key, value=value, order_id=r.order_id))
    outage = Outage("wms", retimed[3].at, retimed[3].at + timedelta(seconds=3))
    assert sum(outage.covers("wms", r.at) for r in retimed) >= 1
    sim = await start_scenario_simulator(
        SETTINGS,
        retimed,
        outages=[outage, Outage("carrier", base, base + timedelta(hours=1))],
        host="127.0.0.1",
        port=0,
        target=running.url,
    )
    try:
        report = await asyncio.wait_for(sim.finished(), timeout=60)
    finally:
        await sim.close()
    assert sim.pushed == len(retimed) and len(report.delivered) == len(retimed)
    expected = {call_from_record(r).event_id: r for r in retimed}
    assert {r[2] for r in publisher.records} == set(expected)
    for _, _, delivery_id, published_at in publisher.records:
        record = expected[str(delivery_id)]
        due = due_at(record.at, [outage])
        assert published_at >= due - timedelta(milliseconds=50)  # never early
        assert published_at < due + timedelta(seconds=5)  # generous: a loaded machine
        if outage.covers("wms", record.at):
            assert due == outage.end


async def test_gateway_checks_the_wms_signature_and_re_signs_for_the_erp(
    receiver: tuple[RunningReceiver, TimedPublisher],
) -> None:
    running, publisher = receiver
    now = datetime.now(UTC).replace(microsecond=0)
    [call] = generate_calls(1, seed=1, start=now - timedelta(minutes=30), end=now)[:1]
    sim = WmsSimulator.from_settings(SETTINGS, [call])
    gateway = await sim.gateway(running.url).start("127.0.0.1", 0)
    params = call.params(SETTINGS.wms_app_key, SETTINGS.wms_customer_id)
    try:
        async with aiohttp.ClientSession() as http:
            # Signed with the ERP's secret instead of the WMS's own: the gateway refuses it.
            query = signing.signed_query(params, call.body, SETTINGS.wms_app_secret.get_secret_value())
            async with http.post(f"{gateway.url}?{query}", data=call.body) as resp:
                assert resp.status == 401 and not qimen_success(resp.status, await resp.read())
            assert gateway.stats["bad_sign"] == 1 and publisher.records == []
            # Signed by the WMS: forwarded with the same parameters and a sign for the ERP app.
            query = signing.signed_query(params, call.body, WMS_SECRET)
            async with http.post(f"{gateway.url}?{query}", data=call.body) as resp:
                assert qimen_success(resp.status, await resp.read())
    finally:
        await gateway.close()
    assert [r[1] for r in publisher.records] == [call.envelope(SETTINGS.wms_app_key, SETTINGS.wms_customer_id)]
    forwarded = signing.query_params(str(gateway.forward_url(params, call.body)))
    assert {k: v for k, v in forwarded.items() if k != "sign"} == params
    assert forwarded["sign"] == signing.sign(params, call.body, SETTINGS.wms_app_secret.get_secret_value())
