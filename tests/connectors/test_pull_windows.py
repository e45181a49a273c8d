"""The pull engine's windows, paging and checkpointing, with a fake platform (no HTTP, no Kafka).

Windows are closed-closed ``[start, end]``; these tests check that no record is lost at page
or window boundaries, including records whose modified time equals the cursor, whatever
bound semantics the platform itself uses.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from connectors.backoff import Backoff
from connectors.errors import DeliveryFailure, PermanentError, PublishError, RateLimited
from connectors.metrics import ConnectorMetrics
from connectors.pull import (
    Page,
    PullConfig,
    PullEngine,
    RawItem,
    Window,
    floor_time,
    parse_pull_start,
    plan_window,
)
from ordertwin.errors import ConfigError

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)


# --- fakes ---------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakePlatform:
    """Records (key, modified) served newest first, paged, with configurable bound semantics."""

    name = "fake"
    max_window = timedelta(days=1)
    resolution = S

    def __init__(
        self, records: Mapping[str, datetime], *, page_size: int = 3, bounds: str = "[]", order: str = "newest_first"
    ) -> None:
        self.order = order
        self.records = dict(records)
        self.page_size = page_size
        self.bounds = bounds  # "[]", "[)", "(]", "()"
        self.calls: list[tuple[datetime, datetime, int]] = []
        self.failures: dict[int, Exception] = {}  # call number (1-based) -> error to raise
        self.before_page: Any = None  # hook(call_no, page_no)

    def _in(self, t: datetime, start: datetime, end: datetime) -> bool:
        lo = start <= t if self.bounds[0] == "[" else start < t
        hi = t <= end if self.bounds[1] == "]" else t < end
        return lo and hi

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        assert end - start <= self.max_window
        self.calls.append((start, end, page_no))
        n = len(self.calls)
        if n in self.failures:
            raise self.failures.pop(n)
        if self.before_page is not None:
            self.before_page(n, page_no)
        hits = sorted(
            ((t, k) for k, t in self.records.items() if self._in(t, start, end)),
            reverse=self.order != "oldest_first",
        )
        lo = (page_no - 1) * self.page_size
        page = hits[lo : lo + self.page_size]
        items = [RawItem(key=k.encode(), value=f'{{"id":"{k}"}}'.encode(), modified=t) for t, k in page]
        return Page(items=items, has_next=lo + self.page_size < len(hits))


class FakePublisher:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.published: list[bytes | None] = []
        self.watermarks: list[datetime] = []
        self.pending = 0
        self.fail_next_flush = False

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Mapping[str, str | bytes] | None = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> None:
        self.log.append(f"publish {key!r}")
        self.published.append(key)
        self.pending += 1

    def publish_watermark(self, topic: str, watermark: datetime) -> int:
        self.log.append(f"watermark {watermark.isoformat()}")
        self.watermarks.append(watermark)
        return 1

    async def aflush(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        self.log.append("flush")
        n, self.pending = self.pending, 0
        if self.fail_next_flush:
            self.fail_next_flush = False
            raise PublishError("fake", [DeliveryFailure("raw.fake", b"k", "broker said no")])
        return n


class FakeStore:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.values: dict[str, dict[str, Any]] = {}

    async def aload(self, name: str) -> dict[str, Any] | None:
        return self.values.get(name)

    async def asave(self, name: str, value: Mapping[str, Any]) -> None:
        self.log.append(f"save {value['cursor']}")
        self.values[name] = dict(value)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []
        self.hook: Any = None

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.hook is not None:
            self.hook()


def make_engine(
    platform: FakePlatform,
    *,
    clock: Clock,
    overlap: timedelta = timedelta(seconds=60),
    max_window: timedelta = timedelta(minutes=30),
    safety_lag: timedelta = timedelta(seconds=30),
    initial: datetime = T0,
    stop: asyncio.Event | None = None,
) -> tuple[PullEngine, FakePublisher, FakeStore, list[str], FakeSleep, ConnectorMetrics]:
    log: list[str] = []
    pub, store, sleep = FakePublisher(log), FakeStore(log), FakeSleep()
    metrics = ConnectorMetrics(CollectorRegistry())
    engine = PullEngine(
        platform,
        pub,
        store,
        topic="raw.fake",
        config=PullConfig(overlap=overlap, max_window=max_window, safety_lag=safety_lag, initial_cursor=initial),
        metrics=metrics,
        backoff=Backoff((0.01, 0.02, 0.04), rng=random.Random(0)),
        clock=clock,
        stop=stop,
        sleep=sleep,
    )
    return engine, pub, store, log, sleep, metrics


# --- pure window planning ------------------------------------------------------------------


def test_window_starts_overlap_before_cursor_and_spans_max_window() -> None:
    w = plan_window(T0, T0 + timedelta(hours=2), overlap=timedelta(seconds=60), max_window=timedelta(minutes=30))
    assert w == Window(T0 - timedelta(seconds=60), T0 + timedelta(minutes=29))


def test_window_ends_at_the_limit() -> None:
    w = plan_window(T0, T0 + timedelta(minutes=10), overlap=timedelta(0), max_window=timedelta(minutes=30))
    assert w == Window(T0, T0 + timedelta(minutes=10))


def test_caught_up_when_limit_not_after_cursor() -> None:
    kw = {"overlap": timedelta(seconds=60), "max_window": timedelta(minutes=30)}
    assert plan_window(T0, T0, **kw) is None
    assert plan_window(T0, T0 - S, **kw) is None
    assert plan_window(T0, T0 + timedelta(milliseconds=900), **kw) is None  # floored to whole seconds


def test_window_is_aligned_to_resolution() -> None:
    cursor = T0 + timedelta(milliseconds=1500)
    w = plan_window(cursor, T0 + timedelta(hours=1, milliseconds=700), overlap=S, max_window=timedelta(minutes=5))
    assert w is not None
    assert w.start == T0 and w.end == T0 + timedelta(minutes=5)
    assert w.end - w.start <= timedelta(minutes=5)


def test_window_contains_is_closed_closed() -> None:
    w = Window(T0, T0 + S)
    assert T0 in w and T0 + S in w and T0 + 2 * S not in w


def test_no_progress_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="longer than the overlap"):
        PullConfig(overlap=timedelta(minutes=5), max_window=timedelta(minutes=5))
    with pytest.raises(ConfigError):
        PullConfig(overlap=-S)


def test_pull_start_needs_a_timezone() -> None:
    assert parse_pull_start("") is None
    assert parse_pull_start("2026-11-11T08:00:00+08:00") == T0
    with pytest.raises(ConfigError, match="timezone"):
        parse_pull_start("2026-11-11T08:00:00")
    with pytest.raises(ConfigError, match="ISO"):
        parse_pull_start("yesterday")


@settings(deadline=None)
@given(
    overlap_s=st.integers(0, 600),
    extra_s=st.integers(1, 7200),
    span_s=st.integers(1, 20_000),
    offset_ms=st.integers(0, 999),
)
def test_consecutive_windows_cover_every_instant(overlap_s: int, extra_s: int, span_s: int, offset_ms: int) -> None:
    overlap, max_window = timedelta(seconds=overlap_s), timedelta(seconds=overlap_s + extra_s)
    cursor = T0 + timedelta(milliseconds=offset_ms)
    limit = cursor + timedelta(seconds=span_s)
    covered_to = floor_time(cursor, S)
    windows = 0
    while (w := plan_window(cursor, limit, overlap=overlap, max_window=max_window)) is not None:
        assert w.start <= covered_to, "gap between windows"
        assert w.end - w.start <= max_window
        assert w.end > cursor
        covered_to, cursor = w.end, w.end
        windows += 1
    assert covered_to == floor_time(limit, S) or windows == 0


def test_floor_time() -> None:
    assert floor_time(T0 + timedelta(milliseconds=999), S) == T0
    assert floor_time(T0, timedelta(minutes=1)) == T0


# --- the engine ----------------------------------------------------------------------------


async def test_record_at_the_cursor_and_at_window_ends_are_fetched() -> None:
    window_end = T0 - timedelta(seconds=60) + timedelta(minutes=30)  # first window's end
    records = {
        "at-cursor": T0,
        "just-before": T0 - S,  # inside the overlap: re-fetched, harmless
        "at-first-end": window_end,
        "after-first-end": window_end + S,
        "late": T0 + timedelta(hours=1),
    }
    platform = FakePlatform(records, page_size=2)
    engine, pub, store, _, _, _ = make_engine(platform, clock=Clock(T0 + timedelta(hours=2)))
    summary = await engine.run_once()
    assert {k.decode() for k in pub.published if k} == set(records)
    assert summary.windows == 5  # 1 h 59 m 30 s (2 h - lag) in windows advancing 29 min
    assert store.values["fake"]["cursor"] == (T0 + timedelta(hours=2) - timedelta(seconds=30)).isoformat()


@pytest.mark.parametrize("bounds", ["[]", "[)", "(]", "()"])
async def test_no_loss_at_window_boundaries_even_without_overlap(bounds: str) -> None:
    # Records on every second, so every window boundary has one.
    records = {f"r{i}": T0 + i * S for i in range(0, 400)}
    platform = FakePlatform(records, page_size=7, bounds=bounds)
    engine, pub, _, _, _, _ = make_engine(
        platform, clock=Clock(T0 + timedelta(seconds=450)), overlap=timedelta(0), max_window=timedelta(seconds=37)
    )
    await engine.run_once()
    assert {k.decode() for k in pub.published if k} == set(records)


async def test_overlap_covers_a_platform_with_exclusive_bounds() -> None:
    records = {f"r{i}": T0 + i * S for i in range(0, 200)}
    platform = FakePlatform(records, page_size=5, bounds="()")
    engine, pub, _, _, _, _ = make_engine(
        platform,
        clock=Clock(T0 + timedelta(seconds=250)),
        overlap=S,
        max_window=timedelta(seconds=20),
        initial=T0 - S,
    )
    await engine.run_once()
    assert {k.decode() for k in pub.published if k} == set(records)


async def test_many_records_with_the_same_timestamp_across_pages() -> None:
    records = {f"same{i:03d}": T0 + timedelta(minutes=5) for i in range(250)}
    records.update({f"other{i}": T0 + timedelta(minutes=5) + i * S for i in range(1, 10)})
    platform = FakePlatform(records, page_size=7)
    engine, pub, _, _, _, _ = make_engine(platform, clock=Clock(T0 + timedelta(minutes=20)))
    summary = await engine.run_once()
    assert {k.decode() for k in pub.published if k} == set(records)
    assert summary.fetched < 1.2 * len(records)  # the dense second is read once
    assert len(pub.published) == summary.fetched - summary.duplicates_skipped == len(records)  # and sent once


async def test_cursor_is_saved_only_after_the_flush() -> None:
    records = {f"r{i}": T0 + timedelta(minutes=i) for i in range(90)}
    platform = FakePlatform(records, page_size=4)
    engine, _, _, log, _, _ = make_engine(platform, clock=Clock(T0 + timedelta(hours=1, minutes=31)))
    summary = await engine.run_once()
    assert summary.windows == 4
    # Every window: data, flush, watermark (= the window end), flush, then the cursor save.
    windows: list[list[str]] = []
    current: list[str] = []
    for event in log:
        current.append(event)
        if event.startswith("save"):
            windows.append(current)
            current = []
    assert current == []
    for events, window in zip(windows, summary.window_log, strict=True):
        end = window.end.isoformat()
        assert events[-4:] == ["flush", f"watermark {end}", "flush", f"save {end}"]
        assert all(e.startswith("publish") for e in events[:-4])


async def test_failed_delivery_keeps_the_cursor_and_repeats_the_window() -> None:
    records = {"a": T0 + timedelta(minutes=1), "b": T0 + timedelta(minutes=2)}
    platform = FakePlatform(records)
    clock = Clock(T0 + timedelta(minutes=10))
    engine, pub, store, _, _, metrics = make_engine(platform, clock=clock)
    pub.fail_next_flush = True
    with pytest.raises(PublishError, match="broker said no"):
        await engine.run_once()
    assert store.values == {}
    assert metrics.value("ordertwin_connector_records_total", source="fake", outcome="failed") == 1
    summary = await engine.run_once()
    assert summary.published == 2 and pub.published.count(b"a") == 2  # duplicate, not a gap
    assert store.values["fake"]["cursor"] == (clock.now - timedelta(seconds=30)).isoformat()


async def test_stored_cursor_is_resumed_and_from_start_ignores_it() -> None:
    records = {"old": T0 + timedelta(minutes=1), "new": T0 + timedelta(minutes=50)}
    platform = FakePlatform(records)
    clock = Clock(T0 + timedelta(minutes=20))
    engine, pub, store, _, _, _ = make_engine(platform, clock=clock)
    await engine.run_once()
    assert pub.published == [b"old"]
    clock.now = T0 + timedelta(hours=1)
    await engine.run_once()
    assert pub.published == [b"old", b"new"]  # resumed: "old" is outside the overlap
    pub.published.clear()
    await engine.run_once(from_start=True)
    assert sorted(pub.published) == [b"new", b"old"]
    assert store.values["fake"]["cursor"] == (clock.now - timedelta(seconds=30)).isoformat()


async def test_rate_limits_are_retried_with_backoff() -> None:
    records = {f"r{i}": T0 + timedelta(minutes=1) for i in range(10)}
    platform = FakePlatform(records, page_size=3)
    platform.failures = {2: RateLimited("fake", "ban", retry_after=1.0), 3: RateLimited("fake", "ban")}
    engine, pub, _, _, sleep, metrics = make_engine(platform, clock=Clock(T0 + timedelta(minutes=10)))
    summary = await engine.run_once()
    assert summary.retries == 2 and len(sleep.calls) == 2
    assert sleep.calls[0] >= 1.0  # the ban's minimum
    assert {k.decode() for k in pub.published if k} == set(records)
    assert metrics.value("ordertwin_connector_requests_total", source="fake", outcome="rate_limited") == 2
    assert metrics.value("ordertwin_connector_requests_total", source="fake", outcome="ok") == summary.pages
    assert metrics.value("ordertwin_connector_records_total", source="fake", outcome="fetched") == summary.fetched
    published = summary.fetched - summary.duplicates_skipped
    assert metrics.value("ordertwin_connector_records_total", source="fake", outcome="published") == published


async def test_permanent_error_stops_without_saving() -> None:
    platform = FakePlatform({"a": T0 + S})
    platform.failures = {1: PermanentError("fake", "Invalid signature", code="25")}
    engine, _, store, _, sleep, _ = make_engine(platform, clock=Clock(T0 + timedelta(minutes=10)))
    with pytest.raises(PermanentError, match="Invalid signature"):
        await engine.run_once()
    assert store.values == {} and sleep.calls == []


async def test_stop_during_backoff_abandons_the_window() -> None:
    stop = asyncio.Event()
    platform = FakePlatform({"a": T0 + S})
    platform.failures = {1: RateLimited("fake", "ban")}
    engine, _, store, _, sleep, _ = make_engine(platform, clock=Clock(T0 + timedelta(minutes=10)), stop=stop)
    sleep.hook = stop.set
    summary = await engine.run_once()
    assert summary.stopped and summary.windows == 0 and store.values == {}


async def test_record_modified_while_paging_reappears_later() -> None:
    """TOP pages newest first: a trade modified mid-paging leaves the window, shifting the
    rest; it is found in a later window since its new modified time is later."""
    records = {f"r{i:02d}": T0 + timedelta(seconds=10 * i) for i in range(30)}
    platform = FakePlatform(records, page_size=5)
    clock = Clock(T0 + timedelta(minutes=10))

    def touch(call_no: int, page_no: int) -> None:
        if page_no == 2 and "r27" in platform.records and platform.records["r27"] < clock.now:
            platform.records["r27"] = clock.now  # r27 was on page 1: everything shifts up one
            clock.now += timedelta(seconds=1)

    platform.before_page = touch
    engine, pub, _, _, _, _ = make_engine(platform, clock=clock)
    await engine.run_once()
    clock.now += timedelta(minutes=5)
    await engine.run_once()
    assert {k.decode() for k in pub.published if k} == set(records)


async def test_metrics_lag_and_last_success() -> None:
    clock = Clock(T0 + timedelta(minutes=10))
    engine, _, _, _, _, metrics = make_engine(FakePlatform({}), clock=clock)
    await engine.run_once()
    assert metrics.value("ordertwin_connector_poll_lag_seconds", source="fake") == 30.0
    assert metrics.value("ordertwin_connector_last_success_timestamp_seconds", source="fake") == clock.now.timestamp()


async def test_run_loop_stops_on_event() -> None:
    stop = asyncio.Event()
    clock = Clock(T0 + timedelta(minutes=10))
    platform = FakePlatform({"a": T0 + S})
    engine, pub, _, _, sleep, _ = make_engine(platform, clock=clock, stop=stop)
    polls = 0

    def tick() -> None:
        nonlocal polls
        polls += 1
        clock.now += timedelta(seconds=5)
        if polls == 3:
            stop.set()

    sleep.hook = tick
    await asyncio.wait_for(engine.run(), timeout=5)
    assert polls == 3 and pub.published.count(b"a") == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offsets=st.lists(st.integers(-120, 4000), min_size=0, max_size=120),
    page_size=st.integers(1, 9),
    overlap_s=st.integers(0, 90),
    extra_s=st.integers(1, 900),
    bounds=st.sampled_from(["[]", "[)", "(]", "()"]),
    order=st.sampled_from(["newest_first", "oldest_first", "unordered"]),
)
def test_property_every_record_is_published(
    offsets: list[int], page_size: int, overlap_s: int, extra_s: int, bounds: str, order: str
) -> None:
    """Any timestamps (many equal), page size, overlap, window, order and bound semantics:
    every record modified in [initial cursor, now - lag] is published at least once."""
    records = {f"r{i}": T0 + timedelta(seconds=o) for i, o in enumerate(offsets)}
    now = T0 + timedelta(seconds=4100)
    platform = FakePlatform(records, page_size=page_size, bounds=bounds, order=order)
    engine, pub, _, _, _, _ = make_engine(
        platform,
        clock=Clock(now),
        overlap=timedelta(seconds=overlap_s),
        max_window=timedelta(seconds=overlap_s + extra_s),
        safety_lag=timedelta(seconds=30),
    )
    asyncio.run(engine.run_once())
    expected = {k for k, t in records.items() if T0 <= t <= now - timedelta(seconds=30)}
    assert expected <= {k.decode() for k in pub.published if k}


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 1200), min_size=1, max_size=80, unique=True),
    page_size=st.integers(1, 6),
    touches=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 79)), max_size=10),
    bounds=st.sampled_from(["[]", "[)", "(]", "()"]),
)
def test_property_records_modified_during_paging_are_not_lost(
    offsets: list[int], page_size: int, touches: list[tuple[int, int]], bounds: str
) -> None:
    """Trades modified while we page (they jump to 'now') never make us miss another one:
    every record is published by the first run or, if it was touched, by the second."""
    records = {f"r{i:02d}": T0 + timedelta(seconds=o) for i, o in enumerate(offsets)}
    platform = FakePlatform(records, page_size=page_size, bounds=bounds)
    clock = Clock(T0 + timedelta(minutes=30))
    plan = dict(touches)  # call number -> index of the record to modify before that call

    def touch(call_no: int, page_no: int) -> None:
        index = plan.get(call_no)
        if index is not None and index < len(offsets):
            platform.records[f"r{index:02d}"] = clock.now
            clock.now += S

    platform.before_page = touch
    engine, pub, _, _, _, _ = make_engine(platform, clock=clock, max_window=timedelta(minutes=10))
    asyncio.run(engine.run_once())
    clock.now += timedelta(minutes=10)
    asyncio.run(engine.run_once())
    assert set(records) <= {k.decode() for k in pub.published if k}


async def test_learns_an_inclusive_end_bound() -> None:
    platform = FakePlatform({f"r{i}": T0 + timedelta(minutes=3) for i in range(40)}, page_size=5)
    engine, pub, _, _, _, _ = make_engine(platform, clock=Clock(T0 + timedelta(minutes=10)))
    assert not engine._end_inclusive
    await engine.run_once()
    assert engine._end_inclusive and engine._start_inclusive is False
    assert len(pub.published) <= 40 + 3 * 5


async def test_a_platform_refusing_end_equal_to_start_is_never_asked_for_one_instant() -> None:
    """TOP refuses end_modified == start_modified; the engine narrows to one second when more
    records than a page share the window's newest second and both bounds proved inclusive."""

    class RefusesOneInstant(FakePlatform):
        end_after_start = True

        async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
            if end <= start:
                raise PermanentError("fake", "end must be later than start")
            return await super().fetch_page(start, end, page_no)

    edge = T0 + timedelta(minutes=5)
    records = {f"dense{i:02d}": edge for i in range(30)}  # more than a page in one second
    records.update({f"r{i}": edge - i * S for i in range(1, 8)})
    records.update({"first": T0 + timedelta(minutes=1), "start": T0})  # both bounds seen inclusive
    platform = RefusesOneInstant(records, page_size=4)
    engine, pub, _, _, _, _ = make_engine(
        platform, clock=Clock(edge + timedelta(seconds=30)), overlap=timedelta(0), initial=T0
    )
    engine._start_inclusive = engine._end_inclusive = True  # as learned from earlier windows
    await engine.run_once()
    assert {k.decode() for k in pub.published if k} == set(records)
    assert all(end > start for start, end, _ in platform.calls)
