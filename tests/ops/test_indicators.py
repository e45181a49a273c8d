"""The ops page's indicators (``GET /ops/indicators``) and the flow metrics behind them, without a broker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from streams.metrics import PipelineMetrics
from streams.normalise.core import normalise_record
from streams.ops.indicators import Indicators, SlidingCounter
from tests.helpers import CODEC, FP, fixture_bytes, raw_record


def _by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in doc["indicators"]}


def test_sliding_counter_reports_the_window_or_since_start() -> None:
    window = SlidingCounter(60)
    assert window.add(0, 10) == (10, -1.0)  # one snapshot: since start
    assert window.add(30, 40) == (40, -1.0)
    assert window.add(70, 100) == (90, 70)  # a full window: increase since the snapshot at t=0
    assert window.add(100, 130) == (90, 70)  # oldest kept: t=30
    assert window.add(200, 5) == (5, 100)  # counter reset (worker restart)


def test_indicators_from_metrics_and_open_alerts() -> None:
    metrics = PipelineMetrics.create(CollectorRegistry())
    now = [1_000_000.0]
    open_alerts: dict[str, dict[str, Any]] = {
        "a": {"rule": "tracking_not_on_channel"},
        "b": {"rule": "tracking_not_on_channel"},
        "c": {"rule": "paid_not_in_wms"},
    }
    ind = Indicators(
        metrics.registry, open_alerts=lambda: open_alerts, stale_sources=lambda: ["wms"], clock=lambda: now[0]
    )
    for delay in [10.0] * 95 + [400.0] * 5:
        metrics.event_to_twin.labels("CHANNEL").observe(delay)
    metrics.event_to_twin.labels("WMS").observe(5000)  # not a channel fact
    for _ in range(40):
        metrics.twin_facts.labels("WMS", "OUTBOUND").inc()
    metrics.rejected.labels("taobao", "INVALID_JSON").inc(3)
    metrics.source_watermark.labels("taobao").set(now[0] - 30)
    metrics.source_watermark.labels("wms").set(now[0] - 1200)
    got = _by_id(ind.compute())
    assert got["sync_delay"]["value"] == 0.05 and got["sync_delay"]["status"] == "breach"
    assert got["sync_delay"]["detail"] == "5 of 100 channel facts, since worker start"
    assert got["shipping_gap"]["value"] == 2 / 40 and got["shipping_gap"]["status"] == "ok"
    assert got["oversell"]["value"] == 0 and got["oversell"]["status"] == "ok"
    assert got["open_divergences"]["value"] == 3 and got["open_divergences"]["status"] == "warn"
    assert got["stale_sources"]["detail"] == "wms" and got["stale_sources"]["status"] == "breach"
    assert got["source_freshness"]["value"] == 1200 and got["source_freshness"]["detail"] == "wms"
    assert got["deadletter"]["value"] == 3

    # 15 minutes later: only what happened since counts, the old late facts are out of the window.
    now[0] += 901
    for _ in range(50):
        metrics.event_to_twin.labels("CHANNEL").observe(1.0)
    open_alerts["d"] = {"rule": "OVERSELL"}
    got = _by_id(ind.compute())
    assert got["sync_delay"]["value"] == 0.0 and got["sync_delay"]["detail"] == "0 of 50 channel facts, last 15 min"
    assert got["oversell"]["value"] == 1 and got["oversell"]["status"] == "breach"


def test_observe_fact_counts_facts_and_their_age() -> None:
    metrics = PipelineMetrics.create(CollectorRegistry())
    raw = raw_record("taobao", fixture_bytes("taobao", "wait_seller_send_goods.json"))
    event = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=10**6).orders[0].value
    record = CODEC.decode_as("OrderEvent", event)
    metrics.observe_fact(record, record["event_time"] + timedelta(minutes=7))
    metrics.observe_fact(record, record["event_time"] - timedelta(seconds=5))  # the source's clock ahead: 0
    reg = metrics.registry
    assert reg.get_sample_value("ordertwin_twin_facts_total", {"system": "CHANNEL", "status": "PAID"}) == 2
    assert reg.get_sample_value("ordertwin_event_to_twin_seconds_count", {"system": "CHANNEL"}) == 2
    assert reg.get_sample_value("ordertwin_event_to_twin_seconds_sum", {"system": "CHANNEL"}) == 420
    assert reg.get_sample_value("ordertwin_event_to_twin_seconds_bucket", {"system": "CHANNEL", "le": "300.0"}) == 1
