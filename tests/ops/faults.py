"""Live fault injection shared by the ops-page, Prometheus and notifier live tests.

Everything goes through the real broker into ``raw.*``, exactly as connectors write it, so the
real worker normalises it, updates the twin and raises real alerts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from confluent_kafka import Producer

from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import CONTROL_HEADER, WATERMARK, raw_watermark_value
from tests.helpers import fixture_json

CST = timezone(timedelta(hours=8))  # Taobao times are Beijing time


def _producer(settings: Settings) -> Producer:
    return Producer({**settings.kafka_config(), "acks": "all", "enable.idempotence": True})


def _flush(producer: Producer) -> None:
    left = producer.flush(30)
    assert left == 0, f"{left} record(s) not acknowledged"


def paid_taobao_order(tid: int, paid_at: datetime) -> dict[str, Any]:
    """A real Taobao trade (golden fixture) paid at ``paid_at``: the channel says PAID."""
    doc: dict[str, Any] = fixture_json("taobao", "wait_seller_send_goods.json")
    local = paid_at.astimezone(CST)
    doc["tid"] = tid
    doc["created"] = (local - timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S")
    doc["pay_time"] = local.strftime("%Y-%m-%d %H:%M:%S")
    doc["modified"] = local.strftime("%Y-%m-%d %H:%M:%S")
    return doc


def publish_watermarks(settings: Settings, sources: list[str], at: datetime, producer: Producer | None = None) -> None:
    """Each source vouches, on every raw partition, that its data is complete up to ``at``."""
    catalogue = Catalogue.from_settings(settings)
    own = producer is None
    producer = producer or _producer(settings)
    for source in sources:
        for partition in range(settings.partitions):
            producer.produce(
                catalogue.raw(source).name,
                key=f"__watermark__:{source}".encode(),
                value=raw_watermark_value(at, settings.partitions, "ops-test"),
                partition=partition,
                headers=[(CONTROL_HEADER, WATERMARK), ("source", source.encode())],
            )
    if own:
        _flush(producer)


def inject_divergence(settings: Settings, tid: int, *, paid_ago: timedelta = timedelta(minutes=20)) -> str:
    """A paid Taobao order that OMS, WMS and finance never hear of, while they all vouch that
    their data is complete up to now: the worker raises paid_not_in_oms / _wms / _finance for it
    as soon as the threshold (settings.divergence_threshold_s) has passed. Returns the order id."""
    now = datetime.now(UTC)
    producer = _producer(settings)
    doc = paid_taobao_order(tid, now - paid_ago)
    producer.produce(
        Catalogue.from_settings(settings).raw("taobao").name,
        key=str(tid).encode(),
        value=json.dumps(doc, ensure_ascii=False).encode(),
        headers=[("source", b"taobao"), ("received_at", now.isoformat().encode()), ("connector", b"ops-test")],
    )
    _flush(producer)
    publish_watermarks(settings, ["oms", "wms", "finance"], now, producer)
    _flush(producer)
    return f"taobao:{tid}"


def inject_garbage(settings: Settings, n: int, *, source: str = "taobao", start: int = 0) -> None:
    """``n`` raw records that the normaliser must dead-letter (not JSON)."""
    producer = _producer(settings)
    topic = Catalogue.from_settings(settings).raw(source).name
    for i in range(start, start + n):
        producer.produce(topic, key=f"garbage-{i}".encode(), value=b"\x00not json " + str(i).encode())
    _flush(producer)
