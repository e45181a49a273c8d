"""``make bench``: throughput, latency, timer cost, memory and recovery on the local broker.

Measures, in one run (each figure the median of several runs, with min..max):

1. the limit: a raw confluent-kafka consume→produce passthrough of the raw records;
2. one worker's pipeline throughput over the same mixed raw records, and its ratio to 1;
3. latency at a steady offered load (1,000 and 5,000 records/s, and 250/s as a reference
   below saturation), receipt → API;
4. the divergence timer's tick cost with 10k/100k/1M open orders, none or 1% due;
5. worker RSS with N twin rows (RocksDB store);
6. time for a restarted worker to serve again with N twin rows (changelog only, local RocksDB).

Figures are appended to ``bench/results.json`` and ``bench/RESULTS.md`` with the date,
commit and machine facts. ``--quick`` scales sizes down for CI (nothing asserts on timings);
``--rows 100000,1000000`` sets the twin-row counts of 5 and 6. Nothing here is faked: a
figure that misses its target is reported as missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.broker import deployment
from bench.latency import offered_load, with_new_orders
from bench.payloads import Raw, mixed_raw
from bench.state import restart_state
from bench.stats import median_spread
from bench.throughput import pipeline, stage_costs
from bench.timer import timer_cost
from ordertwin.avro import Codec
from ordertwin.settings import REPO_ROOT, Settings

FIGURES = ("stages", "pipeline", "latency", "timer", "state")


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run."""

    mode: str
    runs: int  # repetitions of the pipeline and state figures
    records: int  # raw records through the pipeline
    rates: tuple[int, ...]  # offered loads of the latency figure
    latency_runs: int
    latency_s: float
    latency_workers: int  # worker processes sharing the partitions in the latency figure
    timer_sizes: tuple[int, ...]
    rows: tuple[int, ...]  # twin rows of the memory/recovery figures
    figures: tuple[str, ...]

    @property
    def latency_records(self) -> int:
        return int(max(self.rates, default=0) * (self.latency_s + 2.0)) + 1


def plan_of(args: argparse.Namespace) -> Plan:
    quick = args.quick
    rows = (
        tuple(int(x) for x in args.rows.split(","))
        if args.rows
        else ((10_000, 50_000) if quick else (100_000, 1_000_000))
    )
    return Plan(
        mode="quick" if quick else "full",
        runs=args.runs or (2 if quick else 3),
        records=args.records or (5_000 if quick else 100_000),
        rates=tuple(int(x) for x in args.rates.split(",")),
        latency_runs=args.runs or (1 if quick else 3),
        latency_s=args.duration or (8.0 if quick else 60.0),
        latency_workers=args.workers,
        timer_sizes=(10_000, 100_000) if quick else (10_000, 100_000, 1_000_000),
        rows=rows,
        figures=tuple(args.only.split(",")) if args.only else FIGURES,
    )


def log(msg: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _spread(samples: Sequence[dict[str, Any]], *keys: str) -> dict[str, Any]:
    """Median and spread of each key over the runs (None when no run had a value)."""
    out: dict[str, Any] = {}
    for k in keys:
        values = [s[k] for s in samples if s.get(k) is not None]
        out[k] = median_spread(values) if values else None
    return out


def run_stages(raws: list[Raw], codec: Codec, runs: int) -> dict[str, Any]:
    samples = [stage_costs(raws, codec) for _ in range(runs)]
    return _spread(samples, "normalise_us_per_record", "twin_us_per_event") | {"records": samples[0]["records"]}


def run_pipeline(raws: list[Raw], tmp: Path, runs: int, profile: bool = False) -> dict[str, Any]:
    samples = []
    for i in range(runs):
        prof = tmp / f"pipeline-{i}.pyspy.txt" if profile else None
        with deployment(tmp) as dep:
            samples.append(pipeline(dep, raws, tmp / f"pipeline-{i}.log", prof))
        if prof:
            log(f"profile of pipeline run {i + 1}: {prof}")
        log(f"pipeline run {i + 1}/{runs}: {samples[-1]['events_per_s']:,.0f}/s")
    keys = (
        "events_per_s",
        "to_twin_events_per_s",
        "passthrough_limit_per_s",
        "faust_hop_per_s",
        "faust_hop_cpu_us_per_record",
        "ratio_to_limit",
        "worker_cpu_us_per_record",
        "worker_rss_mib",
    )
    return {"records": samples[0]["records"], "order_events": samples[0]["order_events"]} | _spread(samples, *keys)


def run_latency(raws: list[Raw], codec: Codec, tmp: Path, plan: Plan) -> list[dict[str, Any]]:
    paced = with_new_orders(raws, codec)
    out = []
    for rate in plan.rates:
        samples = []
        for i in range(plan.latency_runs):
            with deployment(tmp) as dep:
                log_path = tmp / f"latency-{rate}-{i}.log"
                samples.append(offered_load(dep, paced, rate, plan.latency_s, log_path, workers=plan.latency_workers))
            s = samples[-1]
            log(f"latency {rate}/s run {i + 1}: API p50 {s['api']['p50_ms']:.0f} ms p99 {s['api']['p99_ms']:.0f} ms")
        flat = [
            {f"{kind}_{k}": s[kind][k] for kind in ("api", "store") for k in ("p50_ms", "p99_ms", "max_ms", "samples")}
            | {"achieved": s["achieved_offered_per_s"]}
            for s in samples
        ]
        keys = [f"{kind}_{k}" for kind in ("api", "store") for k in ("p50_ms", "p99_ms", "max_ms")]
        out.append(
            {
                "offered_per_s": rate,
                "workers": plan.latency_workers,
                "duration_s": plan.latency_s,
                "runs": len(samples),
                "saturated_runs": sum(1 for s in samples if s["saturated"]),
                "achieved_offered_per_s": median_spread([f["achieved"] for f in flat]),
                "api_samples": int(statistics.median(f["api_samples"] for f in flat)),
                "store_samples": int(statistics.median(f["store_samples"] for f in flat)),
                "detail": samples,
            }
            | _spread(flat, *keys)
        )
    return out


def run_state(codec: Codec, tmp: Path, plan: Plan) -> list[dict[str, Any]]:
    out = []
    for rows in plan.rows:
        with deployment(tmp) as dep:
            res = restart_state(dep, rows, codec, tmp, plan.runs)
        keys = sorted(res["samples"][0])  # memory, and per restart kind: serving, row readable, phases
        out.append({"rows": res["rows"], "preload_s": res["preload_s"]} | _spread(res["samples"], *keys))
        rss, cold = out[-1]["rss_mib"]["median"], out[-1]["from_changelog_serving_s"]["median"]
        log(f"state {rows:,} rows: {rss:.0f} MiB, serving after {cold:.1f} s from the changelog")
    return out


def timed(name: str, fn: Callable[[], Any]) -> Any:
    log(f"{name} ...")
    t0 = time.monotonic()
    value = fn()
    log(f"{name} done in {time.monotonic() - t0:.0f} s")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs (CI)")
    parser.add_argument("--rows", help="twin rows for memory/recovery, comma-separated (default 100000,1000000)")
    parser.add_argument("--records", type=int, help="raw records through the pipeline (default 100000)")
    parser.add_argument(
        "--rates",
        default="250,1000,5000",
        help="offered loads for latency, records/s (1000 and 5000 are the issue's; 250 is a reference "
        "below one worker's saturation, showing service time rather than queueing)",
    )
    parser.add_argument("--duration", type=float, help="seconds of steady load per latency run (default 60)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the partitions in the latency figure (default 1; the other "
        "figures are per worker)",
    )
    parser.add_argument("--runs", type=int, help="repetitions per figure (default 3; quick 2, latency 1)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(FIGURES)}")
    parser.add_argument("--profile", action="store_true", help="py-spy the pipeline worker (var/bench/*.pyspy.txt)")
    parser.add_argument("--no-write", action="store_true", help="print the figures, append nothing")
    args = parser.parse_args(argv)
    plan = plan_of(args)
    unknown = set(plan.figures) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}")
    tmp = REPO_ROOT / "var" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    codec = Codec.from_dir(Settings().schemas_dir)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": report.commit(),
        "machine": report.machine_facts(),
        "mode": plan.mode,
        "notes": [
            "Raw records: the scenario generator on all seven channels (native channel orders through "
            "OMS, WMS, carrier and finance), every source mixed, in publication order (bench/payloads.py).",
            "Memory/recovery: twin rows are written straight to the orders.twin changelog (valid OrderTwin "
            "rows re-keyed from one real twin), not pushed through the pipeline.",
        ],
    }
    if args.profile:
        results["notes"].append("The pipeline worker was sampled by py-spy at 100 Hz (a few % overhead).")
    needed = max(
        plan.records if {"stages", "pipeline"} & set(plan.figures) else 0,
        plan.latency_records if "latency" in plan.figures else 0,
    )
    raws = timed("generating raw records", lambda: mixed_raw(needed)) if needed else []
    if "stages" in plan.figures:
        results["stage_costs"] = timed("stage costs", lambda: run_stages(raws[: plan.records], codec, plan.runs))
    if "pipeline" in plan.figures:
        results["pipeline"] = timed(
            "pipeline", lambda: run_pipeline(raws[: plan.records], tmp, plan.runs, args.profile)
        )
    if "latency" in plan.figures:
        results["latency"] = timed("latency", lambda: run_latency(raws, codec, tmp, plan))
    if "timer" in plan.figures:
        sizes = plan.timer_sizes
        results["timer"] = [timer_cost(n, share, max(plan.runs, 5)) for n in sizes for share in (0.0, 0.01)]
    if "state" in plan.figures:
        results["state"] = timed("memory and recovery", lambda: run_state(codec, tmp, plan))
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    if not args.no_write:
        report.write(results)
    print(json.dumps({k: v for k, v in results.items() if k != "latency"} | {"latency": _brief(results)}, indent=2))
    print(report.markdown(results))
    return 0


def _brief(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in lat.items() if k != "detail"} for lat in results.get("latency", [])]


if __name__ == "__main__":
    sys.exit(main())
