"""Figures 5 and 6: worker memory with N twin rows, and the time a restarted worker takes
to serve again (from the changelog only, and with its local RocksDB present).

The twin rows are written straight to the table's changelog (``orders.twin``) rather than
built by pushing N orders through the pipeline (see :mod:`bench.payloads`); the worker then
recovers them exactly as it would its own. "Serving" means a raw record published at the
worker's start has become a twin visible via ``GET /orders/{id}``: that needs the table
recovered and the twin agent's deadline index rebuilt over every row.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.broker import Deployment, bulk_producer, preload_twin_changelog, produce
from bench.latency import with_new_orders
from bench.payloads import mixed_raw, row_order_id, twin_rows
from bench.worker import BenchWorker
from ordertwin.avro import Codec
from ordertwin.settings import Settings


def probe_orders(codec: Codec) -> Iterator[tuple[str, Any]]:
    """Raw records that each create a new order, with that order's id."""
    for item in with_new_orders(mixed_raw(300, seed=99), codec):
        if item.new_order is not None:
            yield item.new_order, item.raw


# Log lines (INFO) that split a restart into its phases; the first at or after the start counts.
PHASES = {
    "table_recovered_s": "Recovery complete",  # faust.tables.recovery: changelog read into the store
    "index_rebuilt_s": "deadline index rebuilt",  # streams.orders.agents: every row decoded and indexed
}


_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}")


def phase_times(log: Path, since: datetime) -> dict[str, float | None]:
    """Seconds from ``since`` (local time, as the log prints it) to each phase's log line."""
    out: dict[str, float | None] = dict.fromkeys(PHASES)
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        stamp = _STAMP.search(line)  # a line may start with a terminal escape sequence
        if stamp is None:
            continue
        at = datetime.strptime(stamp.group(), "%Y-%m-%d %H:%M:%S,%f")
        if at < since:
            continue
        for name, marker in PHASES.items():
            if out[name] is None and marker in line:
                out[name] = (at - since).total_seconds()
    return out


def start_and_serve(
    dep: Deployment, settings: Settings, probe: tuple[str, Any], known: str, log: Path, timeout: float
) -> tuple[BenchWorker, dict[str, float | None]]:
    """Start a worker, publish the probe record at once, and time the way back to service."""
    order_id, raw = probe
    worker = BenchWorker(settings, log)
    started = datetime.now()  # naive local time, comparable with the log's timestamps
    t0 = time.monotonic()
    worker.start()
    producer = bulk_producer(settings)
    stamp = datetime.now(UTC).isoformat().encode()
    produce(producer, dep.catalogue.raw(raw.source).name, raw.key, raw.value, headers={"received_at": stamp})
    producer.flush(30)
    try:
        readable = worker.wait_until("a recovered row readable", lambda: worker.twin_status(known) == 200, timeout)
        serving = worker.wait_until("a new order visible", lambda: worker.twin_status(order_id) == 200, timeout)
    except BaseException:
        worker.stop()
        raise
    phases = phase_times(log, started.replace(microsecond=(started.microsecond // 1000) * 1000))
    return worker, {"row_readable_s": readable - t0, "serving_s": serving - t0, **phases}


def restart_state(dep: Deployment, rows: int, codec: Codec, data_root: Path, runs: int) -> dict[str, Any]:
    """Pre-load ``rows`` twin rows; then, ``runs`` times: start a worker on an empty state
    directory (recovery from the changelog only; memory measured once it is serving and
    idle), stop it, and restart it on the same directory (local RocksDB present)."""
    t0 = time.monotonic()
    loaded = preload_twin_changelog(dep, twin_rows(codec, rows))
    preload_s = time.monotonic() - t0
    known = row_order_id(rows - 1)  # the last row written
    probes = probe_orders(codec)
    timeout = max(300.0, rows / 1000)  # generous: a slow recovery is a figure, not a failure
    samples: list[dict[str, float | None]] = []
    for run in range(runs):
        settings = dep.settings.model_copy(update={"data_dir": data_root / uuid.uuid4().hex[:8], "log_level": "info"})
        log = data_root / f"state-{rows}-{run}"
        worker, cold = start_and_serve(dep, settings, next(probes), known, log.with_suffix(".cold.log"), timeout)
        try:
            worker.wait_quiet(timeout=timeout)
            rss, peak = worker.rss_mib(), worker.peak_rss_mib()
        finally:
            worker.stop()
        worker, warm = start_and_serve(dep, settings, next(probes), known, log.with_suffix(".warm.log"), timeout)
        worker.stop()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        samples.append(
            {
                "rss_mib": rss,
                "peak_rss_mib": peak,
                "from_changelog_serving_s": cold["serving_s"],
                "from_changelog_row_readable_s": cold["row_readable_s"],
                "from_changelog_table_recovered_s": cold["table_recovered_s"],
                "from_changelog_index_rebuilt_s": cold["index_rebuilt_s"],
                "local_rocksdb_serving_s": warm["serving_s"],
                "local_rocksdb_row_readable_s": warm["row_readable_s"],
                "local_rocksdb_table_recovered_s": warm["table_recovered_s"],
                "local_rocksdb_index_rebuilt_s": warm["index_rebuilt_s"],
            }
        )
    return {"rows": loaded, "preload_s": preload_s, "samples": samples}
