"""The 旺店通 simulator: generated orders are deterministic, shaped like queryWithDetail's and
accepted by the normaliser; the gateway checks what the platform checks (signature in constant
time, public parameters, body, pager, span); faults; and the scenario hook - records listed once
the injected clock reaches them, HTTP 503 during an outage of source "oms"."""

from __future__ import annotations

import hmac
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from connectors.errors import TransientError
from connectors.oms.client import METHOD, OmsClient, dumps_body, from_wdt_time
from connectors.oms.plugin import PLUGIN
from connectors.oms.simulator import (
    PLATFORMS,
    STATUSES,
    FaultConfig,
    OmsSimulator,
    RunningSimulator,
    advance,
    generate_trades,
    serve,
)
from connectors.registry import plugin
from connectors.runner import start_simulator
from connectors.scenario import Outage, ScenarioRecord, generate
from connectors.scenario.payloads import china, dumps
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from tests.helpers import CODEC, FP, raw_record

SID, KEY, APP_SECRET = "wdt-sid", "wdt-key", "wdt-secret:wdt-salt"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(OmsSimulator(sid=SID, app_key=KEY, app_secret=APP_SECRET))
    yield running
    await running.close()


def client_for(http: aiohttp.ClientSession, url: str) -> OmsClient:
    return OmsClient(http, base_url=url, sid=SID, app_key=KEY, app_secret=APP_SECRET)


def normalise(trade: dict[str, Any]) -> list[dict[str, Any]]:
    value = json.dumps(trade, ensure_ascii=False, separators=(",", ":")).encode()
    outcome = normalise_record(
        raw_record("oms", value, key=str(trade["trade_no"]).encode()), codec=CODEC, fingerprint=FP, max_bytes=10**6
    )
    assert outcome.rejection is None, (trade["trade_status"], trade["platform_id"], outcome.rejection)
    return [e.record for e in outcome.orders]


# --- generated orders ----------------------------------------------------------------------


def test_generation_is_deterministic() -> None:
    a = generate_trades(50, seed=7, start=T0)
    assert a == generate_trades(50, seed=7, start=T0)
    assert a != generate_trades(50, seed=8, start=T0)


def test_generated_trades_look_like_query_with_detail() -> None:
    end = T0 + timedelta(hours=6)
    trades = generate_trades(600, seed=42, start=T0, end=end)
    assert len({t["trade_no"] for t in trades}) == len({t["trade_id"] for t in trades}) == 600
    assert {t["trade_status"] for t in trades} == {s for s, _ in STATUSES}
    assert {t["platform_id"] for t in trades} == set(PLATFORMS)
    assert Counter(t["modified"] for t in trades).most_common(1)[0][1] > 1  # same-second changes
    merged = [t for t in trades if "," in t["src_tids"]]
    assert 10 < len(merged) < 80
    tids = [tid for t in trades for tid in t["src_tids"].split(",")]
    assert len(tids) == len(set(tids))  # every channel order is in exactly one ERP order
    for t in trades:
        assert T0 <= from_wdt_time(t["modified"]) < end
        assert from_wdt_time(t["pay_time"]) < from_wdt_time(t["modified"])
        refs = t["src_tids"].split(",")
        assert refs == sorted(refs) and {d["src_tid"] for d in t["detail_list"]} == set(refs)  # 以增序排列
        goods = sum(Decimal(d["price"]) * Decimal(d["num"]) for d in t["detail_list"])
        assert Decimal(t["goods_amount"]) == goods
        assert Decimal(t["receivable"]) == goods - Decimal(t["discount"]) + Decimal(t["post_amount"])
        assert bool(t["logistics_no"]) == (t["trade_status"] in (95, 110))
        assert (t["bad_reason"] != 0) == (t["trade_status"] == 23)
        assert all(d["trade_id"] == t["trade_id"] and d["platform_id"] == t["platform_id"] for d in t["detail_list"])


def test_every_generated_trade_and_every_change_passes_the_normaliser() -> None:
    rng = random.Random(0)
    channels: Counter[str] = Counter()
    for trade in generate_trades(400, seed=11, start=T0):
        events = normalise(trade)
        assert len(events) == len(trade["src_tids"].split(","))  # one event per channel order
        channels.update(e["channel"] for e in events)
        normalise({**trade, **advance(trade, T0 + timedelta(days=1), rng)})
    assert set(channels) == {"taobao", "jd", "pdd"}


async def test_changes_move_the_trade_through_the_erp_and_bump_its_version() -> None:
    clock = Clock(T0 + timedelta(hours=7))  # after every generated trade's time
    simulator = OmsSimulator(sid=SID, app_key=KEY, app_secret=APP_SECRET, clock=clock)
    trade = next(t for t in generate_trades(100, seed=12, start=T0) if t["trade_status"] == 30)
    key = trade["trade_no"]
    simulator.store.add(trade)
    statuses, versions = [], []
    for _ in range(4):
        changed = json.loads(simulator.modify(key).raw)
        statuses.append(changed["trade_status"])
        versions.append(changed["version_id"])
    assert statuses == [55, 95, 110, 110]  # 待客审 -> 已审核 -> 已发货 -> 已完成 -> a note
    assert versions == list(range(trade["version_id"] + 1, trade["version_id"] + 5))
    assert changed["logistics_no"] and changed["cs_remark"]
    stored = simulator.store.get(key)
    assert stored is not None and stored.modified == clock.now + timedelta(seconds=3)  # strictly later each time
    assert len(simulator.store.versions[key]) == 5 and simulator.modified_keys == [key] * 4


# --- the gateway ---------------------------------------------------------------------------


async def _post(
    http: aiohttp.ClientSession, url: str, body: str, pager: dict[str, int] | None, **override: str
) -> dict[str, Any]:
    query = client_for(http, url).signed_query(METHOD, body, pager)
    query.update(override)
    async with http.post(url, params=query, data=body.encode()) as resp:
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json(content_type=None)
        return doc


PAGER = {"page_size": 10, "page_no": 0, "calc_total": 1}
WINDOW = {"start_time": "2026-11-11 08:00:00", "end_time": "2026-11-11 08:30:00"}


async def test_the_signature_covers_query_and_body(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    body = dumps_body(WINDOW)
    assert (await _post(http, sim.url, body, PAGER))["status"] == 0
    query = client_for(http, sim.url).signed_query(METHOD, body, PAGER)
    async with http.post(sim.url, params=query, data=body.replace("08:30", "08:31").encode()) as resp:
        tampered = await resp.json(content_type=None)
    assert tampered == {"status": 100, "message": "签名错误"}
    assert (await _post(http, sim.url, body, PAGER, page_no="1"))["message"] == "签名错误"
    assert (await _post(http, sim.url, body, PAGER, sign=""))["message"] == "缺少公共参数sign"
    assert (await _post(http, sim.url, body, PAGER, v="2.0"))["message"] == "不支持的版本号v"
    assert sim.simulator.stats["bad_sign"] == 2


async def test_the_signature_is_compared_in_constant_time(
    sim: RunningSimulator, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)  # what connectors.oms.signing.verify calls
    assert (await _post(http, sim.url, dumps_body(WINDOW), PAGER))["status"] == 0
    assert len(compared) == 1 and compared[0][0] == compared[0][1]


@pytest.mark.parametrize(
    ("body", "pager", "message"),
    [
        (json.dumps(WINDOW), PAGER, "参数数组"),  # an object, not the positional-argument array
        ("[]", PAGER, "参数数组"),
        ("[{", PAGER, "不是合法的JSON"),
        (dumps_body(WINDOW), {"page_no": 0}, "page_size不能为空"),
        (dumps_body(WINDOW), {"page_size": 201, "page_no": 0}, "分页参数错误"),
        (dumps_body(WINDOW), {"page_size": 10, "page_no": -1}, "分页参数错误"),
        (dumps_body({"start_time": "2026-11-11 08:00:00"}), PAGER, "不能为空"),
        (dumps_body({**WINDOW, "end_time": "2026/11/11 08:30"}), PAGER, "时间格式错误"),
        (dumps_body({**WINDOW, "time_type": 2}), PAGER, "time_type=1"),
        (dumps_body({**WINDOW, "end_time": "2026-11-11 09:00:01"}), PAGER, "查询时间不能大于60分钟"),
    ],
)
async def test_malformed_business_parameters_are_refused(
    sim: RunningSimulator, http: aiohttp.ClientSession, body: str, pager: dict[str, int], message: str
) -> None:
    doc = await _post(http, sim.url, body, pager)
    assert doc["status"] == 100 and message in doc["message"]


async def test_default_order_is_ascending_and_calc_total_is_optional(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.store.add_many(generate_trades(15, seed=13, start=T0, end=T0 + timedelta(minutes=30)))
    ascending = await _post(http, sim.url, dumps_body(WINDOW), {"page_size": 20, "page_no": 0, "calc_total": 0})
    assert "total_count" not in ascending["data"]
    modified = [from_wdt_time(t["modified"]) for t in ascending["data"]["order"]]
    assert len(modified) == 15 and modified == sorted(modified)
    newest = await _post(http, sim.url, dumps_body({**WINDOW, "order_type": 1}), PAGER)
    assert newest["data"]["total_count"] == 15 and len(newest["data"]["order"]) == 10
    assert [from_wdt_time(t["modified"]) for t in newest["data"]["order"]] == sorted(modified, reverse=True)[:10]


async def test_query_faults_duplicate_and_modify(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add_many(generate_trades(30, seed=14, start=T0, end=T0 + timedelta(minutes=30)))
    sim.simulator.faults = FaultConfig(duplicate_every=1, modify_every=1, max_modifications=2)
    client = client_for(http, sim.url)
    first = await client.trade_query(T0, T0 + timedelta(minutes=30), 0, 10)
    assert len(first.raw) == 11 and first.raw[0] == first.raw[-1]
    assert first.total == 29  # a trade not on this page was modified to "now", out of the window
    await client.trade_query(T0, T0 + timedelta(minutes=30), 0, 10)
    await client.trade_query(T0, T0 + timedelta(minutes=30), 0, 10)
    assert sim.simulator.stats["modified"] == 2 and len(set(sim.simulator.modified_keys)) == 2  # capped
    for key in sim.simulator.modified_keys:
        old, new = (json.loads(v) for v in sim.simulator.store.versions[key])
        assert new["version_id"] == old["version_id"] + 1 and new["modified"] > old["modified"]


# --- the scenario hook ---------------------------------------------------------------------


def _record(at: datetime, trade_no: str, status: int) -> ScenarioRecord:
    doc = {"trade_no": trade_no, "trade_status": status, "modified": china(at), "src_tids": "1"}
    return ScenarioRecord(at=at, source="oms", key=trade_no.encode(), value=dumps(doc), order_id="taobao:1")


async def test_scenario_records_are_listed_once_the_clock_reaches_them(http: aiohttp.ClientSession) -> None:
    clock = Clock(T0)
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (10, 20, 30))
    records = [_record(t1, "JY1", 55), _record(t2, "JY2", 55), _record(t3, "JY1", 95), _record(t3, "JY3", 55)]
    running = await PLUGIN.start_scenario_simulator(  # type: ignore[misc]
        Settings(oms_sid=SID, oms_app_key=KEY, oms_app_secret=APP_SECRET),
        records,
        outages=[],
        host="127.0.0.1",
        port=0,
        clock=clock,
    )
    try:
        client = client_for(http, running.url)

        async def listed() -> dict[str, bytes]:
            page = await client.trade_query(T0 - timedelta(minutes=1), T0 + timedelta(minutes=5), 0, 50)
            return {t["trade_no"]: raw for t, raw in zip(page.orders, page.raw, strict=True)}

        assert await listed() == {}
        clock.now = t2 - timedelta(seconds=1)
        assert await listed() == {"JY1": records[0].value}
        clock.now = t2
        assert await listed() == {"JY1": records[0].value, "JY2": records[1].value}
        clock.now = t3 + timedelta(minutes=10)
        assert await listed() == {"JY1": records[2].value, "JY2": records[1].value, "JY3": records[3].value}
        page = await client.trade_query(t3, t3, 0, 50)  # listed at its own time, not at release
        assert sorted(t["trade_no"] for t in page.orders) == ["JY1", "JY3"]
        assert running.simulator.pending == 0 and running.simulator.store.versions["JY1"] == [
            records[0].value,
            records[2].value,
        ]
    finally:
        await running.close()


async def test_an_outage_of_oms_answers_503_then_lists_what_happened_meanwhile(http: aiohttp.ClientSession) -> None:
    clock = Clock(T0)
    outage = Outage("oms", T0 + timedelta(seconds=60), T0 + timedelta(seconds=120))
    other = Outage("carrier", T0, T0 + timedelta(hours=1))  # not ours: ignored
    inside = _record(T0 + timedelta(seconds=90), "JY9", 55)
    running = await PLUGIN.start_scenario_simulator(  # type: ignore[misc]
        Settings(oms_sid=SID, oms_app_key=KEY, oms_app_secret=APP_SECRET),
        [_record(T0 + timedelta(seconds=5), "JY1", 55), inside],
        outages=[outage, other],
        host="127.0.0.1",
        port=0,
        clock=clock,
    )
    try:
        client = client_for(http, running.url)
        window = (T0, T0 + timedelta(minutes=5))
        clock.now = T0 + timedelta(seconds=30)
        assert len((await client.trade_query(*window)).orders) == 1  # the carrier outage is not ours
        clock.now = T0 + timedelta(seconds=100)
        with pytest.raises(TransientError, match="HTTP 503"):
            await client.trade_query(*window)
        clock.now = outage.end
        page = await client.trade_query(*window)
        assert sorted(t["trade_no"] for t in page.orders) == ["JY1", "JY9"]
        assert page.raw[0] == inside.value and page.orders[0]["modified"] == china(inside.at)  # its own time
        assert running.simulator.stats["outage"] == 1
    finally:
        await running.close()


async def test_a_generated_scenario_plays_through_the_plugin(http: aiohttp.ClientSession) -> None:
    start = T0 + timedelta(minutes=1)
    scenario = generate(
        seed=3, n_orders=40, start=start, span=timedelta(minutes=10), threshold=timedelta(minutes=5),
        outages=[("oms", timedelta(minutes=2), timedelta(minutes=1))],
    )  # fmt: skip
    records = [r for r in scenario.records if r.source == "oms"]
    clock = Clock(max(r.at for r in records))
    running = await PLUGIN.start_scenario_simulator(  # type: ignore[misc]
        Settings(oms_sid=SID, oms_app_key=KEY, oms_app_secret=APP_SECRET),
        scenario.records,  # every source's: the simulator keeps its own
        outages=scenario.outages,
        host="127.0.0.1",
        port=0,
        clock=clock,
    )
    try:
        client = client_for(http, running.url)
        seen: dict[str, bytes] = {}
        lo = T0
        while lo < clock.now:
            hi = min(lo + timedelta(minutes=59), clock.now)
            page_no, more = 0, True
            while more:
                page = await client.trade_query(lo, hi, page_no, 100)
                seen.update((t["trade_no"], raw) for t, raw in zip(page.orders, page.raw, strict=True))
                page_no, more = page_no + 1, page.has_next
            lo = hi + timedelta(seconds=1)
    finally:
        await running.close()
    last = {r.key.decode(): r.value for r in sorted(records, key=lambda r: r.at)}
    assert seen == last and len(seen) > 30  # unpaid orders never reach the ERP
    for value in seen.values():
        assert normalise(json.loads(value))


# --- the plugin ----------------------------------------------------------------------------


async def test_plugin_is_registered_and_serves_generated_orders(http: aiohttp.ClientSession) -> None:
    found = plugin("oms")
    assert found is PLUGIN and found.mode == "pull" and found.start_scenario_simulator is not None
    settings = Settings()
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    running = await start_simulator(
        "oms", settings, n_orders=12, seed=1, start=end - timedelta(minutes=30), end=end, host="127.0.0.1", port=0
    )
    try:
        assert running.url.endswith("/openapi") and len(running.simulator.store) == 12
        async with aiohttp.ClientSession() as session:
            source = found.page_source(session, settings.model_copy(update={"oms_base_url": running.url}))  # type: ignore[misc]
            page = await source.fetch_page(end - timedelta(minutes=31), end, 1)
        assert len(page.items) == 12 and not page.has_next
    finally:
        await running.close()
