"""The sending side of a platform's pushes, for the simulators (tests and demos only).

Behaves like a platform's delivery system towards a receiver URL: each push is signed at
send time by the platform's own signing function, and the network is made unkind on purpose
- duplicates (the same push delivered again, as Shopify and 抖店 warn it may be), shuffled
(out-of-order) and late deliveries, pushes that are never sent (a lost push: Shopee does not
redeliver pushes missed while a subscription was down), and retries with backoff on any
non-2xx answer, timeout or refused connection, up to the platform's retry budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Push:
    """One push as the platform would post it (signature headers are added at send time)."""

    event_id: str  # the platform's delivery/message id (or the content id, for Shopee)
    order_id: str  # the order the push is about
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SenderFaults:
    """How unkind the delivery is; all off except the retries by default."""

    duplicate_rate: float = 0.0  # share of pushes delivered twice (two independent deliveries)
    out_of_order: bool = False  # shuffle the delivery order
    late_rate: float = 0.0  # share of deliveries held back by late_delay_s
    late_delay_s: float = 0.5
    drop_rate: float = 0.0  # share of pushes never sent at all
    retry_delays_s: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8)  # () = never retry
    concurrency: int = 16
    timeout_s: float = 5.0  # Shopify waits 5 s for an answer


@dataclass
class SendReport:
    """What happened: counters and which pushes reached a 2xx at least once."""

    stats: Counter[str] = field(default_factory=Counter)
    delivered: set[str] = field(default_factory=set)  # event ids answered 2xx
    dropped: set[str] = field(default_factory=set)  # event ids never sent
    gave_up: set[str] = field(default_factory=set)  # event ids whose retries ran out


Sign = Callable[[str, bytes], Mapping[str, str]]  # (url, body) -> signature headers


class PushSender:
    """Deliver ``pushes`` to ``url``; :meth:`run` returns a :class:`SendReport`."""

    def __init__(
        self,
        pushes: Sequence[Push],
        *,
        url: str,
        sign: Sign,
        faults: SenderFaults | None = None,
        seed: int = 0,
        is_success: Callable[[int, bytes], bool] | None = None,
    ) -> None:
        self.pushes = list(pushes)
        self.url = url
        self.sign = sign
        self.faults = faults or SenderFaults()
        self.rng = random.Random(seed)
        self.is_success = is_success or (lambda status, _body: 200 <= status < 300)
        self.report = SendReport()

    def plan(self) -> list[tuple[Push, float]]:
        """(push, delay) per delivery attempt chain, in sending order."""
        f = self.faults
        plan: list[tuple[Push, float]] = []
        for push in self.pushes:
            if self.rng.random() < f.drop_rate:
                self.report.dropped.add(push.event_id)
                self.report.stats["dropped"] += 1
                continue
            copies = 2 if self.rng.random() < f.duplicate_rate else 1
            self.report.stats["duplicated"] += copies - 1
            for _ in range(copies):
                late = self.rng.random() < f.late_rate
                self.report.stats["late"] += int(late)
                plan.append((push, f.late_delay_s if late else 0.0))
        if f.out_of_order:
            self.rng.shuffle(plan)
        return plan

    async def run(self) -> SendReport:
        plan = self.plan()
        limit = asyncio.Semaphore(max(1, self.faults.concurrency))
        timeout = aiohttp.ClientTimeout(total=self.faults.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def one(push: Push, delay: float) -> None:
                if delay:
                    await asyncio.sleep(delay)
                async with limit:
                    await self._deliver(http, push)

            await asyncio.gather(*(one(p, d) for p, d in plan))
        return self.report

    def request(self, push: Push) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and headers of one attempt, signed now (platforms sign at send time).
        A platform that posts forms or to a per-push URL (快递100) overrides this."""
        headers = {**push.headers, **self.sign(self.url, push.body), "Content-Type": "application/json"}
        return self.url, push.body, headers

    async def _deliver(self, http: aiohttp.ClientSession, push: Push) -> None:
        delays = self.faults.retry_delays_s
        attempt = 0
        while True:
            url, body, headers = self.request(push)
            self.report.stats["attempts"] += 1
            outcome: str
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    body = await resp.read()
                    ok = self.is_success(resp.status, body)
                    outcome = f"http_{resp.status}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                ok = False
                outcome = type(exc).__name__
            self.report.stats[outcome] += 1
            if ok:
                self.report.delivered.add(push.event_id)
                self.report.stats["delivered"] += 1
                return
            if attempt >= len(delays):
                self.report.gave_up.add(push.event_id)
                self.report.stats["gave_up"] += 1
                log.info("push %s: giving up after %d attempts (%s)", push.event_id, attempt + 1, outcome)
                return
            nominal = delays[attempt]
            attempt += 1
            self.report.stats["retries"] += 1
            await asyncio.sleep(nominal / 2 + self.rng.uniform(0, nominal / 2))
