"""The Prometheus alerting rules: valid, unit-tested with promtool, and complete.

``promtool`` comes from Debian's ``prometheus`` package; ``.ci/run`` installs it when missing, and
with CI=true these tests fail (not skip) without it.
"""

from __future__ import annotations

import re
import subprocess

from streams.ops import indicators
from tests.deploy.promql import PROM_DIR, RULES, RUNBOOKS, all_rules, anchors, load_rules, tool

ALERTS = {
    "OrderSyncDelayHigh",
    "ShippingStatusGapHigh",
    "CrossChannelOversell",
    "OpenDivergences",
    "SourceStale",
    "ConnectorSuccessRateLow",
    "IngestDelayHigh",
    "ConnectorFailing",
    "WorkerDown",
    "ComponentDown",
    "ConsumerLagGrowing",
    "DeadLetterRateSpike",
    "NotifierStuck",
}


def test_promtool_checks_the_rules_and_the_example_config() -> None:
    promtool = tool("promtool")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run(
        [promtool, "check", "config", str(PROM_DIR / "prometheus.yml")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = tool("promtool")
    out = subprocess.run(
        [promtool, "test", "rules", "tests.yml"], cwd=PROM_DIR, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_has_for_severity_and_a_runbook_section() -> None:
    doc = load_rules()
    sections = anchors(RUNBOOKS.read_text(encoding="utf-8"))
    alerts = [r for r in all_rules(doc) if "alert" in r]
    assert {a["alert"] for a in alerts} == ALERTS
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        runbook = rule["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert path == "deploy/prometheus/runbooks.md" and anchor == name.lower(), name
        assert anchor in sections, f"{name}: no '## {name}' section in runbooks.md"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_every_alert_is_unit_tested_firing() -> None:
    tests = (PROM_DIR / "tests.yml").read_text(encoding="utf-8")
    for name in ALERTS:
        fired = re.search(rf"alertname: {name}\n\s+exp_alerts:\n\s+- exp_labels:", tests)
        assert fired, f"tests.yml never expects {name} to fire"


def test_the_ops_page_uses_the_same_thresholds() -> None:
    exprs = {r.get("alert") or r.get("record"): r["expr"] for r in all_rules(load_rules())}
    assert f"> {indicators.SYNC_LATE_SHARE}" in exprs["OrderSyncDelayHigh"]
    assert f'le=~"{int(indicators.SYNC_DELAY_S)}' in exprs["ordertwin:channel_sync_late:ratio_rate15m"]
    assert f"> {indicators.SHIPPING_GAP_SHARE}" in exprs["ShippingStatusGapHigh"]
    assert f"> {int(indicators.STALE_SOURCE_S)}" in exprs["IngestDelayHigh"]
