"""The push-only WMS connector end to end on the real broker.

``run_connector("wms")`` serves the 奇门 receiver and vouches for the source; the simulated WMS
pushes every Qimen call of its delivery orders through a Qimen gateway that answers 502
before forwarding (the receiver never saw the call) and 504 after forwarding (the answer is
lost: the redelivery must be deduplicated), with duplicate, shuffled and late deliveries.
An independent consumer then finds every call exactly once in ``raw.wms``, byte-identical to
the envelope of the call, each one accepted by the WMS normaliser; watermarks were published
while the WMS was heard, and none after it has been silent for longer than ``push_silence_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors.runner import run_connector, start_simulator
from connectors.webhook_sender import SenderFaults
from connectors.wms.simulator import GatewayFaults, RunningSimulator, WmsFaults
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from tests.helpers import CODEC, FP
from tests.live import free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]

N_ORDERS = 80  # about 300-350 Qimen calls
FAULTS = WmsFaults(
    send=SenderFaults(
        duplicate_rate=0.25,
        out_of_order=True,
        late_rate=0.1,
        late_delay_s=1.0,
        retry_delays_s=(0.1, 0.3, 0.6, 1.0, 2.0, 3.0, 5.0, 5.0),
        concurrency=16,
        timeout_s=10.0,
    ),
    gateway=GatewayFaults(error_before_every=7, error_after_every=11),
)
SILENCE_S = 3.0
INTERVAL_S = 0.3
SLACK_S = 1.0


async def wait_until_port_open(port: int, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


def split(messages: list[Any]) -> tuple[list[Any], list[Any]]:
    data = [m for m in messages if not is_watermark(dict(m.headers() or []))]
    marks = [m for m in messages if is_watermark(dict(m.headers() or []))]
    return data, marks


async def read(settings: Settings, topic: str) -> list[Any]:
    # In a thread: the receiver and its vouching loop run on this event loop meanwhile.
    return await asyncio.to_thread(read_topic, settings, topic, idle_s=1.0)


async def test_every_qimen_call_exactly_once_and_watermarks_only_while_heard(live_settings: Settings) -> None:
    port = free_port()
    settings = live_settings.model_copy(
        update={
            "webhook_host": "127.0.0.1",
            "wms_webhook_port": port,
            "push_watermark_interval_s": INTERVAL_S,
            "push_slack_s": SLACK_S,
            "push_silence_s": SILENCE_S,
            "connector_metrics_port": 0,
            "webhook_ack_timeout_s": 4.0,
        }
    )
    topic = Catalogue.from_settings(settings).raw("wms").name
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_connector("wms", settings, stop=stop, registry=registry))
    running: RunningSimulator | None = None
    try:
        await wait_until_port_open(port)
        await asyncio.sleep(3 * INTERVAL_S)
        _, marks = split(await read(settings, topic))
        assert marks == [], "never heard: nothing to vouch for"

        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        running = await start_simulator(
            "wms", settings, n_orders=N_ORDERS, seed=4242, start=end - timedelta(hours=6), end=end,
            faults=FAULTS, host="127.0.0.1", port=0,
        )  # fmt: skip
        report = await asyncio.wait_for(running.finished(), timeout=240)
        went_quiet = datetime.now(UTC)  # the WMS's last request was answered before this
        assert not task.done(), task.exception() if task.done() else None

        # Silent for longer than push_silence_s: the receiver must have stopped vouching.
        await asyncio.sleep(SILENCE_S + 4 * INTERVAL_S + 1.0)
        messages = await read(settings, topic)
        await asyncio.sleep(6 * INTERVAL_S + 1.0)
        later = await read(settings, topic)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        if running is not None:
            await running.close()

    sim = running.simulator
    calls = {c.event_id: c for c in sim.calls}
    expected = sim.expected()
    assert len(calls) >= 300
    # The faults happened, and no call was lost to them.
    assert report.delivered == set(calls) and not report.gave_up and not report.dropped
    assert report.stats["duplicated"] > 0 and report.stats["late"] > 0
    assert report.stats["http_502"] > 0 and report.stats["http_504"] > 0
    assert running.gateway.stats["error_before"] > 0 and running.gateway.stats["error_after"] > 0

    # Every call exactly once, byte-identical to its envelope, keyed by its ERP document.
    data, marks = split(messages)
    ids = Counter(dict(m.headers())["delivery_id"].decode() for m in data)
    assert set(ids) == set(calls) and max(ids.values()) == 1 and len(data) == len(calls)
    for m in data:
        call_id = dict(m.headers())["delivery_id"].decode()
        assert m.value() == expected[call_id]
        assert m.key() == calls[call_id].ref.encode()
    # Every record passes the WMS normaliser.
    for m in data:
        raw = RawRecord("wms", m.topic(), m.partition(), m.offset(), m.key(), m.value(), dict(m.headers()))
        outcome = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=settings.webhook_max_body_bytes)
        assert outcome.rejection is None, (outcome.rejection, m.value()[:300])
    sample = registry.get_sample_value
    assert sample("ordertwin_webhook_requests_total", {"source": "wms", "outcome": "accepted"}) == len(calls)
    duplicates = sample("ordertwin_webhook_requests_total", {"source": "wms", "outcome": "duplicate"}) or 0
    # Each extra copy and each redelivery after a lost answer was answered "duplicate", not republished.
    assert duplicates >= report.stats["duplicated"] + running.gateway.stats["error_after"]

    # Watermarks while heard, on every partition; none vouching past the silence.
    assert marks, "the receiver vouched for the WMS while it was heard"
    assert {m.partition() for m in marks} == set(range(settings.partitions))
    vouched = [parse_raw_watermark(m.value())[0] for m in marks]
    assert max(vouched) <= went_quiet + timedelta(seconds=SILENCE_S - SLACK_S)
    _, marks_later = split(later)
    assert len(marks_later) == len(marks), "a watermark was published after the WMS went quiet"
