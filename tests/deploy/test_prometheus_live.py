"""A real Prometheus scrapes a real worker and a real connector, evaluates the real alerting rules,
and an alert fires when a fault is injected.

Processes: the Taobao simulator and the Taobao connector (``ordertwin simulate`` / ``ordertwin
connector taobao``, metrics on a free port), a worker (WorkerProcess), and ``prometheus`` from
Debian's package with a config generated into tmp (1 s scrape and evaluation intervals, TSDB in
tmp, a free 127.0.0.1 port). The rules file Prometheus loads is a copy of
``deploy/prometheus/rules.yml`` whose ``for:`` durations are shortened to 1 s -- every expression is
byte-for-byte the real one (checked). Faults: records that dead-letter (DeadLetterRateSpike) and
a paid order that the WMS never hears of (OpenDivergences).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from ordertwin.settings import Settings
from tests.deploy.promql import RULES, all_rules, load_rules, tool
from tests.live import WorkerProcess, free_port, settings_env
from tests.ops.faults import inject_divergence, inject_garbage

pytestmark = [pytest.mark.live, pytest.mark.slow]


def shortened_rules(src: Path, dst: Path) -> None:
    """The real rules with every ``for:`` set to 1s (nothing else changes)."""
    text = re.sub(r"(?m)^(\s+for:\s*)\S+\s*$", r"\g<1>1s", src.read_text(encoding="utf-8"))
    dst.write_text(text, encoding="utf-8")
    real, copy = load_rules(src), load_rules(dst)
    real_rules, copy_rules = list(all_rules(real)), list(all_rules(copy))
    assert len(real_rules) == len(copy_rules)
    for a, b in zip(real_rules, copy_rules, strict=True):
        assert a["expr"] == b["expr"] and a.get("labels") == b.get("labels")
        assert a.get("alert") == b.get("alert") and a.get("record") == b.get("record")
        if "alert" in a:
            assert b["for"] == "1s"


class Prometheus:
    def __init__(self, binary: str, workdir: Path, targets: dict[str, list[str]]) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        rules = workdir / "rules.yml"
        shortened_rules(RULES, rules)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": addrs}]} for job, addrs in targets.items()
            ],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = workdir / "prometheus.log"

    def start(self) -> Prometheus:
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.3)
        raise AssertionError("prometheus not ready:\n" + self.log.read_text(errors="replace"))

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["state"] == "firing"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(argv: list[str], settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ordertwin.cli", *argv],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(what: str, check: Any, timeout: float, on_fail: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    detail = on_fail() if on_fail else ""
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{detail}")


def test_prometheus_scrapes_the_pipeline_and_fires_alerts(live_settings: Settings, tmp_path: Path) -> None:
    prometheus_bin = tool("prometheus")
    sim_port = free_port()
    settings = live_settings.model_copy(
        update={
            "web_port": free_port(),
            "connector_metrics_port": free_port(),
            "taobao_simulator_port": sim_port,
            "taobao_base_url": f"http://127.0.0.1:{sim_port}/router/rest",
            "pull_safety_lag_s": 1.0,
            "pull_overlap_s": 5.0,
            "poll_interval_s": 1.0,
            "backoff_s": (0.2, 0.5, 1.0),
            "divergence_threshold_s": 5.0,
            "store": "memory://",
            "log_format": "json",
        }
    )
    simulator = _spawn(["simulate", "--orders", "40"], settings, tmp_path / "simulator.log")
    connector = _spawn(["connector", "taobao"], settings, tmp_path / "connector.log")
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    prometheus = Prometheus(
        prometheus_bin,
        tmp_path,
        {
            "ordertwin-worker": [f"127.0.0.1:{settings.web_port}"],
            "ordertwin-connector": [f"127.0.0.1:{settings.connector_metrics_port}"],
        },
    )

    def logs() -> str:
        parts = [f"--- worker\n{worker.tail_log(30)}"]
        for name in ("connector.log", "simulator.log", "prometheus.log"):
            path = tmp_path / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:]))
        return "\n".join(parts)

    try:
        worker.wait_healthy()
        prometheus.start()
        # Every rule of the real file is loaded.
        groups = prometheus.api("rules")["groups"]
        loaded = {r["name"] for g in groups for r in g["rules"]}
        assert loaded == {r.get("alert") or r.get("record") for r in all_rules(load_rules())}

        # Both targets are scraped and healthy.
        _wait(
            "both targets up",
            lambda: (
                {t["labels"]["job"] for t in prometheus.api("targets")["activeTargets"] if t["health"] == "up"}
                == {"ordertwin-worker", "ordertwin-connector"}
            ),
            60,
            logs,
        )

        # Faults: a divergence, and a stream of records that dead-letter.
        order_id = inject_divergence(settings, 4_200_000_000_000_001)
        sent = 0

        def spike() -> Any:
            nonlocal sent
            inject_garbage(settings, 5, start=sent)
            sent += 5
            names = {
                (a["labels"]["alertname"], a["labels"].get("source") or a["labels"].get("rule"))
                for a in prometheus.firing()
            }
            wanted = {("DeadLetterRateSpike", "taobao"), ("OpenDivergences", "paid_not_in_wms")}
            return wanted <= names and names

        firing = _wait("DeadLetterRateSpike and OpenDivergences firing", spike, 120, logs)
        assert "WorkerDown" not in {name for name, _ in firing}

        # The series behind the indicators exist, from the real processes.
        for expr in (
            'ordertwin_raw_records_total{job="ordertwin-worker", source="taobao"}',
            'ordertwin_rejected_records_total{job="ordertwin-worker", source="taobao", reason="INVALID_JSON"}',
            'ordertwin_event_to_twin_seconds_count{system="CHANNEL"}',
            'ordertwin_twin_facts_total{system="CHANNEL", status="PAID"}',
            "ordertwin_ingest_to_twin_seconds_count",
            'ordertwin_open_divergences{rule="paid_not_in_wms", subsystem="WMS"}',
            "ordertwin_faust_topic_partition_end_offset",
            "ordertwin_faust_messages_received_total",
            'ordertwin_connector_requests_total{job="ordertwin-connector", source="taobao", outcome="ok"}',
            'ordertwin_connector_poll_lag_seconds{source="taobao"}',
            'ordertwin_connector_records_total{source="taobao", outcome="published"}',
            'ordertwin:connector_success:ratio_rate1h{source="taobao"}',
            'up{job="ordertwin-worker"} == 1',
            'up{job="ordertwin-connector"} == 1',
        ):
            _wait(expr, lambda e=expr: prometheus.query(e), 30, logs)
        assert (
            float(prometheus.query('ordertwin:connector_success:ratio_rate1h{source="taobao"}')[0]["value"][1]) == 1.0
        )
        _, body = worker.get("/alerts?state=open&limit=10000")
        assert any(a["subject"] == order_id and a["rule"] == "paid_not_in_wms" for a in body["alerts"])

        alert = next(a for a in prometheus.firing() if a["labels"]["alertname"] == "DeadLetterRateSpike")
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook"] == "deploy/prometheus/runbooks.md#deadletterratespike"
        assert "of taobao records dead-lettered" in alert["annotations"]["summary"]
    finally:
        prometheus.stop()
        worker.stop()
        _stop(connector)
        _stop(simulator)
    # ORDERTWIN_LOG_FORMAT=json reaches the connector too: one JSON object per line, its service named.
    lines = (tmp_path / "connector.log").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines if line.strip()]
    assert docs and all(d["service"] == "connector:taobao" for d in docs)
