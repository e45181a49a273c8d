"""``make run`` end to end, as separate processes on the real broker: one scenario on every
platform simulator, a real connector per source (pull, push, and push repaired by pull),
the worker. Nothing is written to Kafka except by the connectors.

Checked: every one of the 11 sources reached ``raw.<source>``, and the RAISED alerts equal
the scenario's ground truth exactly - the injected faults on every channel (and the
structural alerts of Shopee/Shopify orders, which the OMS and WMS cannot name), nothing
else - with no duplicate alert id. This is the divergence scenario of
tests/e2e/test_divergence_scenario_live.py, but through the connectors' signing, paging,
cursors, receivers, backoff and watermarks.

No outage here: outages and SOURCE_STALE are exact in the feed-based scenario test and in the
connector outage tests, but through a *pull* API an outage hides the versions an order went
through meanwhile (the API lists only the latest state), so the twin learns some facts late
and rightly reports late-known, already healed divergences the ground truth cannot foresee.
Push-only sources are vouched for until ``push_silence_s`` of silence, set beyond the test so
the quiet tail of the scenario raises nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ordertwin.settings import Settings
from ordertwin.topics import SOURCES, Catalogue
from streams.control import is_watermark
from tests.helpers import CODEC
from tests.live import WorkerProcess, free_port, read_topic, settings_env

pytestmark = [pytest.mark.live, pytest.mark.slow]

THRESHOLD_S = 10
ORDERS, SPAN_S, START_IN_S = 300, 60, 45


def _settings(live: Settings, tmp: Path) -> Settings:
    ports: dict[str, Any] = {"web_port": free_port(), "connector_metrics_port": 0}
    for name in Settings.model_fields:
        if name.endswith(("_simulator_port", "_webhook_port")):
            ports[name] = free_port()
    for source in SOURCES:  # connectors reach their simulator at its new port, same path
        default = getattr(live, f"{source}_base_url", None)
        if default is not None:
            url = urlsplit(default)
            ports[f"{source}_base_url"] = url._replace(netloc=f"127.0.0.1:{ports[f'{source}_simulator_port']}").geturl()
    pull_start = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    return live.model_copy(
        update={
            **ports,
            "divergence_threshold_s": float(THRESHOLD_S),
            "source_stale_s": float(THRESHOLD_S),
            "stale_check_interval_s": 0.5,
            "poll_interval_s": 1.0,
            "pull_safety_lag_s": 2.0,
            "pdd_min_safety_lag_s": 2.0,
            "pull_overlap_s": 10.0,
            "pull_start": pull_start,
            "backoff_s": (1.0, 2.0, 4.0),
            "push_watermark_interval_s": 1.0,
            "push_slack_s": 2.0,
            "push_silence_s": 300.0,
            "data_dir": tmp / "worker",
        }
    )


class Stack:
    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.worker = WorkerProcess(settings, tmp / "worker.log")

    def spawn(self, name: str, *argv: str) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "ordertwin.cli", *argv],
            env=settings_env(self.settings, ORDERTWIN_CONNECTOR_INSTANCE=f"test-{name}"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        assert not dead, f"exited: {dead}\n{self.logs(list(dead))}"

    def logs(self, names: list[str], lines: int = 40) -> str:
        out = []
        for name in names:
            path = self.tmp / f"{name}.log"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            out.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.worker.stop()


@pytest.fixture
def stack(live_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(_settings(live_settings, tmp_path), tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_make_run_stack_alerts_equal_the_ground_truth(stack: Stack) -> None:
    settings, truth_file = stack.settings, stack.tmp / "ground_truth.json"
    stack.worker.start()
    for source in SOURCES:
        stack.spawn(f"connector-{source}", "connector", source)
    stack.spawn(
        "simulator",
        *("simulate", "--scenario", "--channels", "all", "--orders", str(ORDERS), "--span", str(SPAN_S)),
        *("--per-kind", "1", "--fault-rate", "0", "--outage", "", "--start-in", str(START_IN_S)),
        *("--seed", "2611", "--ground-truth", str(truth_file)),
    )
    stack.worker.wait_healthy(timeout=120)
    started = time.monotonic()
    while not truth_file.exists():
        stack.alive()
        assert time.monotonic() - started < 60, stack.logs(["simulator"])
        time.sleep(0.5)
    truth = json.loads(truth_file.read_text())
    # Last fact + heal delays (threshold + up to 6 s, then the heal's own follow-ups), plus the
    # connectors' pacing (poll 1 s, lag 2 s, a backoff of up to 7 s after the outage).
    end = time.monotonic() + START_IN_S + SPAN_S + 2 * THRESHOLD_S + 60
    while time.monotonic() < end:
        stack.alive()
        time.sleep(2)

    catalogue = Catalogue.from_settings(settings)
    for source in SOURCES:
        records = [
            m
            for m in read_topic(settings, catalogue.raw(source).name, idle_s=1.0)
            if not is_watermark(dict(m.headers() or []))
        ]
        assert records, f"nothing reached raw.{source}\n{stack.logs([f'connector-{source}'])}"

    alerts = [CODEC.decode_as("Alert", m.value()) for m in read_topic(settings, catalogue.alerts.name, idle_s=1.0)]
    raised = [a for a in alerts if a["state"] == "RAISED"]
    dup = [i for i, n in Counter(a["alert_id"] for a in raised).items() if n > 1]
    assert not dup, f"duplicate RAISED ids: {dup[:5]}"
    got = {(a["rule"], a["subject"]) for a in raised}
    want = {(f["rule"], f["subject"]) for f in truth}
    assert got == want, f"missed: {sorted(want - got)}\nextra: {sorted(got - want)}\n" + stack.logs(
        ["simulator", *[f"connector-{s}" for s in SOURCES]], lines=10
    )
    channels = {f["subject"].split(":")[0] for f in truth if f["order_id"]}
    assert len(channels) > 1, f"the faults should span several channels, got {channels}"
