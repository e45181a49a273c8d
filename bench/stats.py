"""Small statistics for the benchmark figures: median with spread, percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median_spread(samples: Sequence[float]) -> dict[str, float]:
    """Median of the runs with their min..max (the spread shown in RESULTS.md)."""
    if not samples:
        raise ValueError("no samples")
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "runs": len(samples)}


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]): a value that was actually observed."""
    if not samples:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds, and how many samples they rest on."""
    ms = [x * 1000 for x in latencies_s]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else math.nan,
        "samples": len(ms),
    }
