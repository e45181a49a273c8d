"""``make bench``: throughput, latency, timer cost, memory and recovery on the local broker.

Every figure is the median of several runs with the spread (min..max). Results are appended
to ``bench/results.json`` and ``bench/RESULTS.md`` with the date, commit and machine facts.
``--quick`` keeps it to a few minutes (CI runs it to keep the harness working; nothing is
asserted on timings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from ordertwin.admin import create_topics, delete_topics
from ordertwin.settings import REPO_ROOT, Settings
from ordertwin.topics import Catalogue
from streams.orders.timeline import DeadlineIndex

BENCH_DIR = REPO_ROOT / "bench"


def median_spread(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "runs": len(samples)}


def repeat(runs: int, fn: Callable[[], float]) -> dict[str, float]:
    return median_spread([fn() for _ in range(runs)])


# --- 4. divergence timer ---------------------------------------------------------------------


def timer_cost(open_orders: int, due_share: float, runs: int) -> dict[str, Any]:
    """Cost of one tick (pop what is due) with ``open_orders`` pending deadlines."""
    base = 1_800_000_000_000
    index = DeadlineIndex()
    for i in range(open_orders):
        index.push("wms", base + i, f"o{i}".encode(), "paid_not_in_wms")
    due = int(open_orders * due_share)
    samples, touched = [], []
    for _ in range(runs):
        before = index.touched
        t0 = time.perf_counter()
        popped = index.pop_due("wms", base + due - 1)
        samples.append((time.perf_counter() - t0) * 1000)
        touched.append(index.touched - before)
        for key, rule in popped:  # put them back for the next run
            index.push("wms", base + int(key[1:]), key, rule)
    return {"open_orders": open_orders, "due": due, "tick_ms": median_spread(samples), "entries_touched": touched[0]}


# --- helpers for broker benchmarks ---------------------------------------------------------------


def _settings(**kw: Any) -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings(topic_prefix=f"b{run}.", app_id=f"ordertwin-bench-{run}", **kw)


def _raw_payloads(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """Realistic mixed raw records: TOP trades (the biggest, most common channel payload)."""
    from connectors.taobao.simulator import generate_trades, serialise

    start = datetime.now(UTC) - timedelta(days=1)
    trades = generate_trades(n, seed=seed, start=start, end=start + timedelta(hours=20))
    return [(str(t["tid"]).encode(), serialise(t)) for t in trades]


def _preload(settings: Settings, topic: str, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(
        {
            **settings.kafka_config(),
            "linger.ms": 20,
            "compression.type": "zstd",
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
    )
    received = datetime.now(UTC).isoformat().encode()
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers={"received_at": received})
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def _end_offsets(settings: Settings, topic: str) -> int:
    consumer = Consumer({**settings.kafka_config(), "group.id": "bench-offsets"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions)
    finally:
        consumer.close()


# --- 1. the limit: a raw confluent-kafka passthrough ------------------------------------------


def passthrough(settings: Settings, src: str, dst: str, n: int) -> float:
    """Consume n records and produce them unchanged: the most one Python process moves here."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"pt-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer({**settings.kafka_config(), "linger.ms": 5, "enable.idempotence": True, "acks": "all"})
    meta = consumer.list_topics(src, timeout=10).topics[src]
    consumer.assign([TopicPartition(src, p, OFFSET_BEGINNING) for p in meta.partitions])
    moved = 0
    t0 = time.perf_counter()
    while moved < n:
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error():
                continue
            while True:
                try:
                    producer.produce(dst, key=msg.key(), value=msg.value(), headers=msg.headers())
                    break
                except BufferError:
                    producer.poll(0.01)
            moved += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - t0
    consumer.close()
    return n / elapsed


# --- 2./5. pipeline throughput and memory: one worker process --------------------------------------


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    from tests.live import settings_env

    return subprocess.Popen(
        [sys.executable, "-m", "ordertwin.cli", "worker"],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pipeline(n: int, tmp: Path) -> dict[str, Any]:
    """Pre-load n raw records; time one worker from start to the last twin update."""
    from tests.live import free_port

    settings = _settings(web_port=free_port(), data_dir=tmp / uuid.uuid4().hex[:6], store="rocksdb://")
    cat = Catalogue.from_settings(settings)
    create_topics(settings.kafka_config(), cat.all())
    try:
        payloads = _raw_payloads(n)
        _preload(settings, cat.raw("taobao").name, payloads)
        limit = passthrough(settings, cat.raw("taobao").name, cat.raw("jd").name, n)
        proc = _start_worker(settings, tmp / "bench-worker.log")
        t0 = time.perf_counter()
        first = None
        try:
            while True:
                done = _end_offsets(settings, cat.orders_twin.name)
                if first is None and done > 0:
                    first = time.perf_counter()
                if done >= n:
                    break
                if proc.poll() is not None:
                    raise RuntimeError("worker died; see bench-worker.log")
                if time.perf_counter() - t0 > 1800:
                    raise TimeoutError(f"only {done}/{n} twin updates after 30 min")
                time.sleep(0.5)
            elapsed = time.perf_counter() - (first or t0)
            rss = _rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
        rate = n / elapsed
        return {
            "records": n,
            "events_per_s": rate,
            "passthrough_limit_per_s": limit,
            "ratio_to_limit": rate / limit,
            "worker_rss_mib": rss,
        }
    finally:
        delete_topics(settings.kafka_config(), [s.name for s in cat.all()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs (CI)")
    args = parser.parse_args(argv)
    quick = args.quick
    runs = 3 if quick else 5
    tmp = REPO_ROOT / "var" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
        ).stdout.strip(),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "mode": "quick" if quick else "full",
    }
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    results["timer"] = [timer_cost(n, share, runs) for n in sizes for share in (0.0, 0.01)]
    n = 5_000 if quick else 100_000
    samples = [pipeline(n, tmp) for _ in range(1 if quick else 3)]
    results["pipeline"] = {
        "records": n,
        "events_per_s": median_spread([s["events_per_s"] for s in samples]),
        "passthrough_limit_per_s": median_spread([s["passthrough_limit_per_s"] for s in samples]),
        "ratio_to_limit": median_spread([s["ratio_to_limit"] for s in samples]),
        "worker_rss_mib": median_spread([s["worker_rss_mib"] for s in samples]),
    }
    write(results)
    print(json.dumps(results, indent=2))
    return 0


def write(results: dict[str, Any]) -> None:
    path = BENCH_DIR / "results.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(results)
    path.write_text(json.dumps(history, indent=2) + "\n")
    md = BENCH_DIR / "RESULTS.md"
    lines = [] if md.exists() else ["# Benchmark results\n", "Appended by `make bench`; medians (min..max).\n"]
    p = results["pipeline"]

    def fmt(d: dict[str, float], unit: str = "", digits: int = 0) -> str:
        return f"{d['median']:.{digits}f}{unit} ({d['min']:.{digits}f}..{d['max']:.{digits}f})"

    lines.append(
        f"\n## {results['date']} · {results['commit']} · {results['mode']} · "
        f"{results['machine']['cores']} cores, Python {results['machine']['python']}\n"
    )
    lines.append("| figure | value |\n|---|---|")
    lines.append(f"| passthrough limit (confluent-kafka consume→produce) | {fmt(p['passthrough_limit_per_s'], '/s')} |")
    lines.append(f"| pipeline, one worker ({p['records']} raw records) | {fmt(p['events_per_s'], '/s')} |")
    lines.append(f"| ratio to limit | {fmt(p['ratio_to_limit'], '', 3)} |")
    lines.append(f"| worker RSS after {p['records']} twin rows | {fmt(p['worker_rss_mib'], ' MiB')} |")
    for t in results["timer"]:
        lines.append(
            f"| timer tick, {t['open_orders']:,} open, {t['due']:,} due | {fmt(t['tick_ms'], ' ms', 4)}"
            f" ({t['entries_touched']} entries touched) |"
        )
    with md.open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
