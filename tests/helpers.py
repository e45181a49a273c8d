"""Shared test helpers (pure; no Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ordertwin.avro import Codec
from ordertwin.settings import REPO_ROOT
from streams.normalise.model import RawRecord, keyed_fingerprint

FIXTURES = Path(__file__).parent / "fixtures"
CODEC = Codec.from_dir(REPO_ROOT / "schemas")
FP = keyed_fingerprint(b"test-key")
NOW = datetime(2026, 11, 11, 1, 0, tzinfo=UTC)


def fixture_bytes(source: str, name: str) -> bytes:
    return (FIXTURES / source / name).read_bytes()


def fixture_json(source: str, name: str) -> Any:
    return json.loads(fixture_bytes(source, name))


def raw_record(
    source: str | None,
    value: bytes | None,
    *,
    topic: str | None = None,
    offset: int = 0,
    key: bytes | None = b"k",
    headers: dict[str, bytes] | None = None,
) -> RawRecord:
    return RawRecord(
        source=source,
        topic=topic or f"raw.{source}",
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=headers if headers is not None else {"received_at": NOW.isoformat().encode()},
        timestamp_ms=None,
    )


SPEC_FILES = ("expected.json", "expected_inventory.json", "rejected.json")


def expected_specs(source: str) -> dict[str, Any]:
    """Golden payload specs of a source: order side and (WMS) stock side."""
    out: dict[str, Any] = {}
    for kind in SPEC_FILES[:2]:
        path = FIXTURES / source / kind
        if path.exists():
            out.update(json.loads(path.read_text()))
    return out
