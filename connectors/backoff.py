"""Retry delays for platform calls: a pure, jittered schedule and an async retry helper.

**Equal jitter** (``d/2 + uniform(0, d/2)``), not full jitter (``uniform(0, d)``): the nominal
delays (default 30/90/270 s) exist to give a throttled or failing platform time to recover,
and a platform ban ("This ban will last for N more seconds") is counted against our quota on
every premature call. Full jitter can retry almost immediately; equal jitter always waits at
least half the nominal delay, yet still spreads many connector instances that failed at the
same moment over a window as wide as half the delay.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

DEFAULT_SCHEDULE: tuple[float, ...] = (30.0, 90.0, 270.0)

Sleep = Callable[[float], Awaitable[None]]


def equal_jitter(nominal: float, rng: random.Random) -> float:
    """A delay in ``[nominal/2, nominal]``."""
    half = nominal / 2.0
    return half + rng.uniform(0.0, half)


class Backoff:
    """A finite retry schedule: ``len(self)`` retries after the first attempt."""

    def __init__(self, schedule: Sequence[float] = DEFAULT_SCHEDULE, *, rng: random.Random | None = None) -> None:
        if any(d < 0 for d in schedule):
            raise ValueError(f"backoff delays must be >= 0, got {list(schedule)}")
        self.schedule = tuple(float(d) for d in schedule)
        self._rng = rng if rng is not None else random.Random()

    def __len__(self) -> int:
        return len(self.schedule)

    def delay(self, retry: int, *, at_least: float | None = None) -> float:
        """Jittered delay before retry number ``retry`` (0-based).

        ``at_least`` is a platform-imposed minimum (a ban's remaining seconds); the schedule
        never shortens it.
        """
        if not 0 <= retry < len(self.schedule):
            raise IndexError(f"retry {retry} outside a schedule of {len(self.schedule)}")
        d = equal_jitter(self.schedule[retry], self._rng)
        return max(d, at_least) if at_least is not None else d

    def delays(self) -> list[float]:
        """The whole jittered schedule (one draw per retry)."""
        return [self.delay(i) for i in range(len(self.schedule))]


def _retryable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retryable", False))


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    sleep: Sleep = asyncio.sleep,
    is_retryable: Callable[[BaseException], bool] = _retryable,
    min_delay: Callable[[BaseException], float | None] = _retry_after,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Await ``call()``; on a retryable error sleep per ``backoff`` and try again.

    Non-retryable errors propagate at once; after the schedule is used up the last error
    propagates. ``sleep`` is injectable so tests run instantly and the engine can make the
    wait stoppable.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_retryable(exc) or attempt >= len(backoff):
                raise
            delay = backoff.delay(attempt, at_least=min_delay(exc))
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            attempt += 1
            await sleep(delay)
