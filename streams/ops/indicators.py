"""Business and pipeline health indicators of one worker, for the ops page (``GET /ops/indicators``).

The same indicators as the Prometheus alerting rules (``deploy/prometheus/rules.yml``), computed
from this worker's own registry and in-memory alert state so the page works without a
Prometheus server. Windows are sliding windows over snapshots taken when the endpoint is
called; until a snapshot old enough exists, a value covers "since the worker started" and says
so. Prometheus (fleet-wide, durable history) stays the source of truth for alerting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

# Thresholds shared with deploy/prometheus/rules.yml (tests/deploy checks they agree).
SYNC_DELAY_S = 300.0  # an order is "late" when channel -> twin takes longer than 5 min
SYNC_LATE_SHARE = 0.03  # ... and more than 3 % of orders are late
SHIPPING_GAP_SHARE = 0.05  # open tracking_not_on_channel / outbound volume
SYNC_WINDOW_S = 900.0
SHIPPING_WINDOW_S = 86_400.0
DEADLETTER_WINDOW_S = 300.0
STALE_SOURCE_S = 900.0  # ingest delay worst case > 15 min


def samples(registry: CollectorRegistry, name: str) -> Iterable[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called exactly ``name`` (e.g. ``x_total``, ``x_bucket``)."""
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def total(registry: CollectorRegistry, name: str, **match: str) -> float:
    return sum(v for labels, v in samples(registry, name) if all(labels.get(k) == m for k, m in match.items()))


@dataclass
class SlidingCounter:
    """Increase of a cumulative value over a window, from snapshots (t, value)."""

    window_s: float
    points: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, now: float, value: float) -> tuple[float, float]:
        """Record a snapshot; return (increase over the window, seconds actually covered)."""
        self.points.append((now, value))
        while len(self.points) > 2 and self.points[1][0] <= now - self.window_s:
            self.points.popleft()
        t0, v0 = self.points[0]
        if t0 > now - self.window_s or len(self.points) == 1:
            return value, -1.0  # not a full window yet: everything since the worker started
        if value < v0:  # counter reset
            return value, now - t0
        return value - v0, now - t0


def _status(value: float | None, limit: float, *, above: bool = True) -> str:
    if value is None:
        return "unknown"
    return "breach" if (value > limit if above else value < limit) else "ok"


@dataclass
class Indicators:
    """Computes the indicator list; keeps the snapshots between calls."""

    registry: CollectorRegistry
    open_alerts: Callable[[], Mapping[str, Mapping[str, Any]]]
    stale_sources: Callable[[], Iterable[str]]
    clock: Callable[[], float] = time.time
    _late: SlidingCounter = field(default_factory=lambda: SlidingCounter(SYNC_WINDOW_S))
    _synced: SlidingCounter = field(default_factory=lambda: SlidingCounter(SYNC_WINDOW_S))
    _outbound: SlidingCounter = field(default_factory=lambda: SlidingCounter(SHIPPING_WINDOW_S))
    _rejected: SlidingCounter = field(default_factory=lambda: SlidingCounter(DEADLETTER_WINDOW_S))

    def compute(self) -> dict[str, Any]:
        now = self.clock()
        reg = self.registry
        alerts = list(self.open_alerts().values())
        by_rule: dict[str, int] = {}
        for alert in alerts:
            by_rule[alert["rule"]] = by_rule.get(alert["rule"], 0) + 1

        count = total(reg, "ordertwin_event_to_twin_seconds_count", system="CHANNEL")
        on_time = total(reg, "ordertwin_event_to_twin_seconds_bucket", system="CHANNEL", le=str(SYNC_DELAY_S))
        synced, covered = self._synced.add(now, count)
        late, _ = self._late.add(now, count - on_time)
        late_share = late / synced if synced > 0 else None

        outbound, out_covered = self._outbound.add(
            now, total(reg, "ordertwin_twin_facts_total", system="WMS", status="OUTBOUND")
        )
        gaps = by_rule.get("tracking_not_on_channel", 0)
        gap_share = gaps / outbound if outbound > 0 else (None if gaps == 0 else float(gaps))

        rejected, rej_covered = self._rejected.add(now, total(reg, "ordertwin_rejected_records_total"))
        raw = total(reg, "ordertwin_raw_records_total")

        watermarks = {labels["source"]: v for labels, v in samples(reg, "ordertwin_source_watermark_seconds")}
        freshness = {src: max(0.0, now - wm) for src, wm in watermarks.items()}
        worst_src = max(freshness, key=lambda s: freshness[s]) if freshness else None
        stale = sorted(self.stale_sources())

        def window(covered_s: float, nominal: float) -> str:
            return f"last {nominal / 60:.0f} min" if covered_s >= 0 else "since worker start"

        indicators = [
            {
                "id": "sync_delay",
                "label": "Orders synced late (channel → twin > 5 min)",
                "value": late_share,
                "unit": "ratio",
                "threshold": SYNC_LATE_SHARE,
                "status": _status(late_share, SYNC_LATE_SHARE),
                "detail": f"{late:.0f} of {synced:.0f} channel facts, {window(covered, SYNC_WINDOW_S)}",
            },
            {
                "id": "shipping_gap",
                "label": "Shipped but tracking not on channel",
                "value": gap_share,
                "unit": "ratio",
                "threshold": SHIPPING_GAP_SHARE,
                "status": _status(gap_share, SHIPPING_GAP_SHARE),
                "detail": f"{gaps} open of {outbound:.0f} outbound, {window(out_covered, SHIPPING_WINDOW_S)}",
            },
            {
                "id": "oversell",
                "label": "Cross-channel oversell",
                "value": by_rule.get("OVERSELL", 0),
                "unit": "count",
                "threshold": 0,
                "status": _status(by_rule.get("OVERSELL", 0), 0),
                "detail": "open OVERSELL alerts",
            },
            {
                "id": "open_divergences",
                "label": "Open divergences",
                "value": len(alerts),
                "unit": "count",
                "threshold": None,
                "status": "warn" if alerts else "ok",
                "detail": ", ".join(f"{r}: {n}" for r, n in sorted(by_rule.items())) or "none",
            },
            {
                "id": "stale_sources",
                "label": "Silent sources (SOURCE_STALE)",
                "value": len(stale),
                "unit": "count",
                "threshold": 0,
                "status": _status(len(stale), 0),
                "detail": ", ".join(stale) or "none",
            },
            {
                "id": "source_freshness",
                "label": "Oldest source watermark",
                "value": freshness.get(worst_src) if worst_src else None,
                "unit": "seconds",
                "threshold": STALE_SOURCE_S,
                "status": _status(freshness.get(worst_src) if worst_src else None, STALE_SOURCE_S),
                "detail": f"{worst_src}" if worst_src else "no watermark seen yet",
            },
            {
                "id": "deadletter",
                "label": "Dead-lettered records",
                "value": rejected,
                "unit": "count",
                "threshold": None,
                "status": "warn" if rejected > 0 else "ok",
                "detail": f"{window(rej_covered, DEADLETTER_WINDOW_S)}; {raw:.0f} raw records read since start",
            },
        ]
        return {
            "generated_at": now,
            "indicators": indicators,
            "open_by_rule": by_rule,
            "source_freshness_s": freshness,
            "scope": "this worker's partitions; Prometheus aggregates every worker",
        }
