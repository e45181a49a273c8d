"""The lean Faust sensor exports exactly what Faust's PrometheusMonitor exports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.faust_metrics import LeanPrometheusMonitor

APP = SimpleNamespace(rebalancing_count=1)
TIMED = ("_sum", "_bucket", "_created")  # depend on the clock, not on what was counted


class Stream:
    """As much of a Faust stream as the sensors look at (hashable, like the real one)."""

    def __init__(self, shortlabel: str, task_owner: str) -> None:
        self.shortlabel = shortlabel
        self.task_owner = Owner(task_owner)


class Owner:
    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def _drive(monitor: Any) -> None:
    """What a worker does: records in, events through two streams, sends, table access,
    end offsets, a commit, a rebalance, and more records after it."""
    streams = [Stream(f"Stream: Topic: raw.{n}", f"agent-{n}") for n in ("a", "b")]
    table = SimpleNamespace(name="order_twin")
    for round_ in range(2):
        for i in range(7):
            tp = TP(f"raw.{'ab'[i % 2]}", i % 3)
            message = SimpleNamespace(time_in=None, time_out=None, time_total=None)
            monitor.on_message_in(tp, 100 * round_ + i, message)
            state = monitor.on_stream_event_in(tp, 100 * round_ + i, streams[i % 2], SimpleNamespace())
            monitor.on_table_get(table, b"k")
            if i % 3 == 0:
                monitor.on_table_set(table, b"k", b"v")
            sent = monitor.on_send_initiated(None, "orders.events", None, 1, 10)
            monitor.on_send_completed(None, sent, None)
            monitor.on_stream_event_out(tp, 100 * round_ + i, streams[i % 2], SimpleNamespace(), state)
            monitor.on_message_out(tp, 100 * round_ + i, message)
            monitor.track_tp_end_offset(tp, 100 * round_ + i + 5)
        monitor.on_tp_commit({TP("raw.a", 0): 3})
        if round_ == 0:
            state = monitor.on_rebalance_start(APP)
            monitor.on_rebalance_return(APP, state)
            monitor.on_rebalance_end(APP, state)


def _samples(monitor_class: type[PrometheusMonitor]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    monitor = monitor_class(metrics=FaustMetrics.create(registry, "ordertwin_faust"))
    _drive(monitor)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith(TIMED)
    }


def test_lean_sensor_exports_the_same_metrics_as_faust() -> None:
    lean, faust = _samples(LeanPrometheusMonitor), _samples(PrometheusMonitor)
    assert lean == faust
    # and the drive exercised what the dashboards and alert rules read
    assert lean[("ordertwin_faust_messages_received_total", ())] == 14
    assert lean[("ordertwin_faust_events_runtime_ms_count", ())] == 14
    assert lean[("ordertwin_faust_topic_partition_end_offset", (("partition", "0"), ("topic", "raw.a")))] == 111
    since_rebalance = lean[("ordertwin_faust_messages_received_per_topic_total", (("topic", "raw.b"),))]
    assert since_rebalance == 3


@pytest.mark.parametrize("hook", ["on_message_in", "track_tp_end_offset"])
def test_children_resolved_before_a_rebalance_are_not_reused_after_it(hook: str) -> None:
    """Faust drops per-partition children on rebalance: a cached child would be orphaned
    and its updates lost from /metrics."""
    registry = CollectorRegistry()
    monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(registry, "x"))
    tp = TP("raw.a", 0)
    args: tuple[Any, ...] = (tp, 1, SimpleNamespace()) if hook == "on_message_in" else (tp, 1)
    getattr(monitor, hook)(*args)
    state = monitor.on_rebalance_start(APP)
    monitor.on_rebalance_end(APP, {**state, "time_end": state["time_start"]})
    args = (tp, 9, SimpleNamespace()) if hook == "on_message_in" else (tp, 9)
    getattr(monitor, hook)(*args)
    name = "x_messages_received_per_topics_partition" if hook == "on_message_in" else "x_topic_partition_end_offset"
    assert registry.get_sample_value(name, {"topic": "raw.a", "partition": "0"}) == 9
