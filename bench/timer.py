"""Figure 4: the divergence timer's tick cost with N open orders (pure, in-process)."""

from __future__ import annotations

import time
from typing import Any

from bench.stats import median_spread
from streams.orders.timeline import DeadlineIndex


def timer_cost(open_orders: int, due_share: float, runs: int) -> dict[str, Any]:
    """Cost of one tick (pop what is due) with ``open_orders`` pending deadlines, of which
    ``due_share`` are due; what was popped is pushed back between runs."""
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
        for key, rule in popped:
            index.push("wms", base + int(key[1:]), key, rule)
    return {"open_orders": open_orders, "due": due, "tick_ms": median_spread(samples), "entries_touched": touched[0]}
