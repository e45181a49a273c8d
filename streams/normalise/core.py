"""The normaliser's pure core: one raw record -> encoded canonical events, or a rejection.

Total by construction: every input ends as outputs or as exactly one :class:`Rejection`
with a reason code; an unexpected exception in a mapping becomes INTERNAL_ERROR rather
than crashing the agent (and is counted, so it is never silent).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from ordertwin.avro import Codec
from ordertwin.errors import SchemaError
from ordertwin.topics import SOURCES
from streams.normalise.model import (
    INTERNAL_ERROR,
    INVALID_JSON,
    NOT_AN_OBJECT,
    OVERSIZE,
    SCHEMA_VIOLATION,
    UNKNOWN_SOURCE,
    UNSUPPORTED,
    Context,
    RawRecord,
    Reject,
    Rejection,
)

log = logging.getLogger(__name__)


def _load_mappings() -> dict[str, ModuleType]:
    """One module per source in streams.normalise.sources, named after the source."""
    found: dict[str, ModuleType] = {}
    for source in SOURCES:
        try:
            module = importlib.import_module(f"streams.normalise.sources.{source}")
        except ModuleNotFoundError as exc:
            if exc.name != f"streams.normalise.sources.{source}":
                raise
            continue
        if getattr(module, "SOURCE", None) != source:
            raise RuntimeError(f"{module.__name__}.SOURCE must be {source!r}")
        found[source] = module
    return found


MAPPINGS: dict[str, ModuleType] = _load_mappings()


@dataclass(frozen=True)
class Encoded:
    """A canonical record ready to send: key and single-object-encoded value."""

    key: bytes
    value: bytes
    record: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """Result of normalising one raw record (exactly one of the two is non-empty)."""

    orders: list[Encoded] = field(default_factory=list)
    inventory: list[Encoded] = field(default_factory=list)
    rejection: Rejection | None = None


def ingest_time_of(raw: RawRecord, now: Callable[[], datetime]) -> datetime:
    """The connector's received_at header; else the Kafka timestamp; else now."""
    header = raw.headers.get("received_at")
    if header:
        try:
            parsed = datetime.fromisoformat(header.decode("utf-8"))
            if parsed.tzinfo is not None:
                return parsed
        except (UnicodeDecodeError, ValueError):
            pass
    if raw.timestamp_ms:
        return datetime.fromtimestamp(raw.timestamp_ms / 1000, UTC)
    return now()


def normalise_record(
    raw: RawRecord,
    *,
    codec: Codec,
    fingerprint: Callable[[str], str],
    max_bytes: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    mappings: Mapping[str, ModuleType] = MAPPINGS,
) -> Outcome:
    """Map and validate one raw record. Never raises."""
    if raw.source is None:
        return Outcome(rejection=Rejection(UNKNOWN_SOURCE, f"topic {raw.topic!r} is not a known raw topic"))
    mapping = mappings.get(raw.source)
    if mapping is None:
        return Outcome(rejection=Rejection(UNSUPPORTED, f"no normaliser for source {raw.source!r} yet"))
    if raw.value is None:
        return Outcome(rejection=Rejection(NOT_AN_OBJECT, "record has no value (tombstone)"))
    if len(raw.value) > max_bytes:
        return Outcome(rejection=Rejection(OVERSIZE, f"value is {len(raw.value)} bytes, limit {max_bytes}"))
    try:
        doc = json.loads(raw.value)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int too long to convert
        return Outcome(rejection=Rejection(INVALID_JSON, f"value is not JSON: {exc}"[:300]))
    except RecursionError:
        return Outcome(rejection=Rejection(INVALID_JSON, "value nests too deeply"))
    if not isinstance(doc, dict):
        return Outcome(rejection=Rejection(NOT_AN_OBJECT, f"value is JSON {type(doc).__name__}, not an object"))
    ctx = Context(ingest_time=ingest_time_of(raw, now), fingerprint=fingerprint)
    try:
        records = mapping.normalise(doc, raw, ctx)
    except Reject as rej:
        return Outcome(rejection=Rejection(rej.reason, rej.message))
    except Exception as exc:  # a mapping bug must not stop the pipeline
        log.exception("normaliser %s crashed on %s/%s@%s", raw.source, raw.topic, raw.partition, raw.offset)
        return Outcome(rejection=Rejection(INTERNAL_ERROR, f"{type(exc).__name__} in {raw.source} mapping"))
    orders: list[Encoded] = []
    inventory: list[Encoded] = []
    try:
        for rec in records:
            if "status" in rec:  # OrderEvents carry a lifecycle status; InventoryEvents never do
                orders.append(Encoded(rec["order_id"].encode(), codec.encode("OrderEvent", rec), rec))
            else:
                inventory.append(Encoded(rec["sku"].encode(), codec.encode("InventoryEvent", rec), rec))
    except SchemaError as exc:
        return Outcome(rejection=Rejection(SCHEMA_VIOLATION, str(exc)))
    if not orders and not inventory:
        return Outcome(rejection=Rejection(UNSUPPORTED, "record maps to no canonical event"))
    return Outcome(orders=orders, inventory=inventory)


def rejected_event(raw: RawRecord, rejection: Rejection, at: datetime) -> dict[str, Any]:
    """The RejectedEvent record for the dead-letter topic."""
    return {
        "source": raw.source or "unknown",
        "raw_topic": raw.topic,
        "raw_partition": raw.partition,
        "raw_offset": raw.offset,
        "raw_key": raw.key,
        "raw_value": raw.value,
        "raw_headers": {k: v.decode("utf-8", "replace") for k, v in raw.headers.items()},
        "reason": rejection.reason,
        "message": rejection.message[:2000],
        "rejected_at": at,
    }
