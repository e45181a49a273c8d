"""Write a run's figures: appended to ``bench/results.json`` (full history) and as a
Markdown section appended to ``bench/RESULTS.md``, with the issue's targets beside them."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from ordertwin.settings import REPO_ROOT

BENCH_DIR = REPO_ROOT / "bench"
MIB_PER_GIB = 1024


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on, including how busy the machine was."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()),
    }


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    code = ["streams", "ordertwin", "bench", ":!bench/results.json", ":!bench/RESULTS.md"]
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *code], **_quiet())
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _quiet() -> dict[str, Any]:
    return {"capture_output": True, "text": True, "cwd": REPO_ROOT}


def fmt(d: dict[str, float] | None, unit: str = "", digits: int = 0) -> str:
    """``median unit (min..max)``, or a dash when the figure was not measured."""
    if not d or d.get("median") is None or (isinstance(d["median"], float) and math.isnan(d["median"])):
        return "—"
    return f"{d['median']:,.{digits}f}{unit} ({d['min']:,.{digits}f}..{d['max']:,.{digits}f})"


def _verdict(value: float | None, limit: float, at_least: bool) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    ok = value >= limit if at_least else value <= limit
    return "met" if ok else "**missed**"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, median measured, verdict) for each target of the issue."""
    out: list[tuple[str, str, str]] = []
    p = results.get("pipeline")
    rate = p["events_per_s"]["median"] if p else None
    ratio = p["ratio_to_limit"]["median"] if p else None
    out.append(("pipeline >= 20,000 ev/s per worker", f"{rate:,.0f}/s" if rate else "—", _verdict(rate, 20_000, True)))
    out.append(("pipeline >= 0.25 x passthrough", f"{ratio:.3f}" if ratio else "—", _verdict(ratio, 0.25, True)))
    lat = next((x for x in results.get("latency", []) if x["offered_per_s"] == 1000), None)
    p99 = lat["api_p99_ms"]["median"] if lat else None
    workers = lat.get("workers", 1) if lat else 1
    by = f" ({workers} workers)" if workers > 1 else ""
    measured = f"{p99:,.0f} ms" if p99 is not None else "—"
    out.append((f"p99 <= 100 ms at 1,000 ev/s (API){by}", measured, _verdict(p99, 100, False)))
    tick = next((t for t in results.get("timer", []) if t["open_orders"] == 1_000_000 and t["due"] == 0), None)
    tick_ms = tick["tick_ms"]["median"] if tick else None
    out.append(
        (
            "idle tick <= 1 ms at 1M open",
            f"{tick_ms:.4f} ms" if tick_ms is not None else "—",
            _verdict(tick_ms, 1, False),
        )
    )
    state = next((s for s in results.get("state", []) if s["rows"] >= 1_000_000), None)
    rss = state["peak_rss_mib"]["median"] if state else None
    out.append(("<= 1 GiB RSS at 1M rows (peak)", f"{rss:,.0f} MiB" if rss else "—", _verdict(rss, MIB_PER_GIB, False)))
    for key, label in (("from_changelog_serving_s", "changelog only"), ("local_rocksdb_serving_s", "local RocksDB")):
        sec = state[key]["median"] if state else None
        out.append(
            (f"recovery <= 60 s at 1M rows ({label})", f"{sec:,.1f} s" if sec else "—", _verdict(sec, 60, False))
        )
    return out


def markdown(results: dict[str, Any]) -> str:
    """The RESULTS.md section of one run."""
    m = results["machine"]
    lines = [
        f"\n## {results['date']} · {results['commit']} · {results['mode']}\n",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}; "
        f"load average {m['loadavg_start'][0]:.2f} at start, {m.get('loadavg_end', [math.nan])[0]:.2f} at end "
        "(other work on the machine makes wall-clock figures noisy; CPU per record is steadier).\n",
    ]
    lines += [f"- {note}" for note in results.get("notes", [])]
    lines.append("\n| figure | median (min..max) |\n|---|---|")
    lines += [f"| {label} | {value} |" for label, value in figure_rows(results)]
    lines.append("\n| target | measured | verdict |\n|---|---|---|")
    lines += [f"| {name} | {value} | {verdict} |" for name, value, verdict in targets(results)]
    return "\n".join(lines) + "\n"


def figure_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows of the Markdown table, in the issue's order."""
    rows: list[tuple[str, str]] = []
    s = results.get("stage_costs")
    if s:
        rows.append(("normaliser core, in-process", fmt(s["normalise_us_per_record"], " µs/record", 1)))
        rows.append(
            ("twin core (decode, apply, evaluate, encode), in-process", fmt(s["twin_us_per_event"], " µs/event", 1))
        )
    p = results.get("pipeline")
    if p:
        rows += [
            (
                "1. passthrough limit (confluent-kafka consume→produce, same raw records)",
                fmt(p["passthrough_limit_per_s"], "/s"),
            ),
            ("1b. one Faust hop (an agent forwarding each raw record unchanged)", _floor(p)),
            (f"2. pipeline, one worker, {p['records']:,} mixed raw records, all stages", fmt(p["events_per_s"], "/s")),
            ("2. … up to the last twin write", fmt(p["to_twin_events_per_s"], "/s")),
            ("2. ratio to limit", fmt(p["ratio_to_limit"], "", 3)),
            ("2. worker CPU per raw record", fmt(p["worker_cpu_us_per_record"], " µs")),
            ("2. worker RSS after the run", fmt(p["worker_rss_mib"], " MiB")),
        ]
    for lat in results.get("latency", []):
        sat = f", saturated in {lat['saturated_runs']}/{lat['runs']} runs" if lat["saturated_runs"] else ""
        workers = lat.get("workers", 1)
        by = f", {workers} workers" if workers > 1 else ""
        head = f"3. latency at {lat['offered_per_s']:,}/s offered{by}{sat}"
        for kind, what in (("api", "receipt → visible via API"), ("store", "receipt → twin row written")):
            value = " / ".join(fmt(lat[f"{kind}_{q}_ms"], " ms") for q in ("p50", "p99", "max"))
            rows.append((f"{head}, {what}: p50 / p99 / max", value))
        rows.append(
            (f"{head}: samples per run (API, row written)", f"{lat['api_samples']:,} / {lat['store_samples']:,}")
        )
    for t in results.get("timer", []):
        label = f"4. timer tick, {t['open_orders']:,} open, {t['due']:,} due"
        rows.append((label, f"{fmt(t['tick_ms'], ' ms', 4)} ({t['entries_touched']:,} entries touched)"))
    for st in results.get("state", []):
        n = f"{st['rows']:,} twin rows"
        rows += [
            (
                f"5. worker RSS serving {n}, idle / peak",
                f"{fmt(st['rss_mib'], ' MiB')} / {fmt(st['peak_rss_mib'], ' MiB')}",
            ),
            (f"6. recovery to serving, {n}, changelog only", _recovery(st, "from_changelog")),
            (f"6. recovery to serving, {n}, local RocksDB", _recovery(st, "local_rocksdb")),
        ]
    return rows


def _recovery(st: dict[str, Any], kind: str) -> str:
    """Time to serving, with when the table was recovered and the deadline index rebuilt."""
    phases = [
        f"{label} {fmt(st.get(f'{kind}_{key}'), ' s', 1)}"
        for key, label in (("table_recovered_s", "table recovered at"), ("index_rebuilt_s", "index rebuilt at"))
        if st.get(f"{kind}_{key}")
    ]
    total = fmt(st[f"{kind}_serving_s"], " s", 1)
    return f"{total} ({'; '.join(phases)})" if phases else total


def _floor(p: dict[str, Any]) -> str:
    if "faust_hop_per_s" not in p:
        return "—"
    return f"{fmt(p['faust_hop_per_s'], '/s')}, {fmt(p['faust_hop_cpu_us_per_record'], ' µs CPU/record')}"


def write(results: dict[str, Any], bench_dir: Path = BENCH_DIR) -> None:
    """Append the run to results.json and RESULTS.md."""
    path = bench_dir / "results.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(results)
    path.write_text(json.dumps(history, indent=2, default=str) + "\n")
    md = bench_dir / "RESULTS.md"
    head = "" if md.exists() else "# Benchmark results\n\nAppended by `make bench`; medians (min..max).\n"
    with md.open("a") as fh:
        fh.write(head + markdown(results))
