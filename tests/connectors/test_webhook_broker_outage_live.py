"""Kafka goes away while Shopify is pushing: the receiver answers 503, the platform retries, and
once the broker is back every delivery is on ``raw.shopify`` exactly once.

Runs against a SECOND, private broker (ports 19092/19093, its own data dir) that this module
starts and stops, so the shared broker on 9092 other tests use is never touched.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from connectors.shopify.simulator import ShopifySimulator, generate_histories
from connectors.webhook import open_receiver
from connectors.webhook_sender import SenderFaults
from ordertwin.admin import create_topics
from ordertwin.settings import REPO_ROOT, Settings
from ordertwin.topics import Catalogue
from tests.conftest import broker_answers
from tests.live import free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]

KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"
PRIVATE_PORT, PRIVATE_CONTROLLER_PORT = 19092, 19093
BOOTSTRAP = f"127.0.0.1:{PRIVATE_PORT}"


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], None]]:
    """``ctl("up")`` / ``ctl("down")`` for a broker of our own; down again at the end."""
    data_dir: Path = tmp_path_factory.mktemp("kafka-private")
    env = {
        **os.environ,
        "KAFKA_PORT": str(PRIVATE_PORT),
        "KAFKA_CONTROLLER_PORT": str(PRIVATE_CONTROLLER_PORT),
        "KAFKA_DATA_DIR": str(data_dir),
    }

    def ctl(command: str) -> None:
        subprocess.run(["bash", str(KAFKA_SH), command], env=env, check=True, timeout=240)

    ctl("up")
    try:
        assert broker_answers(BOOTSTRAP, timeout=20), "private broker did not come up"
        yield ctl
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "down"], env=env, check=False, timeout=240)


async def test_broker_outage_is_503_then_every_delivery_lands(private_broker: Callable[[str], None]) -> None:
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=BOOTSTRAP,
        topic_prefix=f"t{run}.",
        connector_instance=f"outage-{run}",
        shopify_webhook_port=free_port(),
        webhook_ack_timeout_s=1.0,
    )
    topic = Catalogue.from_settings(settings).raw("shopify")
    create_topics(settings.kafka_config(), [topic])
    now = datetime.now(UTC).replace(microsecond=0)
    sim = ShopifySimulator.from_settings(settings)
    sim.load(generate_histories(80, seed=9, start=now - timedelta(hours=2), end=now))
    pushes = sim.pushes(seed=9)
    before, during = pushes[: len(pushes) // 2], pushes[len(pushes) // 2 :]
    registry = CollectorRegistry()

    def unavailable() -> float:
        labels = {"source": "shopify", "outcome": "kafka_unavailable"}
        return registry.get_sample_value("ordertwin_webhook_requests_total", labels) or 0.0

    async with open_receiver("shopify", settings, registry=registry) as running:
        first = await sim.send_pushes(running.url, SenderFaults(), pushes=before)
        assert first.delivered == {p.event_id for p in before}
        await asyncio.to_thread(private_broker, "down")
        # Shopify-like retries: many, growing, jittered (8 over 4 hours on Shopify; seconds here).
        patient = SenderFaults(concurrency=4, retry_delays_s=(1.0, 2.0, 4.0, 6.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0))
        sending = asyncio.create_task(sim.send_pushes(running.url, patient, seed=1, pushes=during))
        deadline = time.monotonic() + 60
        while unavailable() < 8:
            assert time.monotonic() < deadline, "the receiver never answered 503 while the broker was down"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(private_broker, "up")
        second = await asyncio.wait_for(sending, timeout=180)
        assert running.receiver.in_flight == 0

    assert second.stats["http_503"] >= 8 and second.stats["retries"] >= 8
    assert second.delivered == {p.event_id for p in during} and not second.gave_up
    messages = read_topic(settings, topic.name, idle_s=2.0)
    published = Counter(dict(m.headers())["delivery_id"].decode() for m in messages)
    assert set(published) == {p.event_id for p in pushes}
    assert max(published.values()) == 1  # retries joined the copy in flight: no duplicates
    bodies = {p.event_id: p.body for p in pushes}
    assert all(m.value() == bodies[dict(m.headers())["delivery_id"].decode()] for m in messages)
