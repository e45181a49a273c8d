"""Play a generated scenario into ``raw.*`` in real time, the way the connectors would.

Each record is published to ``raw.<source>`` when the wall clock reaches its publish time
(its event time, or the end of an outage of its source), with the connector headers; every
``watermark_interval`` each source that is not in an outage vouches, in band, that its
data is complete up to ``now - lag``. Used by ``make run`` (a lively demo with real
alerts) and by the live divergence scenario tests; the platform simulators serve the same
records over their APIs for the connector tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connectors.publish import RawPublisher
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue

log = logging.getLogger(__name__)


class FeedRecord(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...


class FeedScenario(Protocol):
    records: Sequence[Any]
    outages: Sequence[Any]

    def publish_at(self, record: Any) -> datetime: ...


@dataclass
class FeedStats:
    published: dict[str, int] = field(default_factory=dict)
    watermarks: int = 0
    finished_at: datetime | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


class ScenarioFeed:
    """Publishes a scenario's records on time, then keeps vouching until ``until``."""

    def __init__(
        self,
        settings: Settings,
        scenario: FeedScenario,
        *,
        watermark_interval: float = 0.5,
        lag: timedelta = timedelta(milliseconds=200),
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tick: float = 0.05,
    ) -> None:
        self.settings = settings
        self.scenario = scenario
        self.catalogue = Catalogue.from_settings(settings)
        self.watermark_interval = watermark_interval
        self.lag = lag
        self.clock = clock
        self.sleep = sleep
        self.tick = tick
        self.sources = sorted({r.source for r in scenario.records})
        self.queue = sorted(scenario.records, key=lambda r: (scenario.publish_at(r), r.at))
        self.publishers: dict[str, RawPublisher] = {}

    def _publisher(self, source: str) -> RawPublisher:
        if source not in self.publishers:
            self.publishers[source] = RawPublisher(self.settings, source=source)
        return self.publishers[source]

    def _in_outage(self, source: str, now: datetime) -> bool:
        return any(o.source == source and o.start <= now < o.end for o in self.scenario.outages)

    async def run(self, *, until: datetime | None = None, stop: asyncio.Event | None = None) -> FeedStats:
        """Publish everything on time; keep emitting watermarks until ``until`` (or the last record)."""
        stats = FeedStats(published={s: 0 for s in self.sources})
        next_wm = self.clock()
        index = 0
        last = self.scenario.publish_at(self.queue[-1]) if self.queue else self.clock()
        end = max(until or last, last)
        try:
            while not (stop and stop.is_set()):
                now = self.clock()
                touched: set[str] = set()
                while index < len(self.queue) and self.scenario.publish_at(self.queue[index]) <= now:
                    rec = self.queue[index]
                    self._publisher(rec.source).publish(
                        self.catalogue.raw(rec.source).name, rec.key, rec.value, received_at=now
                    )
                    stats.published[rec.source] += 1
                    touched.add(rec.source)
                    index += 1
                for source in touched:
                    await self._publisher(source).aflush(self.settings.connector_flush_timeout_s)
                if now >= next_wm:
                    vouch = now - self.lag
                    for source in self.sources:
                        if self._in_outage(source, now):
                            continue
                        pub = self._publisher(source)
                        pub.publish_watermark(self.catalogue.raw(source).name, vouch)
                        await pub.aflush(self.settings.connector_flush_timeout_s)
                        stats.watermarks += 1
                    next_wm = now + timedelta(seconds=self.watermark_interval)
                if index >= len(self.queue) and now >= end:
                    break
                await self.sleep(self.tick)
        finally:
            for pub in self.publishers.values():
                pub.close()
        stats.finished_at = self.clock()
        log.info("scenario feed done: %s records, %d watermarks", stats.published, stats.watermarks)
        return stats
