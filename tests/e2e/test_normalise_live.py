"""Every source's golden payloads, plus 200 fuzzed bad records, through a real broker and a
real worker: good records come out decodable on orders.events / inventory.events (read by an
independent consumer), bad ones land in the dead-letter topic, processing goes on after them,
and count in = raw records covered by outputs + raw records rejected, exactly.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import CONTROL_HEADER
from streams.normalise.core import MAPPINGS
from tests.helpers import CODEC, FIXTURES, expected_specs
from tests.live import WorkerProcess, free_port, read_topic

pytestmark = [pytest.mark.live, pytest.mark.slow]


def _fuzzed(rng: random.Random, n: int) -> list[bytes]:
    """Bad records of every kind: not JSON, not objects, empty objects, wrong types, oversize."""
    out: list[bytes] = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append(bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 40))))
        elif kind == 1:
            out.append(json.dumps([rng.random() for _ in range(3)]).encode())
        elif kind == 2:
            out.append(b"{}")
        elif kind == 3:
            out.append(json.dumps({"status": rng.random(), "orders": "nope", "order_status": [1]}).encode())
        elif kind == 4:
            out.append(b'{"truncated": ')
        else:
            out.append(b'{"x": "' + b"a" * 70_000 + b'"}')  # over the 64 KB limit set below
    return out


def test_every_source_through_the_broker(live_settings: Settings, tmp_path: Path) -> None:
    settings = live_settings.model_copy(update={"web_port": free_port(), "max_raw_bytes": 65536})
    catalogue = Catalogue.from_settings(settings)
    producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "acks": "all"})
    sent: dict[tuple[str, int, int], str] = {}  # raw coordinates -> "good" / "bad"

    def on_delivery(kind: str):  # type: ignore[no-untyped-def]
        def cb(err, msg):  # type: ignore[no-untyped-def]
            assert err is None, err
            sent[(msg.topic(), msg.partition(), msg.offset())] = kind

        return cb

    expected_events = 0
    goldens = 0
    for source in sorted(MAPPINGS):
        spec = expected_specs(source)
        for name, case in spec.items():
            value = (FIXTURES / source / name).read_bytes()
            producer.produce(
                catalogue.raw(source).name,
                key=name.encode(),
                value=value,
                headers={"received_at": "2026-11-25T00:00:00+00:00"},
                on_delivery=on_delivery("good"),
            )
            expected_events += len(case["events"])
            goldens += 1
        rejected = json.loads((FIXTURES / source / "rejected.json").read_text())
        for name in rejected:
            producer.produce(
                catalogue.raw(source).name,
                key=name.encode(),
                value=(FIXTURES / source / name).read_bytes(),
                on_delivery=on_delivery("bad"),
            )
    rng = random.Random(3)
    sources = sorted(MAPPINGS)
    for i, value in enumerate(_fuzzed(rng, 200)):
        producer.produce(
            catalogue.raw(sources[i % len(sources)]).name,
            key=f"fuzz{i}".encode(),
            value=value,
            on_delivery=on_delivery("bad"),
        )
    # good records after the bad ones: the agent must keep going
    late_source = "taobao"
    late = (FIXTURES / late_source / "wait_seller_send_goods.json").read_bytes()
    producer.produce(catalogue.raw(late_source).name, key=b"late", value=late, on_delivery=on_delivery("good"))
    expected_events += 1
    producer.flush(30)
    good = {c for c, k in sent.items() if k == "good"}
    bad = {c for c, k in sent.items() if k == "bad"}
    assert len(bad) >= 200 and len(good) == goldens + 1

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        deadline = time.monotonic() + 120
        covered: set[tuple[str, int, int]] = set()
        rejected_coords: set[tuple[str, int, int]] = set()
        events: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            events = []
            for topic in (catalogue.orders_events.name, catalogue.inventory_events.name):
                for msg in read_topic(settings, topic, idle_s=1.0):
                    if dict(msg.headers() or []).get(CONTROL_HEADER):
                        continue
                    events.append(CODEC.decode(msg.value())[1])
            dead = [
                CODEC.decode_as("RejectedEvent", m.value())
                for m in read_topic(settings, catalogue.deadletter.name, idle_s=1.0)
            ]
            covered = {(str(e["raw_topic"]), int(e["raw_partition"]), int(e["raw_offset"])) for e in events}  # type: ignore[call-overload]
            rejected_coords = {(d["raw_topic"], d["raw_partition"], d["raw_offset"]) for d in dead}
            if len(covered) + len(rejected_coords) >= len(sent):
                break
            time.sleep(1)
        assert covered == good, (sorted(good - covered)[:5], sorted(covered - good)[:5], len(covered), len(good))
        assert rejected_coords == bad
        assert not covered & rejected_coords
        assert len(events) == expected_events
        assert len(dead) == len(bad)  # exactly one rejection per bad record
        assert {d["reason"] for d in dead} >= {"INVALID_JSON", "NOT_AN_OBJECT", "OVERSIZE", "MISSING_FIELD"}
        assert {e["source"] for e in events} == set(MAPPINGS)
    finally:
        worker.stop()
