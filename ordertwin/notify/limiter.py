"""Per-target rate limit: at most ``per_minute`` messages in any sliding 60 s window.

WeCom and DingTalk robots both count 20 messages a minute (DingTalk then blocks the robot for
10 minutes). A sliding-window log, unlike a token bucket with a burst, never exceeds the limit
in any minute.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 60.0


@dataclass
class RateLimiter:
    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _sent: deque[float] = field(default_factory=deque)

    def _expire(self) -> float:
        now = self.clock()
        while self._sent and self._sent[0] <= now - WINDOW_S:
            self._sent.popleft()
        return now

    def available(self) -> int:
        """Messages that may be sent right now."""
        self._expire()
        return max(0, self.per_minute - len(self._sent))

    def wait_time(self) -> float:
        """Seconds until one message may be sent (0 when it may now)."""
        now = self._expire()
        if len(self._sent) < self.per_minute:
            return 0.0
        return max(0.0, self._sent[len(self._sent) - self.per_minute] + WINDOW_S - now)

    def take(self) -> None:
        self._sent.append(self._expire())

    def block(self, seconds: float = WINDOW_S) -> None:
        """The receiver said we are too fast: send nothing for ``seconds``."""
        now = self._expire()
        until = now + seconds - WINDOW_S  # entries expire WINDOW_S after their time
        self._sent = deque([until] * self.per_minute)
