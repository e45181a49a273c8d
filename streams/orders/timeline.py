"""Source watermarks and the deadline index: the divergence timer, O(due) per tick.

``Watermarks`` holds, per source and raw partition, how far the source's data is known to
be complete (from in-band Watermark control records); a source's watermark is the minimum
over all its raw partitions, so a lagging partition holds alerts back instead of causing
false ones. ``DeadlineIndex`` is a heap per source: a tick pops only what is due.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class Watermarks:
    """Per source: raw partition -> watermark ms, and the partition count to expect."""

    _by_source: dict[str, dict[int, int]] = field(default_factory=dict)
    _partitions: dict[str, int] = field(default_factory=dict)

    def update(self, source: str, raw_partition: int, raw_partitions: int, watermark_ms: int) -> bool:
        """Record progress; True when the source's watermark moved forward."""
        before = self.get(source)
        parts = self._by_source.setdefault(source, {})
        if watermark_ms <= parts.get(raw_partition, -1) and self._partitions.get(source) == raw_partitions:
            return False
        parts[raw_partition] = max(watermark_ms, parts.get(raw_partition, -1))
        self._partitions[source] = raw_partitions
        after = self.get(source)
        return after is not None and (before is None or after > before)

    def get(self, source: str) -> int | None:
        parts = self._by_source.get(source)
        expected = self._partitions.get(source)
        if not parts or expected is None or any(p not in parts for p in range(expected)):
            return None  # not every raw partition has vouched yet
        return min(parts[p] for p in range(expected))

    def sources(self) -> list[str]:
        return sorted(self._by_source)


@dataclass
class DeadlineIndex:
    """Heaps of (deadline ms, order key, rule) per source.

    Entries are hints, validated against the durable twin when popped (an episode may have
    closed meanwhile), so pushing the same episode twice is harmless; callers push only
    new episodes to keep the heap small.
    """

    _heaps: dict[str, list[tuple[int, bytes, str]]] = field(default_factory=dict)
    touched: int = 0  # entries inspected by pop_due: the timer's work, for tests and metrics

    def push(self, source: str, deadline_ms: int, key: bytes, rule: str) -> None:
        heapq.heappush(self._heaps.setdefault(source, []), (deadline_ms, key, rule))

    def pop_due(self, source: str, watermark_ms: int) -> list[tuple[bytes, str]]:
        """Remove and return every (key, rule) of the source with deadline <= watermark."""
        heap = self._heaps.get(source)
        due: list[tuple[bytes, str]] = []
        while heap:
            self.touched += 1
            deadline, key, rule = heap[0]
            if deadline > watermark_ms:
                break
            heapq.heappop(heap)
            due.append((key, rule))
        return due

    def next_deadline(self, source: str) -> int | None:
        heap = self._heaps.get(source)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return sum(len(h) for h in self._heaps.values())

    def clear(self) -> None:
        self._heaps.clear()
