"""``make run`` wiring: the demo's settings, one metrics port per connector, the stage's split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.scenario import generate
from connectors.stage import records_by_source
from ordertwin.dev import DEV_DEFAULTS, connector_environments, dev_environment
from ordertwin.settings import Settings
from ordertwin.topics import SOURCES


def test_dev_defaults_fill_only_what_the_user_did_not_set() -> None:
    env = dev_environment({"ORDERTWIN_DIVERGENCE_THRESHOLD_S": "120", "PATH": "/bin"})
    assert env["ORDERTWIN_DIVERGENCE_THRESHOLD_S"] == "120"
    assert env["PATH"] == "/bin"
    assert env["ORDERTWIN_PULL_SAFETY_LAG_S"] == DEV_DEFAULTS["ORDERTWIN_PULL_SAFETY_LAG_S"]


def test_dev_defaults_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DEV_DEFAULTS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.divergence_threshold_s == 60
    assert settings.backoff_s == (1.0, 3.0, 9.0)
    assert settings.pull_safety_lag_s < settings.divergence_threshold_s


def test_every_connector_gets_its_own_metrics_port_and_instance() -> None:
    envs = connector_environments({}, Settings(connector_metrics_port=9108))
    assert list(envs) == list(SOURCES)
    ports = [int(e["ORDERTWIN_CONNECTOR_METRICS_PORT"]) for e in envs.values()]
    assert len(set(ports)) == len(SOURCES)
    assert 9108 not in ports and 9109 not in ports  # 9109 is the notifier's
    assert envs["wms"]["ORDERTWIN_CONNECTOR_INSTANCE"] == "dev-wms"


def test_metrics_off_stays_off() -> None:
    envs = connector_environments({}, Settings(connector_metrics_port=0))
    assert all("ORDERTWIN_CONNECTOR_METRICS_PORT" not in e for e in envs.values())


def test_stage_splits_a_scenario_by_source_in_event_time_order() -> None:
    start = datetime(2026, 11, 11, tzinfo=UTC)
    scenario = generate(seed=3, n_orders=40, start=start, span=timedelta(seconds=60), threshold=timedelta(seconds=5))
    split = records_by_source(scenario)
    assert sum(len(v) for v in split.values()) == len(scenario.records)
    for source, records in split.items():
        assert {r.source for r in records} == {source}
        assert [r.at for r in records] == sorted(r.at for r in records)
