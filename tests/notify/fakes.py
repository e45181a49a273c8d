"""An in-memory stand-in for confluent_kafka.Consumer and sample alerts (unit tests only; the
end-to-end test uses the real broker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import CODEC

TOPIC = "alerts"


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return None


@dataclass
class FakeConsumer:
    """Hands out queued messages (``per_call`` at most per consume); records every commit."""

    messages: list[FakeMessage] = field(default_factory=list)
    per_call: int = 10_000
    commits: list[list[tuple[str, int, int]]] = field(default_factory=list)
    on_consume: Callable[[], None] | None = None
    on_commit: Callable[[list[tuple[str, int, int]]], None] | None = None
    _next: dict[int, int] = field(default_factory=dict)
    _pos: int = 0

    def add(self, values: list[bytes], partition: int = 0) -> None:
        for value in values:
            offset = self._next.get(partition, 0)
            self._next[partition] = offset + 1
            self.messages.append(FakeMessage(TOPIC, partition, offset, value))

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        if self.on_consume is not None:
            self.on_consume()
        n = min(num_messages, self.per_call)
        out = self.messages[self._pos : self._pos + n]
        self._pos += len(out)
        if not out:
            time.sleep(min(max(timeout, 0), 0.01))
        return out

    def commit(self, *, offsets: list[tuple[str, int, int]], asynchronous: bool = True) -> None:
        assert asynchronous is False, "commits must be synchronous"
        self.commits.append(list(offsets))
        if self.on_commit is not None:
            self.on_commit(list(offsets))

    def committed_upto(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for batch in self.commits:
            for topic, partition, offset in batch:
                out[(topic, partition)] = max(out.get((topic, partition), 0), offset)
        return out


def alert(
    n: int, *, rule: str = "paid_not_in_wms", state: str = "RAISED", severity: str = "CRITICAL", subsystem: str = "WMS"
) -> dict[str, Any]:
    started = datetime(2026, 11, 25, 10, 0, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "alert_id": f"a{n:05d}",
        "state": state,
        "rule": rule,
        "severity": severity,
        "subject_type": "order",
        "subject": f"taobao:{4_000_000 + n}",
        "channel": "taobao",
        "subsystem": subsystem,
        "expected": "the warehouse received the paid order",
        "observed": "nothing (never reported this order)",
        "message": f"taobao:{4_000_000 + n}: expected the warehouse received the paid order",
        "episode_started_at": started,
        "deadline": started + timedelta(minutes=10),
        "emitted_at": started + timedelta(minutes=10, seconds=1),
        "resolved_at": started + timedelta(minutes=30) if state == "RESOLVED" else None,
        "duration_ms": 1_800_000 if state == "RESOLVED" else None,
        "details": {"twin_state": "PAID"},
    }


def encoded(*alerts: dict[str, Any]) -> list[bytes]:
    return [CODEC.encode("Alert", a) for a in alerts]


def offsets_of(commit: list[Any]) -> list[tuple[str, int, int]]:
    return [tuple(x) for x in commit]  # type: ignore[misc]


def identity_offsets(offsets: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Used instead of confluent TopicPartitions so commits are plain tuples in tests."""
    return offsets
