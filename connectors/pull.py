"""Generic incremental pull: time windows over a platform's "modified since" API -> raw topic.

Used by Taobao now and by every cursor-paged platform later; a platform plugs in through
:class:`PageSource` (one page of one time window), everything else lives here.

Guarantees
----------
* **Windows are closed-closed** ``[start, end]`` at the platform's time resolution, with
  ``start = cursor - overlap``: the instant ``cursor`` lies in two consecutive windows, so a
  record whose modified time equals the cursor (or any window boundary) is fetched twice -
  a duplicate, never a gap. Each platform query reaches one resolution step beyond both
  ends, so this holds whether the platform treats its own bounds as inclusive or exclusive.
* **Windows end in the past**: ``end <= now - safety_lag`` gives the platform's search index
  time to see recent changes; ``end - start + 2 steps <= max_window`` (the span the platform
  accepts, 1 day for TOP).
* **Paging by time, not by page number** (see :meth:`PullEngine._collect`): plain
  ``page_no`` paging over a newest-first list loses a record whenever a trade on an earlier
  page is modified while we page (the list shifts under us). Keyset paging re-queries the
  rest of the window instead; a record modified meanwhile has a later modified time and is
  found by a later window, because modified times only move forward.
* **Checkpoint after acknowledgement**: every record of a window is published, the producer
  is flushed (raising if any record failed), a watermark control record ("complete up to
  the window's end", :mod:`streams.control`) is written to every raw partition and flushed,
  and only then is the cursor saved as the window's end. A crash anywhere before that
  repeats the window: duplicates downstream, which is idempotent, and never a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connectors.backoff import Backoff, retry
from connectors.errors import (
    ConnectorError,
    PermanentError,
    PlatformError,
    PublishError,
    RateLimited,
    StateError,
    TransientError,
)
from connectors.metrics import ConnectorMetrics
from ordertwin.errors import ConfigError
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

SECOND = timedelta(seconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RawItem:
    """One platform record exactly as received, with the id used as Kafka key."""

    key: bytes | None
    value: bytes
    modified: datetime | None = None  # for logs and checks only; the bytes are the record


@dataclass(frozen=True)
class Page:
    items: Sequence[RawItem]
    has_next: bool


class PageSource(Protocol):
    """A platform's incremental endpoint, HTTP details hidden.

    ``fetch_page`` raises :class:`~connectors.errors.PlatformError` subclasses; retryable
    ones are retried by the engine.
    """

    name: str  # the source, e.g. "taobao" (also the raw topic suffix)
    max_window: timedelta  # largest end - start the platform accepts
    resolution: timedelta  # granularity of the platform's time parameters
    order: str  # "newest_first" | "oldest_first" | "unordered" (records by modified time)
    # Optional, read with getattr: ``start_inclusive``/``end_inclusive`` (bound semantics known
    # in advance), ``min_safety_lag_s`` (the platform needs windows to end at least this
    # far in the past; PullConfig.from_settings never uses a shorter lag) and
    # ``end_after_start`` (the platform refuses a query whose end equals its start, as TOP
    # does: such a query is asked as ``[end - resolution, end]``).

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page: ...


class Publisher(Protocol):
    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> None: ...

    def publish_watermark(self, topic: str, watermark: datetime) -> int: ...

    async def aflush(self, timeout: float = 30.0) -> int: ...  # noqa: ASYNC109 - see RawPublisher.aflush


class CursorStorage(Protocol):
    async def aload(self, name: str) -> dict[str, Any] | None: ...

    async def asave(self, name: str, value: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Window:
    """A closed-closed time interval ``[start, end]``."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


def floor_time(moment: datetime, resolution: timedelta) -> datetime:
    """Round down to a multiple of ``resolution`` since the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    steps = (moment - epoch) // resolution
    return epoch + steps * resolution


def plan_window(
    cursor: datetime,
    limit: datetime,
    *,
    overlap: timedelta,
    max_window: timedelta,
    resolution: timedelta = SECOND,
) -> Window | None:
    """The next window after ``cursor`` ending no later than ``limit``; None when caught up.

    ``start = floor(cursor - overlap)``, ``end = min(floor(start + max_window), limit)``, so
    the span never exceeds ``max_window`` and the window always ends after the cursor.
    """
    limit = floor_time(limit, resolution)
    if limit <= cursor:
        return None
    start = floor_time(cursor - overlap, resolution)
    end = min(floor_time(start + max_window, resolution), limit)
    if end <= cursor:
        raise ConfigError(f"pull window makes no progress: max_window {max_window} <= overlap {overlap}")
    return Window(start, end)


@dataclass(frozen=True)
class PullConfig:
    """Window geometry and pacing (all durations as timedelta, times timezone-aware)."""

    overlap: timedelta = timedelta(seconds=60)
    max_window: timedelta = timedelta(minutes=30)
    safety_lag: timedelta = timedelta(seconds=30)
    poll_interval: float = 5.0
    flush_timeout: float = 60.0
    initial_cursor: datetime | None = None  # None: now - default_lookback
    default_lookback: timedelta = timedelta(hours=24)
    max_pages: int = 10_000  # per window; a platform looping on has_next is a bug

    def __post_init__(self) -> None:
        if self.overlap < timedelta(0):
            raise ConfigError(f"pull overlap must be >= 0, got {self.overlap}")
        if self.max_window <= self.overlap:
            raise ConfigError(f"pull window {self.max_window} must be longer than the overlap {self.overlap}")
        if self.initial_cursor is not None and self.initial_cursor.tzinfo is None:
            raise ConfigError(f"initial cursor {self.initial_cursor} has no timezone")

    @classmethod
    def from_settings(cls, settings: Settings, source: PageSource) -> PullConfig:
        # Queries reach one resolution step beyond each end of a window (see _collect).
        window = min(timedelta(seconds=settings.pull_window_s), source.max_window - 2 * source.resolution)
        # A platform may require a longer lag than configured (an optional ``min_safety_lag_s``
        # on the source; PDD documents 3 min against lost orders), never a shorter one.
        lag = max(settings.pull_safety_lag_s, float(getattr(source, "min_safety_lag_s", 0.0)))
        return cls(
            overlap=timedelta(seconds=settings.pull_overlap_s),
            max_window=window,
            safety_lag=timedelta(seconds=lag),
            poll_interval=settings.poll_interval_s,
            flush_timeout=settings.connector_flush_timeout_s,
            initial_cursor=parse_pull_start(settings.pull_start),
        )


def parse_pull_start(text: str) -> datetime | None:
    """``settings.pull_start``: empty, or an ISO time with an explicit offset."""
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(f"pull_start {text!r} is not an ISO-8601 time") from exc
    if moment.tzinfo is None:
        raise ConfigError(f"pull_start {text!r} needs a timezone offset, e.g. +08:00 or Z")
    return moment


@dataclass
class PullSummary:
    """What one catch-up did."""

    start_cursor: datetime
    cursor: datetime
    windows: int = 0
    pages: int = 0
    fetched: int = 0
    published: int = 0
    retries: int = 0
    duplicates_skipped: int = 0  # re-fetched by window overlap or keyset re-queries, not re-sent
    stopped: bool = False
    window_log: list[Window] = field(default_factory=list)


class Stopped(ConnectorError):
    """The stop event fired while waiting; the current window is abandoned (not saved)."""


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, PermanentError):
        return "permanent"
    return "error"


class PullEngine:
    """Pull windows from one :class:`PageSource` into one raw topic, checkpointing each."""

    def __init__(
        self,
        source: PageSource,
        publisher: Publisher,
        store: CursorStorage,
        *,
        topic: str,
        config: PullConfig,
        metrics: ConnectorMetrics,
        backoff: Backoff,
        name: str | None = None,
        instance: str = "",
        clock: Callable[[], datetime] = utc_now,
        stop: asyncio.Event | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.source = source
        self.publisher = publisher
        self.store = store
        self.topic = topic
        self.config = config
        self.metrics = metrics
        self.backoff = backoff
        self.name = name or source.name
        self.instance = instance
        self.clock = clock
        self.stop = stop or asyncio.Event()
        self._sleep = sleep
        self.cursor: datetime | None = None
        # (key -> modified) already acknowledged by Kafka, for records that a later window's
        # overlap can fetch again; and what this window has enqueued so far. Only a record
        # Kafka acknowledged is ever skipped, so a failed flush cannot turn into a loss.
        self._acked: dict[bytes, datetime] = {}
        self._window_sent: dict[bytes, datetime] = {}
        self._sent_in_window = 0
        # Platform bound semantics: True once proven inclusive (or declared by the source).
        self._start_inclusive: bool = bool(getattr(source, "start_inclusive", False))
        self._end_inclusive: bool = bool(getattr(source, "end_inclusive", False))
        self._end_after_start: bool = bool(getattr(source, "end_after_start", False))
        if config.max_window + 2 * source.resolution > source.max_window:
            raise ConfigError(
                f"{source.name}: pull window {config.max_window} + 2 x {source.resolution} exceeds the "
                f"platform maximum {source.max_window}"
            )

    # -- cursor -------------------------------------------------------------------------
    def initial_cursor(self) -> datetime:
        start = self.config.initial_cursor or (self.clock() - self.config.default_lookback)
        return floor_time(start.astimezone(UTC), self.source.resolution)

    async def load_cursor(self, *, from_start: bool = False) -> datetime:
        """The stored cursor, or the configured start (always, when ``from_start``)."""
        stored = None if from_start else await self.store.aload(self.name)
        if stored is None:
            cursor = self.initial_cursor()
            log.info(
                "%s: starting from %s (%s)",
                self.name,
                cursor.isoformat(),
                "from start" if from_start else "no stored cursor",
            )
        else:
            try:
                cursor = datetime.fromisoformat(str(stored["cursor"]))
            except (KeyError, ValueError) as exc:
                raise StateError(f"stored cursor of {self.name!r} is unreadable: {stored!r}") from exc
            if cursor.tzinfo is None:
                raise StateError(f"stored cursor of {self.name!r} has no timezone: {stored!r}")
            log.info("%s: resuming from stored cursor %s", self.name, cursor.isoformat())
        self.cursor = cursor
        self._observe_cursor(cursor)
        return cursor

    def _observe_cursor(self, cursor: datetime) -> None:
        self.metrics.cursor.labels(self.source.name).set(cursor.timestamp())
        self.metrics.lag.labels(self.source.name).set(max(0.0, (self.clock() - cursor).total_seconds()))

    # -- waiting ------------------------------------------------------------------------
    async def _wait(self, seconds: float) -> None:
        """Sleep that ends early (raising :class:`Stopped`) when the stop event fires."""
        if self._sleep is not None:
            await self._sleep(seconds)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        if self.stop.is_set():
            raise Stopped(f"{self.name}: stopped while waiting")

    # -- one page / one window ----------------------------------------------------------
    async def _fetch(self, window: Window, page_no: int) -> Page:
        src = self.source.name
        try:
            page = await self.source.fetch_page(window.start, window.end, page_no)
        except Exception as exc:
            self.metrics.requests.labels(src, _outcome(exc)).inc()
            raise
        self.metrics.requests.labels(src, "ok").inc()
        return page

    def _query(self, lo: datetime, hi: datetime) -> Window:
        """The platform query that certainly returns every record in ``[lo, hi]``.

        A bound not (yet) known to be inclusive is widened by one resolution step; a
        one-instant query goes to a platform that refuses ``end == start`` as ``[end - res,
        end]`` (the older records it adds are duplicates at worst, never a gap).
        """
        res = self.source.resolution
        query = Window(lo if self._start_inclusive else lo - res, hi if self._end_inclusive else hi + res)
        if query.end <= query.start and self._end_after_start:
            query = Window(query.end - res, query.end)
        return query

    def _learn_bounds(self, query: Window, page: Page) -> None:
        """A record returned exactly at a query bound proves the platform includes that bound."""
        for item in page.items:
            if item.modified is None:
                continue
            t = floor_time(item.modified, self.source.resolution)
            if t == query.end and not self._end_inclusive:
                self._end_inclusive = True
                log.debug("%s: platform end bound is inclusive", self.name)
            if t == query.start and not self._start_inclusive:
                self._start_inclusive = True
                log.debug("%s: platform start bound is inclusive", self.name)

    async def _page(self, query: Window, page_no: int, summary: PullSummary) -> Page:
        """Fetch one page (retrying per the backoff schedule) and publish its records."""
        src = self.source.name

        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            summary.retries += 1
            log.warning("%s; retry %d in %.1fs", exc, attempt + 1, delay)

        page = await retry(
            functools.partial(self._fetch, query, page_no),
            backoff=self.backoff,
            sleep=self._wait,
            on_retry=on_retry,
        )
        received_at = self.clock()
        summary.pages += 1
        summary.fetched += len(page.items)
        self.metrics.records.labels(src, "fetched").inc(len(page.items))
        for item in page.items:
            if item.key is not None and item.modified is not None:
                if item.modified in (self._acked.get(item.key), self._window_sent.get(item.key)):
                    summary.duplicates_skipped += 1
                    continue
                self._window_sent[item.key] = item.modified
            self.publisher.publish(self.topic, item.key, item.value, received_at=received_at)
            self._sent_in_window += 1
        if page.has_next and not page.items:
            raise TransientError(src, f"page {page_no} of {query} is empty but has_next")
        self._learn_bounds(query, page)
        return page

    async def _page_through(self, query: Window, first: int, summary: PullSummary) -> None:
        """Pages ``first``, ``first + 1``, ... of ``query`` until ``has_next`` is false."""
        page_no = first
        while True:
            if page_no > self.config.max_pages:
                raise TransientError(self.source.name, f"{query} still has_next after {page_no - 1} pages")
            page = await self._page(query, page_no, summary)
            if not page.has_next:
                return
            page_no += 1

    async def _collect(self, window: Window, summary: PullSummary) -> int:
        """Publish every record modified in ``window`` (closed); return how many were sent.

        Time-keyset paging, robust to records changing while we page and to the platform's
        own bound semantics:

        * A query for ``[lo, hi]`` reaches one resolution step beyond each bound until the
          platform has shown that it includes that bound (see :meth:`_query`).
        * Only page 1 is asked for. With newest-first order every record newer than the
          page's oldest modified time ``m`` is on that page, so what remains is ``[lo, m]``,
          queried afresh: a record modified meanwhile (it leaves the window, and a later
          window finds it) cannot shift another one past a page boundary - the way plain
          ``page_no`` paging over a newest-first list loses trades (TOP warns about it).
        * When a page holds only records of the window's newest second (more than a page of
          trades modified in one second), that second alone is paged with ``page_no``, then
          the window shrinks by one second. Residual risk, there only: a trade of that same
          second modified again during those few calls can shift a neighbour past a page.
        * ``oldest_first`` platforms are handled symmetrically; platforms without a known
          order, or pages without readable modified times, fall back to ``page_no`` paging.
        """
        res = self.source.resolution
        order = getattr(self.source, "order", "unordered")
        lo, hi = window.start, window.end
        fetched_before = summary.fetched
        while lo <= hi:
            query = self._query(lo, hi)
            page = await self._page(query, 1, summary)
            if not page.has_next:
                break
            known = [
                t
                for t in (floor_time(i.modified, res) for i in page.items if i.modified is not None)
                if query.start <= t <= query.end
            ]
            if not known or order not in ("newest_first", "oldest_first"):
                await self._page_through(query, 2, summary)
                break
            if order == "newest_first":
                edge = min(known)
                if edge < lo:
                    break  # every record of [lo, hi] is newer than one on this page: all seen
                if edge < hi:
                    hi = edge
                elif edge == hi:
                    await self._page_through(self._query(hi, hi), 1, summary)
                    hi -= res
                # edge > hi: the page is all beyond hi, so the platform includes its end
                # bound (just learned); the next query no longer reaches past hi.
            else:
                edge = max(known)
                if edge > hi:
                    break
                if edge > lo:
                    lo = edge
                elif edge == lo:
                    await self._page_through(self._query(lo, lo), 1, summary)
                    lo += res
        return summary.fetched - fetched_before

    async def pull_window(self, window: Window, summary: PullSummary) -> None:
        """Fetch every record of ``window``, publish, flush, then save the cursor = window end."""
        src = self.source.name
        pages_before = summary.pages
        self._window_sent = {}
        self._sent_in_window = 0
        await self._collect(window, summary)
        published_here = self._sent_in_window
        try:
            delivered = await self.publisher.aflush(self.config.flush_timeout)
        except PublishError as exc:
            self.metrics.records.labels(src, "failed").inc(max(1, len(exc.failures)))
            raise
        self._remember_acked(window)
        self.metrics.records.labels(src, "published").inc(delivered)
        summary.published += published_here
        # The window's data is in Kafka: vouch for it, in band, on every raw partition.
        self.publisher.publish_watermark(self.topic, window.end)
        try:
            await self.publisher.aflush(self.config.flush_timeout)
        except PublishError:
            self.metrics.records.labels(src, "failed").inc()
            raise
        now = self.clock()
        await self.store.asave(
            self.name,
            {
                "cursor": window.end.astimezone(UTC).isoformat(),
                "updated_at": now.astimezone(UTC).isoformat(timespec="milliseconds"),
                "window_start": window.start.astimezone(UTC).isoformat(),
                "records": published_here,
                "source": src,
                "connector": self.instance,
            },
        )
        self.cursor = window.end
        summary.cursor = window.end
        summary.windows += 1
        summary.window_log.append(window)
        self.metrics.last_success.labels(src).set(now.timestamp())
        self._observe_cursor(window.end)
        log.info(
            "%s: window %s .. %s: %d page(s), %d record(s)",
            self.name,
            window.start.isoformat(),
            window.end.isoformat(),
            summary.pages - pages_before,
            published_here,
        )

    def _remember_acked(self, window: Window) -> None:
        """Keep acknowledged (key, modified) only as far back as a later window can reach."""
        self._acked.update(self._window_sent)
        self._window_sent = {}
        horizon = window.end - self.config.overlap - 2 * self.source.resolution
        self._acked = {k: m for k, m in self._acked.items() if m >= horizon}

    # -- loops --------------------------------------------------------------------------
    async def run_once(self, *, from_start: bool = False, reload: bool = True) -> PullSummary:
        """Catch up to ``now - safety_lag`` (as of this call), then return.

        Loads the cursor first (unless ``reload`` is False and one is already loaded).
        Returns early with ``stopped=True`` if the stop event fires.
        """
        if reload or self.cursor is None:
            await self.load_cursor(from_start=from_start)
        assert self.cursor is not None
        summary = PullSummary(start_cursor=self.cursor, cursor=self.cursor)
        target = self.clock() - self.config.safety_lag
        try:
            while not self.stop.is_set():
                window = plan_window(
                    self.cursor,
                    target,
                    overlap=self.config.overlap,
                    max_window=self.config.max_window,
                    resolution=self.source.resolution,
                )
                if window is None:
                    break
                await self.pull_window(window, summary)
        except Stopped:
            pass
        summary.stopped = self.stop.is_set()
        self._observe_cursor(self.cursor)
        return summary

    async def run(self, *, from_start: bool = False) -> None:
        """Catch up, wait ``poll_interval``, repeat until the stop event fires.

        A retryable platform error that outlasts the backoff schedule ends only the current
        cycle (the cursor did not move, so nothing is skipped); permanent platform errors and
        Kafka failures propagate - they need a human or a restart.
        """
        await self.load_cursor(from_start=from_start)
        while not self.stop.is_set():
            try:
                await self.run_once(reload=False)
            except PlatformError as exc:
                if not exc.retryable:
                    raise
                log.error("%s: giving up this cycle after retries: %s", self.name, exc)
            try:
                await self._wait(self.config.poll_interval)
            except Stopped:
                break
