"""The benchmark harness's pure parts: statistics, readings, payloads and the report."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.payloads import mixed_raw, row_order_id, twin_rows
from bench.stats import median_spread, percentile, summary_ms
from bench.worker import metric_sum, proc_cpu_s, proc_status_kib
from ordertwin.topics import SOURCES
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from streams.orders.divergence import pending_deadlines
from tests.helpers import CODEC, FP


def test_median_spread() -> None:
    assert median_spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}
    with pytest.raises(ValueError, match="no samples"):
        median_spread([])


def test_percentile_is_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]  # 1..100
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    s = summary_ms([0.010, 0.020, 0.030])
    assert s == {"p50_ms": 20.0, "p99_ms": 30.0, "max_ms": 30.0, "samples": 3}


def test_metric_sum_adds_every_label_set() -> None:
    text = (
        "# HELP ordertwin_raw_records_total Raw records read.\n"
        'ordertwin_raw_records_total{source="jd"} 3.0\n'
        'ordertwin_raw_records_total{source="taobao"} 4.0\n'
        'ordertwin_raw_records_created{source="jd"} 1.7e+09\n'
        "ordertwin_twin_events_total 2.0\n"
    )
    assert metric_sum(text, "ordertwin_raw_records_total") == 7.0
    assert metric_sum(text, "ordertwin_twin_events_total") == 2.0
    assert metric_sum(text, "absent") == 0.0


def test_proc_readings_of_this_process() -> None:
    assert proc_status_kib(os.getpid(), "VmRSS") > 1000
    assert proc_status_kib(os.getpid(), "VmHWM") >= proc_status_kib(os.getpid(), "VmRSS")
    before = proc_cpu_s(os.getpid())
    sum(i * i for i in range(300_000))
    assert proc_cpu_s(os.getpid()) >= before


def test_mixed_raw_covers_sources_and_every_record_normalises() -> None:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    raws = mixed_raw(600, seed=3, start=start)
    assert len(raws) == 600
    sources = Counter(r.source for r in raws)
    assert set(sources) == set(SOURCES)
    assert mixed_raw(600, seed=3, start=start) == raws  # reproducible
    for i, r in enumerate(raws):
        outcome = normalise_record(
            RawRecord(r.source, f"raw.{r.source}", 0, i, r.key, r.value, {}),
            codec=CODEC,
            fingerprint=FP,
            max_bytes=1 << 20,
        )
        assert outcome.rejection is None, (r.source, outcome.rejection)
        assert outcome.orders or outcome.inventory


def test_twin_rows_are_valid_distinct_twins_with_deadlines() -> None:
    rows = list(twin_rows(CODEC, 50))
    keys = [k for k, _ in rows]
    assert len(set(keys)) == 50 and keys[0] == row_order_id(0).encode()
    alert_ids = set()
    for key, value in rows:
        twin = CODEC.decode_as("OrderTwin", value)
        assert twin["order_id"].encode() == key
        assert pending_deadlines(twin)  # the index rebuild has work to do for every row
        alert_ids |= {e["alert_id"] for e in twin["episodes"]}
    assert len(alert_ids) == 50 * len(twin["episodes"])


def _results() -> dict[str, Any]:
    def ms(v: float) -> dict[str, float]:
        return {"median": v, "min": v * 0.9, "max": v * 1.1, "runs": 3}

    return {
        "date": "2026-11-26T00:00:00+00:00",
        "commit": "abc1234",
        "mode": "full",
        "machine": {
            "cores": 2,
            "cpu": "x",
            "memory_gib": 24,
            "python": "3.11",
            "loadavg_start": [1.0],
            "loadavg_end": [2.0],
        },
        "notes": ["a note"],
        "pipeline": {
            "records": 100,
            "order_events": 100,
            "events_per_s": ms(25_000),
            "to_twin_events_per_s": ms(30_000),
            "passthrough_limit_per_s": ms(70_000),
            "faust_hop_per_s": ms(8_000),
            "faust_hop_cpu_us_per_record": ms(110),
            "ratio_to_limit": ms(0.2),
            "worker_cpu_us_per_record": ms(40),
            "worker_rss_mib": ms(100),
        },
        "latency": [
            {
                "offered_per_s": 1000,
                "runs": 3,
                "saturated_runs": 1,
                "api_samples": 10,
                "store_samples": 100,
            }
            | {f"{k}_{q}_ms": ms(50 if q == "p99" else 10) for k in ("api", "store") for q in ("p50", "p99", "max")}
        ],
        "timer": [{"open_orders": 1_000_000, "due": 0, "tick_ms": ms(0.01), "entries_touched": 1}],
        "state": [
            {"rows": 1_000_000, "rss_mib": ms(900), "peak_rss_mib": ms(1500)}
            | {k: ms(30) for k in ("from_changelog_serving_s", "local_rocksdb_serving_s")}
        ],
    }


def test_targets_verdicts() -> None:
    verdicts = {name: verdict for name, _, verdict in report.targets(_results())}
    assert verdicts["pipeline >= 20,000 ev/s per worker"] == "met"
    assert verdicts["pipeline >= 0.25 x passthrough"] == "**missed**"
    assert verdicts["p99 <= 100 ms at 1,000 ev/s (API)"] == "met"
    assert verdicts["idle tick <= 1 ms at 1M open"] == "met"
    assert verdicts["<= 1 GiB RSS at 1M rows (peak)"] == "**missed**"
    assert verdicts["recovery <= 60 s at 1M rows (changelog only)"] == "met"
    empty = {name: v for name, _, v in report.targets({"machine": {}})}
    assert set(empty.values()) == {"not measured"}


def test_write_appends_json_and_markdown(tmp_path: Path) -> None:
    results = _results()
    report.write(results, tmp_path)
    report.write(results, tmp_path)
    assert len(json.loads((tmp_path / "results.json").read_text())) == 2
    md = (tmp_path / "RESULTS.md").read_text()
    assert md.count("# Benchmark results") == 1 and md.count("## 2026-11-26") == 2
    assert "saturated in 1/3 runs" in md
    assert "| 2. ratio to limit | 0.200 (0.180..0.220) |" in md
    assert "8,000/s (7,200..8,800), 110 µs CPU/record (99..121)" in md
    assert "| pipeline >= 0.25 x passthrough | 0.200 | **missed** |" in md
