"""The seven channel simulators playing a scenario, with an injected clock and no Kafka.

Each channel's real page source (client, signing, paging) lists its scenario simulator over
real HTTP: a version is invisible before its ``at`` and listed from then on, only the latest
released version of an order is listed, paging still pages, an outage of the source answers
the platform's own error (and hides nothing once it is over). The push simulators (Shopify,
Shopee, 抖店) push each version at its time - or at the end of an outage covering it - to the
real webhook receiver (its spec verifies every signature; a fake publisher stands for Kafka).
Taobao plays records of the scenario generator itself; the other channels play records made
from their simulator's own order generator (``sample_records``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from connectors.errors import PlatformError, TransientError
from connectors.pull import PageSource, RawItem
from connectors.registry import plugin
from connectors.scenario import generate
from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario_store import RunningScenario, ScenarioFeed, check_records, publish_at, version_times
from connectors.webhook import WebhookMetrics, WebhookReceiver, webhook_spec
from connectors.webhook_sender import SenderFaults
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.connectors.test_webhook_receiver import FakePublisher
from tests.helpers import CODEC, FP, raw_record
from tests.live import free_port

CHANNELS = ("taobao", "jd", "pdd", "kuaishou", "shopee", "shopify", "douyin")
PUSHERS = ("shopee", "shopify", "douyin")
S = timedelta(seconds=1)
# Near real time: the simulators check request timestamps against the wall clock.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)


@dataclass(frozen=True)
class OutageAnswer:
    code: str | None  # the platform error code the client reads, if any
    http_status: int | None  # the HTTP status, when that is what tells the outage


OUTAGE_ANSWERS = {
    "taobao": OutageAnswer("10", None),  # TOP 10 Service Currently Unavailable
    "jd": OutageAnswer(None, 503),
    "pdd": OutageAnswer("50000", None),
    "kuaishou": OutageAnswer(None, 503),
    "shopee": OutageAnswer("error_server", 500),
    "shopify": OutageAnswer(None, 503),
    "douyin": OutageAnswer("20000", None),
}


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def records_for(
    source: str, n_orders: int, *, kind: str = "generated", seed: int = 7, start: datetime = T0
) -> list[ScenarioRecord]:
    """``generated``: the channel's records of a scenario (:func:`connectors.scenario.generate`
    with ``channels=(source,)``), orders over 10 s; ``native``: the channel's ``sample_records``
    (its simulator's own order generator), versions over a few seconds."""
    if kind == "generated":
        scenario = generate(
            seed=seed,
            n_orders=n_orders,
            start=start,
            span=timedelta(seconds=10),
            threshold=timedelta(seconds=5),
            channels=(source,),
        )
        return [r for r in scenario.records if r.source == source]
    module = importlib.import_module(f"connectors.{source}.scenario")
    records: list[ScenarioRecord] = module.sample_records(n_orders, seed=seed, start=start)
    return records


# Every channel's generated records, and its simulator's own (Taobao has only the former).
CASES = [(c, "generated") for c in CHANNELS] + [(c, "native") for c in CHANNELS if c != "taobao"]


def latest_at(records: Sequence[ScenarioRecord], moment: datetime) -> dict[bytes, ScenarioRecord]:
    """What a platform lists at ``moment``: the latest version of each order released by then."""
    out: dict[bytes, ScenarioRecord] = {}
    for record in sorted(records, key=lambda r: r.at):
        if record.at <= moment:
            out[record.key] = record
    return out


def channel_settings(source: str, url: str, **extra: Any) -> Settings:
    return Settings().model_copy(update={f"{source}_base_url": url, f"{source}_page_size": 5, **extra})


async def start(
    source: str, records: Sequence[ScenarioRecord], clock: FakeClock, outages: Sequence[Outage] = (), **kw: Any
) -> RunningScenario:
    found = plugin(source).start_scenario_simulator
    assert found is not None
    kw.setdefault("port", 0)  # ephemeral: never collide with a running make run or another test
    running: RunningScenario = await found(Settings(), records, outages=outages, host="127.0.0.1", clock=clock, **kw)
    if source == "shopify":
        running.simulator.faults.bucket_size = 0  # the leaky bucket is not what is tested here
    return running


@asynccontextmanager
async def listing(source: str, running: RunningScenario) -> AsyncIterator[Callable[[], PageSource]]:
    """A factory of the channel's page source: a fresh one per listing, as the engine's
    windows differ (PDD's source remembers a window's page plan for retries of it)."""
    page_source = plugin(source).page_source
    assert page_source is not None
    async with aiohttp.ClientSession() as http:
        yield lambda: page_source(http, channel_settings(source, running.url))


async def list_all(source: PageSource, start: datetime, end: datetime) -> tuple[list[RawItem], int]:
    """Every item of one window, page after page as the engine asks for them."""
    items: list[RawItem] = []
    page_no = 1
    while True:
        page = await source.fetch_page(start, end, page_no)
        items += page.items
        if not page.has_next:
            return items, page_no
        page_no += 1


def window(records: Sequence[ScenarioRecord]) -> tuple[datetime, datetime]:
    return min(r.at for r in records) - timedelta(minutes=1), max(r.at for r in records) + timedelta(minutes=1)


def by_key(items: Sequence[RawItem]) -> dict[bytes, RawItem]:
    out: dict[bytes, RawItem] = {}
    for item in items:
        assert item.key is not None and item.key not in out, f"{item.key!r} listed twice"
        out[item.key] = item
    return out


def assert_lists(items: Sequence[RawItem], expected: dict[bytes, ScenarioRecord]) -> None:
    got = by_key(items)
    assert set(got) == set(expected)
    for key, record in expected.items():
        assert got[key].value == record.value  # byte for byte the record's payload
        assert got[key].modified == record.at


# --- the shared feed, pure ------------------------------------------------------------------


def _record(key: str, second: int, source: str = "jd") -> ScenarioRecord:
    doc = {"orderId": key, "modified": (T0 + second * S).astimezone(UTC).isoformat()}
    return ScenarioRecord(T0 + second * S, source, key.encode(), json.dumps(doc).encode(), f"{source}:{key}")


def test_feed_releases_in_time_order_into_its_sink_and_keeps_the_latest_version() -> None:
    clock = FakeClock(T0 - S)
    sunk: list[ScenarioRecord] = []
    records = [_record("b", 2), _record("a", 0), _record("a", 3), _record("c", 1)]
    feed = ScenarioFeed("jd", records, clock=clock, sink=sunk.append)
    assert feed.release() == [] and not feed.done
    clock.now = T0 + S
    assert [r.key for r in feed.release()] == [b"a", b"c"]
    assert feed.release() == []  # each record once
    clock.now = T0 + 10 * S
    assert [(r.key, r.at) for r in feed.release()] == [(b"b", T0 + 2 * S), (b"a", T0 + 3 * S)]
    assert sunk == sorted(records, key=lambda r: r.at) and feed.done
    assert feed.latest[b"a"].at == T0 + 3 * S == feed.final()[b"a"].at


def test_outages_are_the_sources_own_and_pushes_move_to_their_end_chained() -> None:
    outages = [
        Outage("jd", T0 + 2 * S, T0 + 4 * S),
        Outage("jd", T0 + 4 * S, T0 + 6 * S),  # back to back: chained
        Outage("pdd", T0, T0 + 100 * S),  # another source's: ignored
    ]
    clock = FakeClock(T0)
    feed = ScenarioFeed("jd", [_record("a", s) for s in range(8)], outages=outages, clock=clock)
    assert feed.gate() is None
    clock.now = T0 + 2 * S
    assert feed.gate() == outages[0] and feed.stats["outage_calls"] == 1
    clock.now = T0 + 5 * S
    assert feed.outage() == outages[1]
    clock.now = T0 + 6 * S
    assert feed.outage() is None
    assert [feed.push_time(r) for r in feed.records] == [T0, T0 + S] + [T0 + 6 * S] * 5 + [T0 + 7 * S]
    assert publish_at(T0 + 3 * S, outages[:2]) == T0 + 6 * S


def test_due_pushes_follow_the_clock_and_release_first() -> None:
    clock = FakeClock(T0 - S)
    sunk: list[ScenarioRecord] = []
    feed = ScenarioFeed(
        "jd", [_record("a", 0), _record("b", 1), _record("c", 2)], outages=[Outage("jd", T0, T0 + 2 * S)],
        clock=clock, sink=sunk.append,
    )  # fmt: skip
    assert feed.due_pushes() == [] and feed.next_push_at() == T0 + 2 * S
    clock.now = T0 + S
    assert feed.due_pushes() == [] and len(sunk) == 2  # released (listed after the outage), not pushed
    clock.now = T0 + 2 * S
    assert [r.key for r in feed.due_pushes()] == [b"a", b"b", b"c"] and feed.next_push_at() is None


def test_records_that_disagree_with_their_payload_are_refused() -> None:
    def identify(doc: Any) -> tuple[bytes | None, datetime | None]:
        return doc["orderId"].encode(), datetime.fromisoformat(doc["modified"])

    good = _record("a", 0)
    check_records("jd", [good], identify)
    with pytest.raises(ValueError, match="payload time"):
        check_records("jd", [ScenarioRecord(good.at + S, "jd", good.key, good.value, good.order_id)], identify)
    with pytest.raises(ValueError, match="order id"):
        check_records("jd", [ScenarioRecord(good.at, "jd", b"b", good.value, good.order_id)], identify)
    with pytest.raises(ValueError, match="of source 'pdd'"):
        check_records("jd", [_record("a", 0, source="pdd")], identify)


def test_version_times_are_distinct_whole_seconds_in_the_span() -> None:
    import random

    times = version_times(5, start=T0 + timedelta(microseconds=5), span_s=5, rng=random.Random(1))
    assert times == [T0 + i * S for i in range(5)]
    with pytest.raises(ValueError, match="do not fit"):
        version_times(6, start=T0, span_s=5, rng=random.Random(1))


# --- every channel's records and pull API ---------------------------------------------------


@pytest.mark.parametrize(("source", "kind"), CASES)
def test_scenario_records_are_accepted_by_the_normaliser(source: str, kind: str) -> None:
    records = records_for(source, 60, kind=kind)
    assert len({r.key for r in records}) == 60
    assert any(sum(r.key == k for r in records) > 1 for k in {r.key for r in records})  # some have versions
    for record in records:
        outcome = normalise_record(
            raw_record(source, record.value, key=record.key), codec=CODEC, fingerprint=FP, max_bytes=1_000_000
        )
        assert outcome.rejection is None, (record.value[:200], outcome.rejection)


@pytest.mark.parametrize(("source", "kind"), CASES)
async def test_each_order_is_listed_at_its_latest_released_version(source: str, kind: str) -> None:
    records = records_for(source, 30, kind=kind)
    clock = FakeClock(T0 - S)
    running = await start(source, records, clock)
    lo, hi = window(records)
    try:
        async with listing(source, running) as pages:
            assert await list_all(pages(), lo, hi) == ([], 1)  # nothing before the first version
            # A later version is invisible until its time, then replaces the earlier one.
            later = min(
                (r for r in records if any(o.key == r.key and o.at < r.at for o in records)), key=lambda r: r.at
            )
            clock.now = later.at - timedelta(milliseconds=1)
            before = by_key((await list_all(pages(), lo, hi))[0])[later.key]
            assert before.value != later.value and before.modified is not None and before.modified < later.at
            clock.now = later.at
            assert by_key((await list_all(pages(), lo, hi))[0])[later.key].value == later.value
            # At any moment: the latest released version of every order released so far.
            times = sorted({r.at for r in records if r.at > later.at})
            for moment in (times[len(times) // 3], times[2 * len(times) // 3], times[-1] + timedelta(minutes=5)):
                clock.now = moment
                items, n_pages = await list_all(pages(), lo, hi)
                assert_lists(items, latest_at(records, moment))
                assert n_pages > 1  # the platform's paging still pages
    finally:
        await running.close()
    assert running.feed.done and running.simulator.stats["outage"] == 0


@pytest.mark.parametrize(("source", "kind"), CASES)
async def test_an_outage_answers_the_platforms_error_and_hides_nothing_afterwards(source: str, kind: str) -> None:
    records = records_for(source, 20, kind=kind)
    times = sorted({r.at for r in records})
    down = Outage(source, times[len(times) // 2], times[len(times) // 2] + 2 * S)
    elsewhere = Outage("oms", times[1], times[-1])  # another source's outage changes nothing here
    clock = FakeClock(down.start - S)
    running = await start(source, records, clock, outages=[down, elsewhere])
    lo, hi = window(records)
    try:
        async with listing(source, running) as pages:
            assert_lists((await list_all(pages(), lo, hi))[0], latest_at(records, clock.now))
            clock.now = down.start + timedelta(milliseconds=500)
            with pytest.raises(PlatformError) as raised:
                await pages().fetch_page(lo, hi, 1)
            answer = OUTAGE_ANSWERS[source]
            assert isinstance(raised.value, TransientError) and raised.value.retryable
            assert answer.code is None or raised.value.code == answer.code
            assert answer.http_status is None or raised.value.http_status == answer.http_status
            clock.now = down.end  # back: the versions of the outage are listed with their own times
            assert_lists((await list_all(pages(), lo, hi))[0], latest_at(records, down.end))
            assert any(down.start <= r.at < down.end for r in latest_at(records, down.end).values())
    finally:
        await running.close()
    assert running.simulator.stats["outage"] == 1


@pytest.mark.parametrize("source", CHANNELS)
async def test_a_record_whose_time_differs_from_its_payload_is_refused_at_start(source: str) -> None:
    good = records_for(source, 3)[0]
    bad = ScenarioRecord(good.at + S, good.source, good.key, good.value, good.order_id)
    with pytest.raises(ValueError, match="payload time"):
        await start(source, [bad], FakeClock(T0))


async def test_one_generated_scenario_plays_on_all_seven_simulators_at_once() -> None:
    scenario = generate(
        seed=11, n_orders=200, start=T0, span=timedelta(seconds=20), threshold=timedelta(seconds=5),
        channels=CHANNELS, outages=[("jd", timedelta(seconds=6), timedelta(seconds=3))],
    )  # fmt: skip
    per_source = {c: [r for r in scenario.records if r.source == c] for c in CHANNELS}
    assert all(per_source.values())  # every channel has orders
    clock = FakeClock(T0 - S)
    running = {c: await start(c, per_source[c], clock, outages=scenario.outages) for c in CHANNELS}
    try:
        for moment in (T0 + 7 * S, T0 + 10 * S, max(r.at for r in scenario.records)):
            clock.now = moment
            for source, records in per_source.items():
                async with listing(source, running[source]) as pages:
                    lo, hi = window(records)
                    if source == "jd" and moment == T0 + 7 * S:  # during the JD outage
                        with pytest.raises(TransientError):
                            await pages().fetch_page(lo, hi, 1)
                        continue
                    assert_lists((await list_all(pages(), lo, hi))[0], latest_at(records, moment))
    finally:
        for sim in running.values():
            await sim.close()
    assert [c for c in CHANNELS if running[c].simulator.stats["outage"]] == ["jd"]


async def test_taobao_simulator_refuses_a_one_instant_window_like_top() -> None:
    """TOP: end_modified must be later than start_modified; the pull engine never asks for
    one (``end_after_start``, tests/connectors/test_pull_windows.py), the simulator refuses it."""
    records = records_for("taobao", 60)
    busiest = max({r.at for r in records}, key=lambda t: sum(r.at == t for r in records))
    running = await start("taobao", records, FakeClock(busiest))
    try:
        async with listing("taobao", running) as pages:
            assert pages().end_after_start  # type: ignore[attr-defined]
            with pytest.raises(PlatformError, match="end_modified must be later than start_modified"):
                await pages().fetch_page(busiest, busiest, 1)
            items, _ = await list_all(pages(), busiest - timedelta(seconds=1), busiest)
            assert {i.key for i in items} >= {r.key for r in records if r.at == busiest}
    finally:
        await running.close()


# --- pushes -----------------------------------------------------------------------------------


@dataclass
class Receiver:
    receiver: WebhookReceiver
    publisher: FakePublisher
    url: str

    def count(self, outcome: str) -> float:
        source = self.receiver.spec.source
        return self.receiver.metrics.value("ordertwin_webhook_requests_total", source=source, outcome=outcome)


@asynccontextmanager
async def real_receiver(source: str, settings: Settings) -> AsyncIterator[Receiver]:
    """The source's real receiver (its spec from the plugin), publishing into a fake publisher."""
    async with aiohttp.ClientSession() as http:
        spec = webhook_spec(source, plugin(source).webhook, settings, http)
        publisher = FakePublisher()
        receiver = WebhookReceiver(spec, publisher, topic=f"raw.{source}", metrics=WebhookMetrics(CollectorRegistry()))
        server = TestServer(receiver.app(), host="127.0.0.1")
        await server.start_server()
        try:
            yield Receiver(receiver, publisher, str(server.make_url(spec.route)))
        finally:
            await server.close()


def expected_push_values(
    source: str, sent: Sequence[tuple[datetime, ScenarioRecord, Any]], records: Any
) -> list[bytes]:
    """What the receiver publishes for each push: the Order body (Shopify), the status push
    itself (Shopee), the order detail as the API shows it when resolved (抖店)."""
    if source == "shopify":
        return [record.value for _, record, _ in sent]
    if source == "shopee":
        return [push.body for _, _, push in sent]
    return [latest_at(records, when)[record.key].value for when, record, _ in sent]


@pytest.mark.parametrize("kind", ["generated", "native"])
@pytest.mark.parametrize("source", PUSHERS)
async def test_pushes_leave_at_each_versions_time_signed_for_the_real_receiver(source: str, kind: str) -> None:
    records = records_for(source, 25, kind=kind)
    times = sorted({r.at for r in records})
    down = Outage(source, times[len(times) // 2], times[len(times) // 2] + 2 * S)
    clock = FakeClock(times[0] - S)
    api_port = free_port()  # the 抖店 receiver resolves pushes through the simulator's API
    settings = channel_settings(source, f"http://127.0.0.1:{api_port}")
    holder: dict[str, RunningScenario] = {}

    async def sleep(seconds: float) -> None:
        # Deliveries finish at the time they were sent; then the scenario clock jumps ahead.
        pusher = holder["running"].pusher
        assert pusher is not None
        await pusher.settle()
        clock.now += timedelta(seconds=seconds)

    async with real_receiver(source, settings) as receiver:
        found = plugin(source).start_scenario_simulator
        assert found is not None
        running = await found(
            settings, records, outages=[down], host="127.0.0.1", port=api_port, clock=clock, target=receiver.url,
            sleep=sleep, sender_faults=SenderFaults(retry_delays_s=(0.05, 0.1, 0.2)),
        )  # fmt: skip
        holder["running"] = running
        try:
            assert running.pusher is not None
            await asyncio.wait_for(running.pusher.finished.wait(), timeout=60)
        finally:
            await running.close()
    pusher = running.pusher
    sent = pusher.sent
    # Each version is pushed once its time has come: at its ``at``, or at the end of the outage.
    assert {record for _, record, _ in sent} == set(records)
    for when, record, _ in sent:
        assert when == (down.end if down.start <= record.at < down.end else record.at)
    assert any(when == down.end and record.at < down.end for when, record, _ in sent)
    # Signed so the real spec verifies every push; each delivered and published exactly once.
    assert receiver.count("bad_signature") == 0 and receiver.count("stale") == 0
    assert pusher.delivered == {push.event_id for _, _, push in sent} and not pusher.gave_up
    assert receiver.count("accepted") == len(sent) == len(receiver.publisher.records)
    published = sorted((key or b"", value) for _, key, value, _ in receiver.publisher.records)
    expected = sorted(
        (r.key, v) for (_, r, _), v in zip(sent, expected_push_values(source, sent, records), strict=True)
    )
    assert published == expected
    assert running.simulator.stats["outage"] == 0  # no API call fell in the outage: pushes waited for its end


def test_push_kinds_follow_what_changed() -> None:
    from connectors.douyin.scenario import tags
    from connectors.shopify.scenario import topics

    shopify = records_for("shopify", 40)
    topic = topics(shopify)
    firsts = {r.key: r for r in sorted(shopify, key=lambda r: r.at, reverse=True)}
    assert {topic[r] for r in firsts.values()} == {"orders/create"}
    assert {"orders/paid", "orders/fulfilled", "orders/cancelled"} <= set(topic.values())
    douyin = records_for("douyin", 40)
    tag = tags(douyin)
    assert {tag[r] for r in {r.key: r for r in sorted(douyin, key=lambda r: r.at, reverse=True)}.values()} == {"100"}
    assert {"101", "102", "110"} <= set(tag.values())
