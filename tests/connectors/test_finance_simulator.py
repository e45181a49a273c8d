"""The ledger simulator: realistic, deterministic postings that the normaliser accepts; an
immutable store; the duplicate and late-posting faults; and scenario mode (release by an
injected clock, HTTP 503 during an outage of source "finance")."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from connectors.errors import TransientError
from connectors.finance.client import FinanceClient, from_ledger_time, posting_key, to_ledger_time
from connectors.finance.simulator import (
    FaultConfig,
    FinanceSimulator,
    PostingStore,
    RunningSimulator,
    generate_postings,
    late_posting,
    serialise,
    serve,
)
from connectors.scenario import ScenarioRecord, generate
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from streams.normalise.sources.finance import FINANCE_BIZ_TYPE
from tests.helpers import CODEC, FP, raw_record

KEY, SECRET = "fin-key", "fin-secret"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(http: aiohttp.ClientSession, running: RunningSimulator, **kw: Any) -> FinanceClient:
    sim = running.simulator
    return FinanceClient(http, base_url=running.url, api_key=sim.api_key, api_secret=sim.api_secret, **kw)


def test_generation_is_deterministic_and_exact_in_count() -> None:
    a = generate_postings(120, seed=7, start=T0)
    assert a == generate_postings(120, seed=7, start=T0)
    assert a != generate_postings(120, seed=8, start=T0)
    assert [len(generate_postings(n, seed=1, start=T0)) for n in (0, 1, 2, 333)] == [0, 1, 2, 333]


def test_generated_postings_are_realistic() -> None:
    end = T0 + timedelta(hours=6)
    postings = generate_postings(800, seed=42, start=T0, end=end)
    keys = [posting_key(p) for p in postings]
    assert len(set(keys)) == 800 and None not in keys
    assert {p["biz_type"] for p in postings} == set(FINANCE_BIZ_TYPE)
    assert {p["channel"] for p in postings} == {"taobao", "jd", "pdd", "douyin", "kuaishou", "shopee", "shopify"}
    assert {p["pay_provider"] for p in postings} >= {"ALIPAY", "WECHATPAY"}
    by_voucher: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in postings:
        assert T0 <= from_ledger_time(p["posted_at"]) < end
        assert p["voucher_no"].startswith("JZ-202611-")  # JZ-<Beijing month>-<sequence>
        by_voucher[p["voucher_no"]].append(p)
    batched = [v for v in by_voucher.values() if len(v) > 1]
    assert batched, "some vouchers batch several receipts"
    for entries in by_voucher.values():
        assert [e["entry_no"] for e in entries] == list(range(1, len(entries) + 1))
        assert len({e["posted_at"] for e in entries}) == 1  # one voucher, one posting time
    vouchers = sorted(by_voucher, key=lambda v: int(v.rsplit("-", 1)[1]))
    times = [by_voucher[v][0]["posted_at"] for v in vouchers]
    assert times == sorted(times)  # voucher numbers follow posting time
    orders: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for p in postings:
        orders[(p["channel"], p["platform_order_no"])].append(p)
    for history in orders.values():
        paid = [p for p in history if p["biz_type"] == "PAYMENT_RECEIVED"]
        assert len(paid) == 1, "every refund has its payment, and no order is paid twice"
        payment = Decimal(paid[0]["amount"])
        refunds = [p for p in history if p is not paid[0]]
        assert all(p["posted_at"] > paid[0]["posted_at"] for p in refunds)
        assert all(p["provider_trade_no"] == paid[0]["provider_trade_no"] for p in refunds)
        partial = sum(Decimal(p["amount"]) for p in refunds if p["biz_type"] == "PARTIAL_REFUND")
        assert partial < payment
        for p in refunds:
            assert "order_amount" not in p or Decimal(p["order_amount"]) == payment
            if p["biz_type"] == "REFUND_POSTED":
                assert Decimal(p["amount"]) == payment and p["refund_no"]
            if p["biz_type"] == "CHARGEBACK":
                assert "order_amount" in p


def _normalise(value: bytes, key: bytes) -> list[dict[str, Any]]:
    outcome = normalise_record(raw_record("finance", value, key=key), codec=CODEC, fingerprint=FP, max_bytes=10**6)
    assert outcome.rejection is None, (value, outcome.rejection)
    return [e.record for e in outcome.orders]


def test_every_generated_and_late_posting_passes_the_normaliser() -> None:
    postings = generate_postings(600, seed=11, start=T0)
    rng = random.Random(0)
    postings += [late_posting(T0 + timedelta(seconds=i), i + 1, rng) for i in range(50)]
    ids = set()
    for p in postings:
        key = posting_key(p)
        assert key is not None
        events = _normalise(serialise(p), key)
        assert len(events) == 1
        ids.add(events[0]["event_id"])
    assert len(ids) == len(postings)  # one fact per posting


def test_store_is_immutable_and_ordered() -> None:
    store = PostingStore()
    postings = generate_postings(30, seed=3, start=T0, end=T0 + timedelta(minutes=10))
    for p in reversed(postings):
        store.add(p)
    store.add(postings[0])  # the same bytes again: a no-op
    assert len(store) == 30
    with pytest.raises(ValueError, match="immutable"):
        store.add({**postings[0], "amount": "1.00"})
    listed = store.query(T0, T0 + timedelta(minutes=10))
    assert [s.raw for s in listed] == [serialise(p) for p in postings]  # generated in API order
    middle = listed[14]
    assert store.query(T0, T0 + timedelta(minutes=10), after=middle.sort) == listed[15:]
    assert store.query(middle.posted_at, middle.posted_at + timedelta(seconds=1)) == [
        s for s in listed if s.posted_at == middle.posted_at
    ]
    with pytest.raises(ValueError, match="posted_at"):
        store.add({**postings[0], "voucher_no": "X", "posted_at": "2026/11/11"})


async def test_duplicate_fault_repeats_the_previous_pages_last_posting(http: aiohttp.ClientSession) -> None:
    simulator = FinanceSimulator(api_key=KEY, api_secret=SECRET, faults=FaultConfig(duplicate_every=1))
    simulator.store.add_many(generate_postings(25, seed=5, start=T0, end=T0 + timedelta(hours=1)))
    running = await serve(simulator)
    try:
        client = client_for(http, running)
        end = T0 + timedelta(hours=1)
        first = await client.postings(T0, end, page_size=10)
        second = await client.postings(T0, end, page_size=10, page_token=first.next_page_token)
    finally:
        await running.close()
    assert len(first.raw) == 10 and len(second.raw) == 11
    assert second.raw[0] == first.raw[-1] and simulator.stats["duplicated"] == 1
    assert len(set(first.raw + second.raw)) == 20


async def test_late_fault_books_inside_a_window_already_pulled(http: aiohttp.ClientSession) -> None:
    faults = FaultConfig(late_every=1, late_by_s=(1, 3), max_late=3)
    simulator = FinanceSimulator(api_key=KEY, api_secret=SECRET, faults=faults, seed=9)
    running = await serve(simulator)
    end = T0 + timedelta(hours=1)
    try:
        client = client_for(http, running)
        assert (await client.postings(T0, end)).postings == []  # nothing pulled before: nothing late
        assert simulator.late_keys == [] and simulator.pulled_to == end
        later = await client.postings(end, end + timedelta(hours=1))  # books one dated end - 1 s
        assert later.postings == []  # ... which is not in this later window, pulled to its end
        again = await client.postings(T0, end)  # books one dated (end + 1 h) - 3 s
        await client.postings(T0, end)  # books one dated (end + 1 h) - 1 s
        await client.postings(T0, end)  # max_late reached
    finally:
        await running.close()
    assert simulator.stats["late"] == 3 and len(simulator.late_keys) == 3  # capped by max_late
    stored = [simulator.store.get(k) for k in simulator.late_keys]
    hour = timedelta(hours=1)
    assert [s.posted_at for s in stored if s] == [end - timedelta(seconds=1), end + hour - timedelta(seconds=3),
                                                  end + hour - timedelta(seconds=1)]  # fmt: skip
    assert [json.loads(r)["voucher_no"][:2] for r in again.raw] == ["LZ"]  # only the late one dated in it
    assert posting_key(json.loads(again.raw[0])) == simulator.late_keys[0].encode()


def finance_scenario() -> tuple[list[ScenarioRecord], Any]:
    scenario = generate(
        seed=3,
        n_orders=120,
        start=T0,
        span=timedelta(seconds=60),
        threshold=timedelta(seconds=5),
        outages=[("finance", timedelta(seconds=20), timedelta(seconds=10))],
    )
    return [r for r in scenario.records if r.source == "finance"], scenario.outages


async def test_scenario_records_are_released_by_the_clock_and_outages_answer_503(
    http: aiohttp.ClientSession,
) -> None:
    from connectors.finance.plugin import PLUGIN

    records, outages = finance_scenario()
    outage = next(o for o in outages if o.source == "finance")
    assert any(outage.start <= r.at < outage.end for r in records), "the test needs postings in the outage"
    clock = FakeClock(T0 - timedelta(seconds=1))
    settings = Settings(finance_api_key=KEY, finance_api_secret=SECRET)  # type: ignore[arg-type]
    assert PLUGIN.start_scenario_simulator is not None
    running = await PLUGIN.start_scenario_simulator(
        settings, records, outages=outages, host="127.0.0.1", port=0, clock=clock
    )
    window = (T0 - timedelta(hours=1), T0 + timedelta(hours=2))

    async def listed() -> list[bytes]:
        page = await client_for(http, running).postings(*window, page_size=500)
        assert not page.has_next
        return page.raw

    try:
        assert await listed() == []
        clock.now = outage.start - timedelta(seconds=1)
        before = await listed()
        assert before == [r.value for r in records if r.at <= clock.now]  # exact bytes, in order
        clock.now = outage.start
        with pytest.raises(TransientError) as down:
            await listed()
        assert down.value.http_status == 503 and down.value.code == "SERVICE_UNAVAILABLE"
        clock.now = outage.end - timedelta(microseconds=1)
        with pytest.raises(TransientError):
            await listed()
        clock.now = outage.end
        after = await listed()
        assert set(before) < set(after)
        assert sorted(after) == sorted(r.value for r in records if r.at <= outage.end)
        clock.now = max(r.at for r in records)
        assert sorted(await listed()) == sorted(r.value for r in records)
        assert running.simulator.pending == 0 and running.simulator.stats["outage"] == 2
    finally:
        await running.close()


def test_scenario_refuses_records_that_disagree_with_their_payload() -> None:
    records, _ = finance_scenario()
    simulator = FinanceSimulator(api_key=KEY, api_secret=SECRET)
    first = records[0]
    shifted = ScenarioRecord(first.at + timedelta(seconds=1), "finance", first.key, first.value, first.order_id)
    rekeyed = ScenarioRecord(first.at, "finance", b"JZ-0/1", first.value, first.order_id)
    foreign = ScenarioRecord(first.at, "oms", first.key, first.value, first.order_id)
    for bad in (shifted, rekeyed, foreign):
        with pytest.raises(ValueError, match=r"disagree|source"):
            simulator.schedule([bad])
    simulator.schedule(records)
    assert simulator.pending == len(records)
    assert json.loads(first.value)["posted_at"] == to_ledger_time(first.at)
