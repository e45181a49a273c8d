"""Push-only sources (奇门 WMS, 快递100): what the receiver may vouch for, and when it stops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from connectors.webhook import push_vouch, vouch_for_pushes
from ordertwin.settings import Settings

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
SLACK, SILENCE = timedelta(seconds=5), timedelta(seconds=300)


def test_vouches_now_minus_slack_while_the_platform_is_heard() -> None:
    assert push_vouch(NOW, NOW - timedelta(seconds=30), 0, slack=SLACK, silence=SILENCE) == NOW - SLACK


def test_never_heard_vouches_nothing() -> None:
    assert push_vouch(NOW, None, 0, slack=SLACK, silence=SILENCE) is None


def test_silence_longer_than_the_limit_stops_vouching() -> None:
    assert push_vouch(NOW, NOW - SILENCE, 0, slack=SLACK, silence=SILENCE) == NOW - SLACK
    assert push_vouch(NOW, NOW - SILENCE - timedelta(seconds=1), 0, slack=SLACK, silence=SILENCE) is None


def test_nothing_while_a_delivery_is_in_flight() -> None:
    # The watermark must follow the data it covers on every partition.
    assert push_vouch(NOW, NOW, 1, slack=SLACK, silence=SILENCE) is None


class FakeReceiver:
    def __init__(self) -> None:
        self.topic = "raw.wms"
        self.last_heard: datetime | None = None
        self.in_flight = 0

        class Spec:
            source = "wms"

        self.spec = Spec()


class FakePublisher:
    def __init__(self) -> None:
        self.enqueued: list[datetime] = []
        self.flushed: list[datetime] = []

    def publish_watermark(self, topic: str, watermark: datetime) -> int:
        self.enqueued.append(watermark)
        return 1

    async def aflush(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 - protocol signature
        self.flushed.extend(self.enqueued[len(self.flushed) :])
        return 1


async def test_the_loop_publishes_only_advancing_watermarks_and_stops_in_silence() -> None:
    receiver, publisher = FakeReceiver(), FakePublisher()
    clock = [NOW]
    ticks: list[None] = []

    async def sleep(_: float) -> None:
        ticks.append(None)
        clock[0] += timedelta(seconds=60)
        if len(ticks) == 2:
            receiver.last_heard = clock[0]  # heard once, at the third tick
        if len(ticks) >= 10:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    settings = Settings(push_slack_s=5, push_silence_s=150, push_watermark_interval_s=60)
    with pytest.raises(asyncio.CancelledError):
        await vouch_for_pushes(receiver, publisher, settings, clock=lambda: clock[0], sleep=sleep)  # type: ignore[arg-type]
    heard = NOW + timedelta(seconds=120)
    # Tick 3 (heard at that moment), ticks 4 and 5 (60 s and 120 s of silence <= 150 s), then nothing.
    assert publisher.flushed == [heard - timedelta(seconds=5) + timedelta(seconds=60 * i) for i in range(3)]
