"""Backoff schedule (equal jitter) and the async retry helper, with injected RNG and sleep."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.backoff import DEFAULT_SCHEDULE, Backoff, equal_jitter, retry
from connectors.errors import PermanentError, RateLimited, TransientError


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_default_schedule_is_30_90_270() -> None:
    assert DEFAULT_SCHEDULE == (30.0, 90.0, 270.0)
    assert len(Backoff()) == 3


@given(nominal=st.floats(min_value=0, max_value=10_000), seed=st.integers())
def test_equal_jitter_stays_between_half_and_full(nominal: float, seed: int) -> None:
    d = equal_jitter(nominal, random.Random(seed))
    assert nominal / 2 <= d <= nominal


def test_delays_are_deterministic_for_a_seeded_rng() -> None:
    a = Backoff((30, 90, 270), rng=random.Random(7)).delays()
    b = Backoff((30, 90, 270), rng=random.Random(7)).delays()
    assert a == b
    assert 15 <= a[0] <= 30 and 45 <= a[1] <= 90 and 135 <= a[2] <= 270


def test_jitter_spreads_instances() -> None:
    draws = {round(Backoff(rng=random.Random(seed)).delay(0), 6) for seed in range(50)}
    assert len(draws) > 40


def test_platform_minimum_is_never_shortened() -> None:
    b = Backoff((0.1,), rng=random.Random(1))
    assert b.delay(0, at_least=5.0) == 5.0


def test_retry_index_outside_schedule() -> None:
    with pytest.raises(IndexError):
        Backoff((1.0,)).delay(1)


def test_negative_delays_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Backoff((1.0, -1.0))


async def test_retry_succeeds_after_retryable_errors() -> None:
    sleep = FakeSleep()
    outcomes: list[Exception | str] = [TransientError("t", "boom"), RateLimited("t", "slow down"), "ok"]

    async def call() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    seen: list[int] = []
    result = await retry(
        call,
        backoff=Backoff((30, 90, 270), rng=random.Random(1)),
        sleep=sleep,
        on_retry=lambda n, exc, d: seen.append(n),
    )
    assert result == "ok"
    assert seen == [0, 1]
    assert 15 <= sleep.calls[0] <= 30 and 45 <= sleep.calls[1] <= 90


async def test_retry_gives_up_after_the_schedule_with_the_last_error() -> None:
    sleep = FakeSleep()
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("t", f"attempt {calls}")

    with pytest.raises(TransientError, match="attempt 4"):
        await retry(call, backoff=Backoff((1, 2, 3)), sleep=sleep)
    assert calls == 4 and len(sleep.calls) == 3


async def test_permanent_errors_are_not_retried() -> None:
    sleep = FakeSleep()

    async def call() -> None:
        raise PermanentError("t", "bad signature", code="25")

    with pytest.raises(PermanentError):
        await retry(call, backoff=Backoff((1, 2, 3)), sleep=sleep)
    assert sleep.calls == []


async def test_rate_limit_ban_sets_the_minimum_delay() -> None:
    sleep = FakeSleep()
    outcomes: list[Exception | None] = [RateLimited("t", "ban", retry_after=12.0), None]

    async def call() -> None:
        item = outcomes.pop(0)
        if item is not None:
            raise item

    await retry(call, backoff=Backoff((1.0,), rng=random.Random(3)), sleep=sleep)
    assert sleep.calls == [12.0]
