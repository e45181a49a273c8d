"""Values passed between the normaliser's pure parts: raw records, outputs, rejections.

Errors are data: a per-source mapping raises :class:`Reject`, the dispatcher turns it
into a :class:`Rejection` value that the agent routes to the dead-letter topic.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ordertwin.errors import OrdertwinError

# Reason codes, as in schemas/reject_reason.avsc.
INVALID_JSON = "INVALID_JSON"
NOT_AN_OBJECT = "NOT_AN_OBJECT"
MISSING_FIELD = "MISSING_FIELD"
WRONG_TYPE = "WRONG_TYPE"
INVALID_VALUE = "INVALID_VALUE"
UNKNOWN_STATUS = "UNKNOWN_STATUS"
UNSUPPORTED = "UNSUPPORTED"
OVERSIZE = "OVERSIZE"
UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
INTERNAL_ERROR = "INTERNAL_ERROR"


class Reject(OrdertwinError):
    """Raised by a source mapping: this record cannot be mapped, and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class RawRecord:
    """A record as read from a ``raw.*`` topic, with its coordinates."""

    source: str | None  # None when the topic is not a known raw topic
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Context:
    """What a mapping needs besides the record: ingest time and the fingerprint key."""

    ingest_time: datetime
    fingerprint: Callable[[str], str]


def keyed_fingerprint(key: bytes) -> Callable[[str], str]:
    """HMAC-SHA256 fingerprints: comparable across systems, useless to read personal data."""

    keyed = hmac.new(key, digestmod=hashlib.sha256)  # key schedule once; each call copies it

    def fp(text: str) -> str:
        mac = keyed.copy()
        mac.update(text.encode("utf-8"))
        return mac.hexdigest()[:32]

    return fp


def event_id(*parts: object) -> str:
    """Deterministic id of a fact from the fields that make it that fact."""
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Normalised:
    """The outputs of one raw record: canonical records keyed for their topics."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    inventory: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """A raw record that produced nothing, and why (goes to the dead-letter topic)."""

    reason: str
    message: str
