"""Property: no JSON object makes a channel mapping crash.

For jd, pdd, douyin, kuaishou, shopee and shopify, two generators: arbitrary objects built
from the source's real field names (every key found in its golden payloads, at any depth),
and golden payloads with random fields replaced or deleted. Every outcome is either events
or exactly one rejection, and never INTERNAL_ERROR (a mapping raised something else than
Reject) nor SCHEMA_VIOLATION (a mapping produced a record the Avro schema refuses).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FIXTURES, FP, raw_record

CHANNELS = ("jd", "pdd", "douyin", "kuaishou", "shopee", "shopify")


def _golden(source: str) -> list[Any]:
    names = json.loads((FIXTURES / source / "expected.json").read_text())
    return [json.loads((FIXTURES / source / name).read_text()) for name in sorted(names)]


def _keys(doc: Any, into: set[str]) -> set[str]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            into.add(key)
            _keys(value, into)
    elif isinstance(doc, list):
        for value in doc:
            _keys(value, into)
    return into


GOLDEN = {source: _golden(source) for source in CHANNELS}
FIELD_NAMES = {source: sorted(set().union(*(_keys(doc, set()) for doc in GOLDEN[source]))) for source in CHANNELS}

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "0", "-1", "1e999999", "12.345", "2026-11-11 00:05:00", "2026-11-11T00:05:00+08:00"])
)


def _objects(source: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(FIELD_NAMES[source])
    values = st.recursive(
        LEAVES,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=5),
        max_leaves=25,
    )
    return st.dictionaries(keys, values, max_size=12)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key/index) of a JSON document, depth first."""
    out: list[tuple[Any, Any]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((doc, key))
            out += _slots(value)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.append((doc, i))
            out += _slots(value)
    return out


def _check(source: str, doc: Any) -> None:
    outcome = normalise_record(
        raw_record(source, json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
    )
    assert (outcome.rejection is None) != (not outcome.orders)
    if outcome.rejection is not None:
        assert outcome.rejection.reason not in ("INTERNAL_ERROR", "SCHEMA_VIOLATION"), outcome.rejection


@pytest.mark.parametrize("source", CHANNELS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_objects_of_real_field_names_never_crash(source: str, data: st.DataObject) -> None:
    _check(source, data.draw(_objects(source)))


@pytest.mark.parametrize("source", CHANNELS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_golden_payloads_never_crash(source: str, data: st.DataObject) -> None:
    doc = json.loads(json.dumps(data.draw(st.sampled_from(GOLDEN[source]))))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = slots[data.draw(st.integers(min_value=0, max_value=len(slots) - 1))]
        if isinstance(container, dict) and data.draw(st.booleans()):
            del container[key]
        else:
            container[key] = data.draw(
                LEAVES | st.lists(LEAVES, max_size=2) | st.dictionaries(st.text(max_size=5), LEAVES, max_size=2)
            )
    _check(source, doc)
