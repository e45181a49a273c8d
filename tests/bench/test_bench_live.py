"""The benchmark harness end to end on the real broker, at toy sizes: every figure it
reports comes out of a run whose records were all accounted for. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.broker import deployment, edge_timestamps, end_offsets
from bench.latency import offered_load, with_new_orders
from bench.payloads import mixed_raw
from bench.state import restart_state
from bench.throughput import pipeline
from tests.helpers import CODEC

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_pipeline_figure(kafka: str, tmp_path: Path) -> None:
    raws = mixed_raw(300, seed=5)
    with deployment(tmp_path, bootstrap_servers=kafka) as dep:
        result = pipeline(dep, raws, tmp_path / "worker.log")
        assert end_offsets(dep.settings, [dep.catalogue.orders_events.name]) == result["order_events"] >= 300
        assert edge_timestamps(dep.settings, dep.catalogue.orders_twin.name) is not None
        assert end_offsets(dep.settings, [dep.sink]) == 300  # the passthrough moved every raw record
        assert end_offsets(dep.settings, [dep.floor_sink]) == 300  # and so did the one-hop Faust worker
    assert result["records"] == 300
    assert result["events_per_s"] > 0 and result["passthrough_limit_per_s"] > 0 and result["faust_hop_per_s"] > 0
    assert result["worker_cpu_us_per_record"] > 0 and result["worker_rss_mib"] > 50


def test_latency_figure(kafka: str, tmp_path: Path) -> None:
    paced = with_new_orders(mixed_raw(400, seed=6), CODEC)
    with deployment(tmp_path, bootstrap_servers=kafka) as dep:
        result = offered_load(dep, paced, 100, 3.0, tmp_path / "worker.log", warmup_s=1.0, probes_per_s=3.0)
    assert result["records_sent"] == 400
    assert result["records_processed"] == 400
    assert result["api"]["samples"] >= 1 and result["api"]["timed_out"] == 0
    new_orders_measured = sum(1 for p in paced[100:400] if p.new_order is not None)
    assert result["store"]["samples"] == new_orders_measured and result["store"]["missing"] == 0
    assert 0 < result["api"]["p50_ms"] <= result["api"]["max_ms"]


def test_latency_figure_with_two_workers_sharing_the_partitions(kafka: str, tmp_path: Path) -> None:
    paced = with_new_orders(mixed_raw(400, seed=7), CODEC)
    with deployment(tmp_path, bootstrap_servers=kafka) as dep:
        result = offered_load(dep, paced, 100, 3.0, tmp_path / "worker.log", warmup_s=1.0, probes_per_s=3.0, workers=2)
    assert result["workers"] == 2 and result["records_processed"] == 400
    assert all(n > 0 for n in result["records_processed_by_worker"])  # both took part
    assert result["api"]["samples"] >= 1 and result["api"]["timed_out"] == 0  # routed to each key's owner
    assert result["store"]["missing"] == 0


def test_memory_and_recovery_figures(kafka: str, tmp_path: Path) -> None:
    with deployment(tmp_path, bootstrap_servers=kafka) as dep:
        result = restart_state(dep, 300, CODEC, tmp_path, runs=1)
    assert result["rows"] == 300
    (sample,) = result["samples"]
    assert sample["rss_mib"] > 50 and sample["peak_rss_mib"] >= sample["rss_mib"]
    for key in ("from_changelog_serving_s", "local_rocksdb_serving_s"):
        assert 0 < sample[key] < 300


def test_quick_mode_end_to_end(kafka: str, tmp_path: Path) -> None:
    """What CI keeps working: ``make bench BENCH_ARGS=--quick`` as a process, every figure,
    nothing appended with --no-write (no timing is asserted)."""
    import json
    import os
    import subprocess
    import sys

    from ordertwin.settings import REPO_ROOT

    results_md = REPO_ROOT / "bench" / "RESULTS.md"
    before = results_md.read_bytes()
    env = {**os.environ, "ORDERTWIN_BOOTSTRAP_SERVERS": kafka}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--no-write"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out, _ = json.JSONDecoder().raw_decode(proc.stdout)  # then the Markdown table
    assert out["mode"] == "quick"
    assert out["pipeline"]["records"] == 5_000 and out["pipeline"]["events_per_s"]["median"] > 0
    assert [lat["offered_per_s"] for lat in out["latency"]] == [250, 1000, 5000]
    assert {(t["open_orders"], t["due"] > 0) for t in out["timer"]} == {
        (n, due) for n in (10_000, 100_000) for due in (False, True)
    }
    assert [s["rows"] for s in out["state"]] == [10_000, 50_000]
    assert results_md.read_bytes() == before
