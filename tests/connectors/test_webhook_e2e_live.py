"""Push sources end to end on the real broker, one run per source (shopify, shopee, douyin).

The simulator holds 300 orders with their histories. ``run_connector`` serves the webhook
receiver and runs the reconciliation pull concurrently; the simulator's sender delivers every
order change as a signed push with duplicates, shuffled and late deliveries, and 15% of the
pushes dropped outright, while the reconciliation API injects rate limits, HTTP 500s and
answers slower than the client's timeout (for 抖店 these also hit the push path, which fetches
each order: 503, and the sender retries). Afterwards an independent consumer must find every
order id in ``raw.<source>`` - including the orders whose pushes were all dropped (repaired by
reconciliation) - each record byte-identical to what the platform sent, each delivered push
published exactly once (dedup), and watermarks on every partition from the pull only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors import douyin, shopee, shopify  # noqa: F401 - the packages under test
from connectors.douyin.simulator import FaultConfig as DouyinFaults
from connectors.runner import run_connector, start_simulator
from connectors.shopee.simulator import FaultConfig as ShopeeFaults
from connectors.shopify.simulator import FaultConfig as ShopifyFaults
from connectors.webhook_sender import SenderFaults
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark, parse_raw_watermark
from tests.live import free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]

N_ORDERS = 300
SEND = SenderFaults(
    duplicate_rate=0.25,
    out_of_order=True,
    late_rate=0.1,
    late_delay_s=1.0,
    drop_rate=0.15,
    retry_delays_s=(0.1, 0.3, 0.6, 1.0, 2.0),
    concurrency=16,
)


@dataclass(frozen=True)
class Case:
    source: str
    faults: Any
    seed: int


CASES = [
    Case("shopify", ShopifyFaults(rate_limit_every=4, error_500_every=7, slow_every=9, slow_seconds=1.5,
                                  retry_after_s=0.2, bucket_size=0), 101),
    Case("shopee", ShopeeFaults(rate_limit_every=5, error_500_every=7, slow_every=11, slow_seconds=1.5), 202),
    Case("douyin", DouyinFaults(rate_limit_every=9, error_500_every=13, slow_every=17, slow_seconds=1.5), 303),
]  # fmt: skip


def allowed_values(source: str, sim: Any) -> dict[str, set[bytes]]:
    """Per order id, every byte string the platform ever sent for it (push bodies, API records)."""
    out: dict[str, set[bytes]] = defaultdict(set)
    for key, raw in sim.store.raw_by_key().items():
        out[key].add(raw)
    if source != "douyin":  # 抖店 pushes are resolved to the order detail: only API records
        for push in sim.pushes(seed=0):
            out[push.order_id].add(push.body)
    return out


async def wait_until_port_open(port: int, within_s: float = 20.0) -> None:
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


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
async def test_pushes_with_faults_and_reconciliation_deliver_every_order(live_settings: Settings, case: Case) -> None:
    source = case.source
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    start = end - timedelta(hours=6)
    running = await start_simulator(
        source, live_settings, n_orders=N_ORDERS, seed=case.seed, start=start, end=end, faults=case.faults,
        host="127.0.0.1", port=0,
    )  # fmt: skip
    sim = running.simulator
    port = free_port()
    settings = live_settings.model_copy(
        update={
            f"{source}_base_url": running.url,
            f"{source}_webhook_port": port,
            f"{source}_page_size": 100,
            "pull_start": (start - timedelta(minutes=30)).isoformat(),
            "pull_window_s": 3600.0,
            "pull_safety_lag_s": 1.0,
            "poll_interval_s": 0.5,
            "backoff_s": (0.05, 0.1, 0.2, 0.4, 0.8, 1.6),
            "connector_http_timeout_s": 1.0,
            "connector_metrics_port": 0,
            "webhook_ack_timeout_s": 4.0,
        }
    )
    topic = Catalogue.from_settings(settings).raw(source).name
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_connector(source, settings, stop=stop, registry=registry))
    try:
        await wait_until_port_open(port)
        url = f"http://127.0.0.1:{port}/webhooks/{source}"
        pushes = sim.pushes(seed=0)
        report = await sim.send_pushes(url, SEND, seed=case.seed, pushes=pushes)
        assert report.dropped and report.stats["duplicated"] > 0 and report.stats["late"] > 0
        assert len(report.delivered) > len(pushes) // 2

        # Wait for the reconciliation pull to have caught up past the data window.
        ids = set(sim.store.raw_by_key())
        deadline = time.monotonic() + 120
        while True:
            assert not task.done(), task.exception() if task.done() else None
            messages = read_topic(settings, topic, idle_s=1.0)
            data = [m for m in messages if not is_watermark(dict(m.headers() or []))]
            marks = [parse_raw_watermark(m.value())[0] for m in messages if is_watermark(dict(m.headers() or []))]
            if {m.key().decode() for m in data} >= ids and marks and max(marks) >= end:
                break
            assert time.monotonic() < deadline, f"missing {len(ids - {m.key().decode() for m in data})} orders"
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await running.close()

    # Every order is there, including those no push reached: reconciliation repaired them.
    messages = read_topic(settings, topic, idle_s=1.0)
    data = [m for m in messages if not is_watermark(dict(m.headers() or []))]
    assert {m.key().decode() for m in data} == ids
    pushed_orders = {p.order_id for p in pushes if p.event_id in report.delivered}
    assert ids - pushed_orders, "some orders must have depended on reconciliation alone"
    # Byte-identical to what the platform sent (a push body or an API record of that order).
    allowed = allowed_values(source, sim)
    assert all(m.value() in allowed[m.key().decode()] for m in data)
    # Each push the platform saw acknowledged was published exactly once (dedup across
    # duplicates, retries and late copies); delivery_id is the platform's id.
    push_ids = {p.event_id for p in pushes}
    published = Counter(
        dict(m.headers())["delivery_id"].decode() for m in data if dict(m.headers())["delivery_id"].decode() in push_ids
    )
    assert set(published) == report.delivered
    assert max(published.values()) == 1
    # Watermarks come from the pull only, on every partition, after the data they vouch for.
    control = [m for m in messages if is_watermark(dict(m.headers() or []))]
    assert {m.partition() for m in control} == set(range(settings.partitions))
    assert all(dict(m.headers())["delivery_id"].decode() not in push_ids for m in control)
    # The faults happened, and were survived.
    assert sim.stats["rate_limited"] > 0 and sim.stats["http_500"] > 0 and sim.stats["slow"] > 0
    sample = registry.get_sample_value
    assert sample("ordertwin_webhook_requests_total", {"source": source, "outcome": "accepted"}) == len(published)
    assert sample("ordertwin_webhook_requests_total", {"source": source, "outcome": "duplicate"}) > 0
    assert sample("ordertwin_webhook_publish_latency_seconds_count", {"source": source}) == len(published)
    assert sample("ordertwin_connector_requests_total", {"source": source, "outcome": "rate_limited"}) > 0
    assert sample("ordertwin_connector_requests_total", {"source": source, "outcome": "transient"}) > 0
    if source == "douyin":  # pushes are resolved through the faulty API: 503 and platform retries
        assert sample("ordertwin_webhook_requests_total", {"source": source, "outcome": "upstream_unavailable"}) > 0
        assert report.stats["retries"] > 0
