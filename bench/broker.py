"""Broker-side helpers of the benchmarks: throwaway topics, pre-loading, offsets, timestamps.

Every benchmark runs on its own topic prefix and consumer group (like the live tests) and
deletes its topics afterwards, so runs never see each other's records.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.payloads import Raw
from ordertwin.admin import create_topics, delete_topics
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue, TopicSpec
from streams.orders.agents import partition_for

SINK = "bench.sink"  # where the passthrough writes
FLOOR_SINK = "bench.floor"  # where the Faust floor (bench.faust_floor) writes


@dataclass(frozen=True)
class Deployment:
    """One throwaway deployment: settings, its catalogue and the passthrough sink."""

    settings: Settings
    catalogue: Catalogue

    @property
    def sink(self) -> str:
        return self.catalogue.name(SINK)

    @property
    def floor_sink(self) -> str:
        return self.catalogue.name(FLOOR_SINK)


def bench_settings(data_root: Path, **kw: Any) -> Settings:
    """Settings on a fresh topic prefix, app id and RocksDB directory."""
    from tests.live import free_port

    run = uuid.uuid4().hex[:8]
    base: dict[str, Any] = {
        "topic_prefix": f"b{run}.",
        "app_id": f"ordertwin-bench-{run}",
        "data_dir": data_root / run,
        "store": "rocksdb://",
        "web_port": free_port(),
        "log_level": "warning",
    }
    return Settings(**{**base, **kw})


@contextmanager
def deployment(data_root: Path, **kw: Any) -> Iterator[Deployment]:
    """Create every topic of the catalogue (plus the sink); delete them all afterwards."""
    settings = bench_settings(data_root, **kw)
    cat = Catalogue.from_settings(settings)
    sinks = [
        TopicSpec(cat.name(name), settings.partitions, "delete", 3_600_000, "-", "-", "bench", "bench sink")
        for name in (SINK, FLOOR_SINK)
    ]
    create_topics(settings.kafka_config(), [*cat.all(), *sinks])
    try:
        yield Deployment(settings, cat)
    finally:
        shutil.rmtree(settings.data_dir, ignore_errors=True)  # the worker's RocksDB files
        admin = AdminClient(settings.kafka_config())
        names = [
            t for t in admin.list_topics(timeout=10).topics if t.startswith((settings.topic_prefix, settings.app_id))
        ]
        delete_topics(settings.kafka_config(), names)


def bulk_producer(settings: Settings) -> Producer:
    return Producer(
        {
            **settings.kafka_config(),
            "linger.ms": 20,
            "compression.type": "zstd",
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",  # the partitioner Faust (and Java) clients use
        }
    )


def produce(producer: Producer, topic: str, key: bytes, value: bytes, **kw: Any) -> None:
    """produce() that waits for room instead of failing when the local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, **kw)
            return
        except BufferError:
            producer.poll(0.05)


def preload_raw(dep: Deployment, records: Iterable[Raw]) -> int:
    """Publish raw records to their ``raw.<source>`` topics as a connector would (with received_at)."""
    producer = bulk_producer(dep.settings)
    received = datetime.now(UTC).isoformat().encode()
    count = 0
    for rec in records:
        produce(producer, dep.catalogue.raw(rec.source).name, rec.key, rec.value, headers={"received_at": received})
        count += 1
    if producer.flush(120) > 0:
        raise RuntimeError("raw records not acknowledged within 120 s")
    return count


def preload_twin_changelog(dep: Deployment, rows: Iterable[tuple[bytes, bytes]]) -> int:
    """Write twin rows straight to the table's changelog (``orders.twin``), each in the
    partition Faust would put its key in, as if a worker had built them."""
    producer = bulk_producer(dep.settings)
    topic = dep.catalogue.orders_twin.name
    partitions = dep.settings.partitions
    count = 0
    for key, value in rows:
        produce(producer, topic, key, value, partition=partition_for(key, partitions))
        count += 1
    if producer.flush(300) > 0:
        raise RuntimeError("twin rows not acknowledged within 300 s")
    return count


def raw_topics(dep: Deployment) -> list[str]:
    from ordertwin.topics import SOURCES

    return [dep.catalogue.raw(s).name for s in SOURCES]


def end_offsets(settings: Settings, topics: Iterable[str]) -> int:
    """Sum of the end offsets of every partition of the topics (= records written, no deletes)."""
    consumer = Consumer({**settings.kafka_config(), "group.id": "bench-offsets"})
    try:
        total = 0
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                total += consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        return total
    finally:
        consumer.close()


def edge_timestamps(settings: Settings, topic: str) -> tuple[int, int] | None:
    """(first, last) record timestamp (ms, producer CreateTime) over the topic's partitions;
    None when it is empty. The worker's producer stamps a record when it sends it."""
    consumer = Consumer({**settings.kafka_config(), "group.id": "bench-edges", "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        wanted: list[TopicPartition] = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                wanted.append(TopicPartition(topic, p, low))
                if high - 1 > low:
                    wanted.append(TopicPartition(topic, p, high - 1))
        stamps: list[int] = []
        for tp in wanted:
            consumer.assign([tp])
            msg = consumer.poll(10)
            if msg is not None and not msg.error():
                stamps.append(msg.timestamp()[1])
        return (min(stamps), max(stamps)) if stamps else None
    finally:
        consumer.close()


def first_write_ms(settings: Settings, topic: str, keys: set[bytes]) -> dict[bytes, int]:
    """For each wanted key, the timestamp (ms) of its first record on the topic."""
    from tests.live import read_topic

    out: dict[bytes, int] = {}
    for msg in read_topic(settings, topic, idle_s=1.0, max_s=300.0):
        key = msg.key()
        if key in keys and key not in out:
            out[key] = msg.timestamp()[1]
    return out
