"""Helpers for the deploy tests: the rules file, PromQL metric names, and what the code exports."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from ordertwin.notify.metrics import NotifyMetrics
from ordertwin.settings import REPO_ROOT
from streams.inventory.metrics import InventoryMetrics
from streams.metrics import PipelineMetrics

PROM_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = PROM_DIR / "rules.yml"
RUNBOOKS = PROM_DIR / "runbooks.md"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "ordertwin.json"
FAUST_PREFIX = "ordertwin_faust"  # streams/web.py: setup_prometheus_sensors(..., name_prefix=...)
SUFFIXES = ("", "_total", "_created", "_bucket", "_sum", "_count")
BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}

# PromQL words that are not metric names.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "group", "inf", "nan", "atan2",
}  # fmt: skip


def tool(name: str) -> str:
    """Path of a Prometheus binary; CI (CI=true) fails without it, elsewhere the test is skipped."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (CI must install it: apt-get install prometheus)")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return found


def load_rules(path: Path = RULES) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def all_rules(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for group in doc["groups"]:
        yield from group["rules"]


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names an expression selects; not functions, labels or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # range / subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b", " ", text)  # numbers and durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):  # a function call
            continue
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def exported_names() -> set[str]:
    """Every sample name the code can export: pipeline, connector, notifier and Faust sensor metrics."""
    registries = []
    reg = CollectorRegistry()
    PipelineMetrics.create(reg)
    registries.append(reg)
    reg = CollectorRegistry()
    ConnectorMetrics(reg)
    registries.append(reg)
    reg = CollectorRegistry()
    NotifyMetrics(reg)
    registries.append(reg)
    reg = CollectorRegistry()
    InventoryMetrics.create(reg)
    registries.append(reg)
    reg = CollectorRegistry()
    FaustMetrics.create(reg, FAUST_PREFIX)
    registries.append(reg)
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the markdown headings."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out
