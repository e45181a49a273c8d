"""Figures 1 and 2: the passthrough limit and one worker's pipeline throughput, plus the
in-process cost of the pure stages (stable on a busy machine, unlike wall-clock rates).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.broker import Deployment, edge_timestamps, end_offsets, preload_raw, raw_topics
from bench.payloads import Raw
from bench.worker import BenchWorker, proc_cpu_s
from ordertwin.avro import Codec
from ordertwin.settings import REPO_ROOT

RAW_COUNTER = "ordertwin_raw_records_total"  # every non-control raw record the normaliser read
TWIN_COUNTER = "ordertwin_twin_events_total"  # every order event the twin agent applied


def passthrough(dep: Deployment, n: int) -> float:
    """Consume the n pre-loaded raw records and produce them unchanged: the most one Python
    process moves through this broker with confluent-kafka (records/s)."""
    settings = dep.settings
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"pt-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer({**settings.kafka_config(), "linger.ms": 5, "enable.idempotence": True, "acks": "all"})
    tps = []
    for topic in raw_topics(dep):
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        tps += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    consumer.assign(tps)
    moved = 0
    t0 = time.perf_counter()
    deadline = t0 + 600
    while moved < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"passthrough moved only {moved}/{n} records in 600 s")
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error():
                continue
            while True:
                try:
                    producer.produce(dep.sink, key=msg.key(), value=msg.value(), headers=msg.headers())
                    break
                except BufferError:
                    producer.poll(0.01)
            moved += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - t0
    consumer.close()
    return n / elapsed


def faust_floor(dep: Deployment, n: int, log: Path) -> dict[str, float]:
    """One Faust hop (bench.faust_floor: consume, dispatch, send unchanged) over the n raw
    records, in its own process: records/s (from its output timestamps) and CPU per record."""
    from tests.live import settings_env

    settings = dep.settings
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.faust_floor"],
            env=settings_env(settings),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        cpu0: float | None = None
        deadline = time.monotonic() + 1800
        while (done := end_offsets(settings, [dep.floor_sink])) < n:
            if proc.poll() is not None:
                raise RuntimeError(f"Faust floor worker exited {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Faust floor forwarded only {done}/{n} records")
            if cpu0 is None and done > 0:
                cpu0 = proc_cpu_s(proc.pid)
            time.sleep(0.2)
        cpu = proc_cpu_s(proc.pid) - (cpu0 if cpu0 is not None else 0.0)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    edges = edge_timestamps(settings, dep.floor_sink)
    assert edges is not None
    return {"per_s": n / max((edges[1] - edges[0]) / 1000, 0.001), "cpu_us_per_record": cpu / n * 1e6}


def output_topics(dep: Deployment) -> list[str]:
    cat = dep.catalogue
    return [
        cat.orders_events.name,
        cat.orders_twin.name,
        cat.inventory_events.name,
        cat.deadletter.name,
        cat.alerts.name,
        cat.inventory_reservations.name,
        cat.inventory_stock.name,
        cat.inventory_levels.name,
        cat.inventory_commands.name,
    ]


def pipeline(dep: Deployment, raws: list[Raw], log: Path, profile: Path | None = None) -> dict[str, Any]:
    """Pre-load the raw records, measure the passthrough limit on them, then run one worker
    over them. Its rate is taken from the worker's own output timestamps (first record it
    wrote .. last), so start-up and polling do not count. With ``profile``, py-spy samples
    the worker while it works (raw flame-graph lines; py-spy must be installed)."""
    settings, cat = dep.settings, dep.catalogue
    n = preload_raw(dep, raws)
    limit = passthrough(dep, n)
    floor = faust_floor(dep, n, log.with_suffix(".floor.log"))
    worker = BenchWorker(settings, log).start()
    try:
        worker.wait_until("first raw record read", lambda: worker.counter(RAW_COUNTER) > 0, 300, every=0.2)
        cpu0 = worker.cpu_s()
        spy = start_profiler(worker.pid, profile) if profile else None
        worker.wait_until("every raw record normalised", lambda: worker.counter(RAW_COUNTER) >= n, 3600)
        events = end_offsets(settings, [cat.orders_events.name])
        worker.wait_until("every order event applied", lambda: worker.counter(TWIN_COUNTER) >= events, 3600)
        worker.wait_quiet()  # later stages (inventory) done too
        cpu = worker.cpu_s() - cpu0
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
        rss = worker.rss_mib()
    finally:
        worker.stop()
    first = edge_timestamps(settings, cat.orders_events.name)
    twin = edge_timestamps(settings, cat.orders_twin.name)
    assert first is not None and twin is not None
    lasts = [e[1] for t in output_topics(dep) if (e := edge_timestamps(settings, t)) is not None]
    to_twin_s = max(twin[1] - first[0], 1) / 1000
    all_s = max(max(lasts) - first[0], 1) / 1000
    rate = n / all_s
    return {
        "records": n,
        "order_events": events,
        "events_per_s": rate,
        "to_twin_events_per_s": n / to_twin_s,
        "passthrough_limit_per_s": limit,
        "faust_hop_per_s": floor["per_s"],
        "faust_hop_cpu_us_per_record": floor["cpu_us_per_record"],
        "ratio_to_limit": rate / limit,
        "worker_cpu_us_per_record": cpu / n * 1e6,
        "worker_rss_mib": rss,
    }


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy (from the venv or PATH) recording ``pid`` at 100 Hz into ``out``."""
    exe = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if exe is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    cmd = [exe, "record", "--rate", "100", "--format", "raw", "--output", str(out), "--pid", str(pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stage_costs(raws: list[Raw], codec: Codec) -> dict[str, float]:
    """In-process cost (µs of CPU per record) of the pure normaliser, and of the twin stage's
    pure part (decode the event, apply, evaluate, raise due, encode the twin), on the same
    records. CPU time, not wall time: other work on the machine does not inflate it."""
    from streams.normalise.core import normalise_record
    from streams.normalise.model import RawRecord, keyed_fingerprint
    from streams.orders.divergence import evaluate, raise_due
    from streams.orders.twin import apply, epoch_ms

    fingerprint = keyed_fingerprint(b"bench")
    headers = {"received_at": datetime.now(UTC).isoformat().encode()}
    records = [RawRecord(r.source, f"raw.{r.source}", 0, i, r.key, r.value, headers) for i, r in enumerate(raws)]
    t0 = time.process_time()
    outcomes = [normalise_record(rec, codec=codec, fingerprint=fingerprint, max_bytes=1 << 20) for rec in records]
    normalise_s = time.process_time() - t0
    events = [(enc.key, enc.value) for o in outcomes for enc in o.orders]
    twins: dict[bytes, Any] = {}
    now = datetime.now(UTC)
    t0 = time.process_time()
    for key, value in events:
        event = codec.decode_as("OrderEvent", value)
        new, _ = apply(twins.get(key), event)
        new, _ = evaluate(new, at_ms=epoch_ms(event["event_time"]), now=now, default_threshold_s=600.0, overrides={})
        new, _ = raise_due(new, lambda _src: None, now)
        codec.encode("OrderTwin", new)
        twins[key] = new
    twin_s = time.process_time() - t0
    return {
        "normalise_us_per_record": normalise_s / len(records) * 1e6,
        "twin_us_per_event": twin_s / max(len(events), 1) * 1e6,
        "records": len(records),
        "events": len(events),
    }
