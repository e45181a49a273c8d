"""Totality of every normaliser: any JSON object ends as events or one reasoned rejection."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import MAPPINGS, normalise_record
from tests.helpers import CODEC, FIXTURES, FP, SPEC_FILES, raw_record

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=30,
)


def _field_names(source: str) -> list[str]:
    """Real field names of the source, harvested from its golden payloads (nested too)."""
    names: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                names.add(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in (FIXTURES / source).glob("*.json"):
        if path.name not in SPEC_FILES:
            walk(json.loads(path.read_text()))
    return sorted(names) or ["id"]


def _mutations(source: str) -> st.SearchStrategy[dict[str, object]]:
    """Golden payloads with fields replaced, dropped or retyped, plus arbitrary objects."""
    goldens = [
        json.loads(p.read_text()) for p in sorted((FIXTURES / source).glob("*.json")) if p.name not in SPEC_FILES
    ]
    keys = st.sampled_from(_field_names(source))
    arbitrary = st.dictionaries(keys, JSON, max_size=8)
    if not goldens:
        return arbitrary

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, object]:
        doc = json.loads(json.dumps(draw(st.sampled_from(goldens))))
        for _ in range(draw(st.integers(1, 4))):
            target = doc
            while isinstance(target, dict) and target and draw(st.booleans()):
                key = draw(st.sampled_from(sorted(target)))
                if isinstance(target[key], dict):
                    target = target[key]
                else:
                    break
            if isinstance(target, dict) and target:
                key = draw(st.sampled_from(sorted(target)))
                if draw(st.booleans()):
                    del target[key]
                else:
                    target[key] = draw(JSON)
        return doc

    return st.one_of(arbitrary, mutated())


@pytest.mark.parametrize("source", sorted(MAPPINGS))
def test_arbitrary_and_mutated_payloads_never_crash(source: str) -> None:
    @settings(max_examples=150, deadline=None, database=None)
    @given(_mutations(source))
    def check(doc: dict[str, object]) -> None:
        outcome = normalise_record(
            raw_record(source, json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
        )
        produced = outcome.orders + outcome.inventory
        assert (outcome.rejection is None) == bool(produced)
        if outcome.rejection is not None:
            assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message
            assert outcome.rejection.message
        for out in produced:
            CODEC.decode(out.value)

    check()
