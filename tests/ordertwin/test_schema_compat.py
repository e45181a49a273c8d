"""Schema evolution: current schemas vs every released snapshot, both directions.

Random records are generated from the writer schema, written with it, and read with the
reader schema (Avro schema resolution). A change that breaks a downstream reader fails here.
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
import pytest

from ordertwin.avro import Codec
from ordertwin.settings import REPO_ROOT

HISTORY = Path(__file__).resolve().parents[2] / "schemas" / "history"
CURRENT = Codec.from_dir(REPO_ROOT / "schemas")
SNAPSHOTS = {p.name: Codec.from_dir(p) for p in sorted(HISTORY.iterdir()) if p.is_dir()}


def _records(codec: Codec) -> dict[str, Any]:
    out = {}
    for name in {s.name for s in codec._by_name.values()}:
        parsed = codec.schema(name).parsed
        if isinstance(parsed, dict) and parsed.get("type") == "record":
            out[name] = codec.schema(name)
    return out


def random_datum(schema: Any, rng: random.Random, named: dict[str, Any]) -> Any:
    """A random value of an (expanded or named-referencing) fastavro-parsed schema."""
    if isinstance(schema, str):
        if schema in named:
            return random_datum(named[schema], rng, named)
        return {
            "null": None,
            "boolean": rng.random() < 0.5,
            "int": rng.randint(-(2**31), 2**31 - 1),
            "long": rng.randint(-(2**40), 2**40),
            "float": rng.random(),
            "double": rng.random(),
            "string": "".join(rng.choice(string.ascii_letters + "订单") for _ in range(rng.randint(0, 12))),
            "bytes": bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 8))),
        }[schema]
    if isinstance(schema, list):
        return random_datum(rng.choice(schema), rng, named)
    kind = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":
        return datetime.fromtimestamp(rng.randint(1_600_000_000_000, 1_900_000_000_000) / 1000, UTC)
    if kind == "record":
        named[schema["name"]] = schema
        return {f["name"]: random_datum(f["type"], rng, named) for f in schema["fields"]}
    if kind == "enum":
        named[schema["name"]] = schema
        return rng.choice(schema["symbols"][1:] or schema["symbols"])  # UNKNOWN is the reader fallback
    if kind == "array":
        return [random_datum(schema["items"], rng, named) for _ in range(rng.randint(0, 3))]
    if kind == "map":
        return {f"k{i}": random_datum(schema["values"], rng, named) for i in range(rng.randint(0, 3))}
    return random_datum(kind, rng, named)


def _roundtrip(writer: Any, reader: Any, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        datum = random_datum(writer, rng, {})
        buf = BytesIO()
        fastavro.schemaless_writer(buf, writer, datum)
        buf.seek(0)
        fastavro.schemaless_reader(buf, writer, reader)


CASES = [(version, name) for version, snap in SNAPSHOTS.items() for name in sorted(_records(snap))]


def _expanded(codec: Codec, name: str) -> Any:
    return codec.schema(name).expanded


@pytest.mark.parametrize(("version", "name"), CASES)
def test_current_reads_snapshot_data_backward(version: str, name: str) -> None:
    assert name in _records(CURRENT), f"{name} was removed: downstream readers of {version} break"
    _roundtrip(_expanded(SNAPSHOTS[version], name), _expanded(CURRENT, name), seed=1)


@pytest.mark.parametrize(("version", "name"), CASES)
def test_snapshot_reads_current_data_forward(version: str, name: str) -> None:
    _roundtrip(_expanded(CURRENT, name), _expanded(SNAPSHOTS[version], name), seed=2)


def test_generator_exercises_every_current_record() -> None:
    for name in _records(CURRENT):
        _roundtrip(_expanded(CURRENT, name), _expanded(CURRENT, name), seed=3)


def test_an_incompatible_change_is_caught() -> None:
    """The harness itself: adding a field without a default breaks backward reading."""
    old = fastavro.parse_schema({"type": "record", "name": "X", "fields": [{"name": "a", "type": "int"}]})
    new = fastavro.parse_schema(
        {"type": "record", "name": "X", "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]}
    )
    with pytest.raises(fastavro.read.SchemaResolutionError):
        _roundtrip(old, new, seed=4)


def test_adding_a_defaulted_field_is_compatible_both_ways() -> None:
    """And the harness accepts the evolution we promise: new optional fields with defaults."""
    old = fastavro.parse_schema({"type": "record", "name": "X", "fields": [{"name": "a", "type": "int"}]})
    new = fastavro.parse_schema(
        {
            "type": "record",
            "name": "X",
            "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": ["null", "string"], "default": None}],
        }
    )
    _roundtrip(old, new, seed=5)
    _roundtrip(new, old, seed=6)


@pytest.mark.parametrize(("version", "name"), CASES)
def test_the_runtime_codec_reads_what_a_released_version_wrote(version: str, name: str) -> None:
    """An upgraded worker meets the previous release's records (twin rows in a changelog,
    events in retained topics): the codec knows the released fingerprints and reads such a
    record into today's schema of the same name."""
    rng = random.Random(7)
    old = SNAPSHOTS[version]
    current_fields = {f["name"] for f in CURRENT.schema(name).expanded["fields"]}
    for _ in range(10):
        data = old.encode(name, random_datum(_expanded(old, name), rng, {}))
        got, record = CURRENT.decode(data)
        assert got == name
        assert set(record) == current_fields
        assert CURRENT.is_historic(data) == (old.schema(name).fingerprint != CURRENT.schema(name).fingerprint)


def test_a_fingerprint_of_no_release_is_still_refused() -> None:
    from ordertwin.errors import DecodeError

    data = bytearray(
        CURRENT.encode("Watermark", random_datum(_expanded(CURRENT, "ordertwin.Watermark"), random.Random(1), {}))
    )
    data[2:10] = b"\x00" * 8
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        CURRENT.decode(bytes(data))
