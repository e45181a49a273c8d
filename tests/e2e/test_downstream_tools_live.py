"""The tools we hand downstream teams work against a real topic: the example consumer and
``ordertwin tail``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from ordertwin.settings import REPO_ROOT, Settings
from ordertwin.topics import Catalogue
from streams.control import CONTROL_HEADER, WATERMARK
from tests.helpers import CODEC
from tests.live import settings_env
from tests.ordertwin.test_avro import EVENT

pytestmark = pytest.mark.live


def _fill(settings: Settings) -> str:
    topic = Catalogue.from_settings(settings).orders_events.name
    producer = Producer(settings.kafka_config())
    for i in range(3):
        producer.produce(
            topic, key=f"taobao:{i}".encode(), value=CODEC.encode("OrderEvent", {**EVENT, "order_id": f"taobao:{i}"})
        )
    wm = {"source": "taobao", "raw_partition": 0, "raw_partitions": 1, "watermark": datetime.now(UTC), "connector": "t"}
    producer.produce(
        topic, key=b"__watermark__:taobao", value=CODEC.encode("Watermark", wm), headers={CONTROL_HEADER: WATERMARK}
    )
    assert producer.flush(10) == 0
    return topic


def test_example_consumer_decodes_order_events(live_settings: Settings) -> None:
    topic = _fill(live_settings)
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docs" / "example_consumer.py"), live_settings.bootstrap_servers, topic, "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = sorted(out.stdout.splitlines())
    assert lines == [f"taobao:{i} taobao PAID {EVENT['event_time'].isoformat()}" for i in range(3)]


def test_tail_prints_decoded_json_lines(live_settings: Settings) -> None:
    _fill(live_settings)
    out = subprocess.run(
        [sys.executable, "-m", "ordertwin.cli", "tail", "orders.events", "--from-beginning"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=settings_env(live_settings),
    )
    records = [json.loads(line) for line in out.stdout.splitlines()]
    schemas = sorted(r["schema"] for r in records)
    assert schemas == ["ordertwin.OrderEvent"] * 3 + ["ordertwin.Watermark"]
    assert {r["value"]["order_id"] for r in records if r["schema"] == "ordertwin.OrderEvent"} == {
        "taobao:0",
        "taobao:1",
        "taobao:2",
    }
