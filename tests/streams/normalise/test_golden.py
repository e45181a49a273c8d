"""Golden payloads for every source: each maps to the expected canonical events, is valid
Avro, and together they cover every value of every mapping table of the source.

Layout per source (``tests/fixtures/<source>/``): payload files shaped like the platform's
responses, ``expected.json`` = {file: {"covers": {TABLE: [values]}, "events": [subset of
the expected canonical fields]}}, and ``rejected.json`` = {file: reason code}.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from streams.normalise.core import MAPPINGS, normalise_record
from tests.helpers import CODEC, FIXTURES, FP, fixture_bytes, raw_record

SOURCES_WITH_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").exists())


EXPECTED_FILES = ("expected.json", "expected_inventory.json")


def _expected(source: str) -> dict[str, Any]:
    """Golden payload specs of a source (order side and, for the WMS, stock side)."""
    out: dict[str, Any] = {}
    for kind in EXPECTED_FILES:
        path = FIXTURES / source / kind
        if path.exists():
            out.update(json.loads(path.read_text()))
    return out


def _cases(kind: str) -> list[tuple[str, str]]:
    out = []
    for source in SOURCES_WITH_FIXTURES:
        if kind == "expected.json":
            out += [(source, name) for name in sorted(_expected(source))]
        elif (FIXTURES / source / kind).exists():
            out += [(source, name) for name in sorted(json.loads((FIXTURES / source / kind).read_text()))]
    return out


def _normalise(source: str, name: str):  # type: ignore[no-untyped-def]
    return normalise_record(
        raw_record(source, fixture_bytes(source, name)), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )


def _matches(expected: Any, actual: Any, path: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            _matches(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _matches(e, a, f"{path}[{i}]")
    elif isinstance(actual, datetime):
        assert actual == datetime.fromisoformat(expected), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_every_source_with_a_normaliser_has_golden_fixtures() -> None:
    assert set(MAPPINGS) <= set(SOURCES_WITH_FIXTURES)


@pytest.mark.parametrize(("source", "name"), _cases("expected.json"))
def test_golden_payload(source: str, name: str) -> None:
    spec = _expected(source)[name]
    outcome = _normalise(source, name)
    assert outcome.rejection is None, outcome.rejection
    produced = outcome.orders + outcome.inventory
    decoded = [CODEC.decode(out.value)[1] for out in produced]  # valid single-object Avro
    assert len(decoded) == len(spec["events"])
    for i, (exp, got, out) in enumerate(zip(spec["events"], decoded, produced, strict=True)):
        _matches(exp, got, f"{name}[{i}]")
        assert out.key == (got["order_id"] if "status" in got else got["sku"]).encode()
        assert got["event_id"] and got["source"] == source


@pytest.mark.parametrize(("source", "name"), _cases("rejected.json"))
def test_rejected_payload(source: str, name: str) -> None:
    reason = json.loads((FIXTURES / source / "rejected.json").read_text())[name]
    outcome = _normalise(source, name)
    assert not outcome.orders and not outcome.inventory
    assert outcome.rejection is not None and outcome.rejection.reason == reason, outcome.rejection


@pytest.mark.parametrize("source", sorted(MAPPINGS))
def test_fixtures_cover_every_mapping_value(source: str) -> None:
    module = MAPPINGS[source]
    expected = _expected(source)
    covered: dict[str, set[str]] = {}
    for spec in expected.values():
        for table, values in spec["covers"].items():
            covered.setdefault(table, set()).update(values)
    tables = {**module.STATUS_TABLES, **getattr(module, "STOCK_TABLES", {})}
    for table, mapping in tables.items():
        missing = set(map(str, mapping)) - covered.get(table, set())
        assert not missing, f"{source}.{table}: no golden payload for {sorted(missing)}"
