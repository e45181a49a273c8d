"""What the seven channel simulators share when they play a scenario: time release and outages.

A generated scenario (:mod:`connectors.scenario`) gives each source a list of
:class:`~connectors.scenario.model.ScenarioRecord` - the native payload bytes of one order
version, its platform order id (``key``) and its event time (``at``). A platform shows an
order's *current* state, not its history, so a simulator playing the scenario:

* releases a version into its own order store once ``clock() >= at`` (lazily, on each API
  call, through :meth:`ScenarioFeed.gate`); versions are released in event-time order, so the
  store, which replaces by order id, always lists the latest released version;
* answers every call with the platform's error while an outage of its source is in force
  (``start <= clock() < end``); its records of that period are listed once the outage ends,
  with their own event times - the connector's next window over that period finds them;
* if the platform pushes, :class:`ScenarioPusher` delivers each released version at ``at``,
  or at the end of an outage covering it (back-to-back outages chain, exactly like
  :meth:`connectors.scenario.model.Scenario.publish_at`), through the platform's own delivery
  loop (:class:`connectors.webhook_sender.PushSender`: signing, retries).

Before serving, every record is checked against the payload it carries: its key must be the
platform order id the connector will read, and its ``at`` the platform modified/update time
the API filters by - a mismatch would make the connector miss or misfile the record, so it is
refused at start rather than discovered as a gap.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.scenario.model import Outage, ScenarioRecord
from connectors.webhook_sender import Push, PushSender, SenderFaults, Sign
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

# (parsed payload) -> (platform order id, platform modified/update time), as the connector reads them
Identify = Callable[[Any], tuple[bytes | None, datetime | None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_records(source: str, records: Sequence[ScenarioRecord], identify: Identify) -> None:
    """Refuse records that are not ``source``'s or whose payload disagrees with key/``at``."""
    problems: list[str] = []
    for i, record in enumerate(records):
        if record.source != source:
            problems.append(f"record {i} is of source {record.source!r}")
            continue
        if record.at.tzinfo is None:
            problems.append(f"record {i} has a naive time {record.at!r}")
            continue
        try:
            key, when = identify(json.loads(record.value))
        except ValueError:
            problems.append(f"record {i} (key {record.key!r}) is not JSON")
            continue
        if key != record.key:
            problems.append(f"record {i}: payload order id {key!r} != key {record.key!r}")
        elif when != record.at:
            shown = when.isoformat() if when is not None else None
            problems.append(f"record {i} ({key!r}): payload time {shown} != at {record.at.isoformat()}")
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(f"{source} scenario records: " + "; ".join(problems[:5]) + more)


def publish_at(at: datetime, outages: Iterable[Outage]) -> datetime:
    """When a platform shows (pushes) a fact of time ``at``: ``at``, or the end of an outage
    covering it (chained through back-to-back outages). ``outages`` are of one source."""
    ours = list(outages)
    moved = True
    while moved:
        moved = False
        for outage in ours:
            if outage.start <= at < outage.end:
                at, moved = outage.end, True
    return at


class ScenarioFeed:
    """One source's share of a scenario, released by an injected clock into a ``sink``.

    ``sink(record)`` is called once per record, in event-time order (stable for equal times),
    as soon as the clock reaches its ``at``; simulators pass their store's ``add_raw``.
    """

    def __init__(
        self,
        source: str,
        records: Iterable[ScenarioRecord],
        *,
        outages: Iterable[Outage] = (),
        clock: Callable[[], datetime] = utc_now,
        sink: Callable[[ScenarioRecord], object] | None = None,
        identify: Identify | None = None,
    ) -> None:
        self.source = source
        self.records: list[ScenarioRecord] = sorted(records, key=lambda r: r.at)
        if identify is not None:
            check_records(source, self.records, identify)
        self.outages: list[Outage] = sorted((o for o in outages if o.source == source), key=lambda o: o.start)
        self.clock = clock
        self.sink = sink
        self.latest: dict[bytes, ScenarioRecord] = {}  # key -> latest released version
        self.stats: Counter[str] = Counter()
        self._released = 0
        order = sorted(range(len(self.records)), key=lambda i: (publish_at(self.records[i].at, self.outages), i))
        self._push_times = [publish_at(self.records[i].at, self.outages) for i in order]
        self._push_order = [self.records[i] for i in order]
        self._pushed = 0

    def __len__(self) -> int:
        return len(self.records)

    # -- release ------------------------------------------------------------------------
    def release(self) -> list[ScenarioRecord]:
        """Hand every record whose time has come (and not yet released) to the sink."""
        now = self.clock()
        out: list[ScenarioRecord] = []
        while self._released < len(self.records) and self.records[self._released].at <= now:
            record = self.records[self._released]
            self._released += 1
            self.latest[record.key] = record
            if self.sink is not None:
                self.sink(record)
            out.append(record)
        self.stats["released"] += len(out)
        return out

    @property
    def released(self) -> int:
        return self._released

    @property
    def done(self) -> bool:
        """Every record has been released."""
        return self._released == len(self.records)

    def final(self) -> dict[bytes, ScenarioRecord]:
        """The last version of every order: what a complete listing ends with."""
        return {r.key: r for r in self.records}

    # -- outages ------------------------------------------------------------------------
    def outage(self) -> Outage | None:
        """The outage of this source in force now, if any."""
        now = self.clock()
        return next((o for o in self.outages if o.start <= now < o.end), None)

    def gate(self) -> Outage | None:
        """Per API call: release what is due, then say whether the platform is down."""
        self.release()
        down = self.outage()
        if down is not None:
            self.stats["outage_calls"] += 1
        return down

    # -- pushes -------------------------------------------------------------------------
    def push_time(self, record: ScenarioRecord) -> datetime:
        return publish_at(record.at, self.outages)

    def due_pushes(self) -> list[ScenarioRecord]:
        """Records to push now (released first, so the API already shows them), push order."""
        self.release()
        now = self.clock()
        upto = bisect.bisect_right(self._push_times, now, lo=self._pushed)
        out = self._push_order[self._pushed : upto]
        self._pushed = upto
        return out

    def next_push_at(self) -> datetime | None:
        return self._push_times[self._pushed] if self._pushed < len(self._push_times) else None


@dataclass
class ScenarioPusher:
    """The platform's delivery loop for a scenario: each record's pushes leave at its push
    time (:meth:`ScenarioFeed.due_pushes`), one :class:`PushSender` per batch due together,
    so a batch retrying against a receiver that is down does not hold back later ones.

    ``to_pushes(record)`` builds the platform's pushes of one version (unsigned; ``sign`` is
    applied per attempt). ``sleep`` waits wall-clock seconds; a test with a fake clock passes
    one that advances it. ``sent`` records (clock time, record, push) per dispatched push.
    """

    feed: ScenarioFeed
    target: str
    to_pushes: Callable[[ScenarioRecord], Sequence[Push]]
    sign: Sign
    is_success: Callable[[int, bytes], bool] | None = None
    faults: SenderFaults | None = None
    seed: int = 0
    sleep: Callable[[float], Awaitable[None]] | None = None  # default asyncio.sleep
    sent: list[tuple[datetime, ScenarioRecord, Push]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    delivered: set[str] = field(default_factory=set)  # event ids the receiver acknowledged
    gave_up: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._senders: set[asyncio.Task[None]] = set()
        self._batches = 0
        self.finished = asyncio.Event()  # every push dispatched and every delivery settled

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"{self.feed.source}-scenario-pushes")

    async def run(self) -> None:
        try:
            while True:
                due = self.feed.due_pushes()
                if due:
                    self._dispatch(due)
                    continue
                upcoming = self.feed.next_push_at()
                if upcoming is None:
                    break
                await (self.sleep or asyncio.sleep)(max(0.0, (upcoming - self.feed.clock()).total_seconds()))
            await self.settle()
        finally:
            self.finished.set()

    def _dispatch(self, records: Sequence[ScenarioRecord]) -> None:
        now = self.feed.clock()
        batch = [(record, push) for record in records for push in self.to_pushes(record)]
        pushes = [push for _, push in batch]
        self.sent += [(now, record, push) for record, push in batch]
        self.stats["pushes"] += len(pushes)
        self._batches += 1
        sender = PushSender(
            pushes,
            url=self.target,
            sign=self.sign,
            faults=self.faults,
            seed=random.Random(f"{self.seed}/{self._batches}").getrandbits(32),
            is_success=self.is_success,
        )
        task = asyncio.create_task(self._send(sender))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)

    async def settle(self) -> None:
        """Wait until every delivery dispatched so far has succeeded or given up."""
        while self._senders:
            await asyncio.gather(*list(self._senders), return_exceptions=True)

    async def _send(self, sender: PushSender) -> None:
        report = await sender.run()
        self.stats.update(report.stats)
        self.delivered |= report.delivered
        self.gave_up |= report.gave_up

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._senders) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class RunningScenario:
    """A platform simulator serving a scenario (``url``, ``close()``, as the registry asks)."""

    running: Any  # the platform simulator's RunningSimulator (``simulator``, ``url``, ``close``)
    feed: ScenarioFeed
    pusher: ScenarioPusher | None = None

    @property
    def url(self) -> str:
        return str(self.running.url)

    @property
    def simulator(self) -> Any:
        return self.running.simulator

    async def close(self) -> None:
        if self.pusher is not None:
            await self.pusher.close()
        await self.running.close()


async def serve_pull_scenario(
    source: str,
    simulator: Any,
    serve: Callable[[Any, str, int], Awaitable[Any]],
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    identify: Identify,
    outages: Sequence[Outage],
    host: str | None,
    port: int | None,
    clock: Callable[[], datetime],
) -> RunningScenario:
    """Serve ``records`` on a pull platform's simulator as time passes: each released version
    goes into the simulator's store as its raw bytes (``store.add_raw``), and the simulator
    consults the feed for outages (``simulator.scenario``). Host/port default to settings."""
    sink = simulator.store.add_raw
    feed = ScenarioFeed(source, records, outages=outages, clock=clock, sink=lambda r: sink(r.value), identify=identify)
    simulator.scenario = feed
    running = await serve(
        simulator,
        settings.simulator_host if host is None else host,
        getattr(settings, f"{source}_simulator_port") if port is None else port,
    )
    return RunningScenario(running, feed)


def version_times(count: int, *, start: datetime, span_s: int, rng: random.Random) -> list[datetime]:
    """``count`` distinct whole-second times in ``[start, start + span_s)``, ascending: the
    moments of one order's successive versions (a platform prints times to the second)."""
    if count > span_s:
        raise ValueError(f"{count} versions do not fit in {span_s} s at one per second")
    base = start.astimezone(UTC).replace(microsecond=0)
    return [base + timedelta(seconds=s) for s in sorted(rng.sample(range(span_s), count))]


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON, key order kept (how the simulators write a payload)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_of(source: str, doc: Any, identify: Identify) -> ScenarioRecord:
    """A scenario record of a native payload: key and ``at`` read from the payload itself."""
    key, at = identify(doc)
    if key is None or at is None:
        raise ValueError(f"{source}: payload has no readable order id or modified time")
    return ScenarioRecord(at, source, key, dumps(doc), f"{source}:{key.decode('utf-8')}")
