"""The carrier (快递100) push-only connector on the real broker.

``run_connector("carrier")`` serves the receiver and vouches for the source. The simulator
pushes the traces of 300 waybills (揽收 -> 在途 -> 派件 -> 签收, some 退回/退签: over a thousand
pushes) as signed forms to per-waybill callback URLs, through a gateway answering 502 (never
forwarded) and 504 (forwarded, answer lost) and a sender adding duplicates, shuffling and late
deliveries. An independent consumer must then find every push exactly once in ``raw.carrier``
(control records aside) - byte for byte the envelope of what Kuaidi100 sent, keyed by the order
reference - plus the receiver's in-band watermarks vouching past the last push, and every
record must pass the carrier normaliser. A forged push sent alongside never lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.carrier.push import FAIL_BODY, envelope
from connectors.carrier.signing import push_sign
from connectors.carrier.simulator import FaultConfig, GatewayFaults, callback_url
from connectors.runner import run_connector, start_simulator
from connectors.webhook_sender import SenderFaults
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from tests.connectors.test_webhook_e2e_live import wait_until_port_open
from tests.helpers import CODEC, FP
from tests.live import free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]

N_WAYBILLS = 300
FAULTS = FaultConfig(
    sender=SenderFaults(
        duplicate_rate=0.25,
        out_of_order=True,
        late_rate=0.1,
        late_delay_s=1.0,
        retry_delays_s=(0.1, 0.3, 0.6, 1.0, 2.0, 2.0, 2.0, 2.0),
        concurrency=16,
        timeout_s=20.0,  # Kuaidi100 waits 20 s for an answer
    ),
    gateway=GatewayFaults(error_502_every=7, lost_answer_every=11),
)
SLACK_S = 1.0


def headers_of(message: object) -> dict[str, bytes]:
    return dict(message.headers() or [])  # type: ignore[attr-defined]


async def test_every_push_lands_exactly_once_with_watermarks(live_settings: Settings) -> None:
    port = free_port()
    settings = live_settings.model_copy(
        update={
            "carrier_webhook_port": port,
            "push_watermark_interval_s": 0.5,
            "push_slack_s": SLACK_S,
            "push_silence_s": 120.0,
            "connector_metrics_port": 0,
            "webhook_ack_timeout_s": 4.0,
        }
    )
    topic = Catalogue.from_settings(settings).raw("carrier").name
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_connector("carrier", settings, stop=stop, registry=registry))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    try:
        await wait_until_port_open(port)
        running = await start_simulator(
            "carrier", settings, n_orders=N_WAYBILLS, seed=404, start=end - timedelta(hours=6), end=end,
            faults=FAULTS, host="127.0.0.1", port=0,
        )  # fmt: skip
        try:
            # A forger who knows the route and an order id, but not the salt.
            forged_param = '{"status":"shutdown","lastResult":{"nu":"SF0000000000000","state":"3","data":[]}}'
            forged = urlencode({"param": forged_param, "sign": push_sign(forged_param, "guess")}).encode()
            receiver = f"http://127.0.0.1:{port}/webhooks/carrier"
            target = callback_url(receiver, "taobao:3987215540123456829")
            async with aiohttp.ClientSession() as http, http.post(target, data=forged) as resp:
                assert (resp.status, await resp.read()) == (401, FAIL_BODY)
            report = await asyncio.wait_for(running.wait(), timeout=600)
        finally:
            await running.close()
        sent_by = datetime.now(UTC)
        pushes = running.simulator.pushes()
        assert len(pushes) > N_WAYBILLS
        assert report.delivered == {p.event_id for p in pushes} and not report.gave_up
        assert report.stats["duplicated"] > 0 and report.stats["late"] > 0 and report.stats["retries"] > 0
        assert report.stats["http_502"] > 0 and report.stats["http_504"] > 0

        # Everything published, and a watermark vouching past the last push.
        ids = {p.event_id for p in pushes}
        deadline = time.monotonic() + 120
        while True:
            assert not task.done(), task.exception() if task.done() else None
            messages = read_topic(settings, topic, idle_s=1.0)
            seen = {headers_of(m)["delivery_id"].decode() for m in messages if not is_watermark(headers_of(m))}
            marks = [parse_raw_watermark(m.value())[0] for m in messages if is_watermark(headers_of(m))]
            if seen >= ids and marks and max(marks) >= sent_by - timedelta(seconds=SLACK_S):
                break
            assert time.monotonic() < deadline, f"{len(ids - seen)} pushes missing, watermarks {len(marks)}"
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)

    messages = read_topic(settings, topic, idle_s=1.0)
    data = [m for m in messages if not is_watermark(headers_of(m))]
    control = [m for m in messages if is_watermark(headers_of(m))]
    # Exactly once per push, byte for byte, keyed by the order reference.
    per_id = Counter(headers_of(m)["delivery_id"].decode() for m in data)
    assert set(per_id) == ids and max(per_id.values()) == 1 and len(data) == len(pushes)
    expected = {p.event_id: (p.order_id.encode(), envelope(p.order_id, p.body.decode())) for p in pushes}
    for m in data:
        assert (m.key(), m.value()) == expected[headers_of(m)["delivery_id"].decode()]
    # In-band watermarks from the receiver, on every partition, well-formed.
    assert control and {m.partition() for m in control} == set(range(settings.partitions))
    assert all(parse_raw_watermark(m.value())[1] == settings.partitions for m in control)
    # Every record passes the carrier normaliser: one OrderEvent per order the parcel ships.
    for m in data:
        raw = RawRecord("carrier", topic, m.partition(), m.offset(), m.key(), m.value(), headers_of(m))
        outcome = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=settings.max_raw_bytes)
        assert outcome.rejection is None, outcome.rejection
        assert len(outcome.orders) == m.key().count(b",") + 1
    # The receiver saw the faults and survived them.
    sample = registry.get_sample_value
    requests = "ordertwin_webhook_requests_total"
    assert sample(requests, {"source": "carrier", "outcome": "accepted"}) == len(pushes)
    assert sample(requests, {"source": "carrier", "outcome": "duplicate"}) >= report.stats["http_504"]
    assert sample(requests, {"source": "carrier", "outcome": "bad_signature"}) == 1
    assert sample("ordertwin_webhook_publish_latency_seconds_count", {"source": "carrier"}) == len(pushes)
    logging.getLogger(__name__).info(
        "carrier live: %d waybills, %d pushes, %d records, %d watermark records; sender %s",
        N_WAYBILLS, len(pushes), len(data), len(control), dict(report.stats),
    )  # fmt: skip
