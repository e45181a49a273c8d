"""The scenario generator, proved against the real normalisers and the pure twin.

Every record normalises; each order's canonical states run as its profile intends; and a
simulation of the twin agent (``apply``/``evaluate``/``raise_due``, a deadline index and
per-source watermarks that advance every second except during an outage) raises exactly
the ground truth: each fault's alert once, on time, healed ones resolved, nothing else.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.scenario import (
    FAULT_KINDS,
    FAULT_RULES,
    SOURCE_STALE,
    SOURCES,
    Scenario,
    ScenarioRecord,
    generate,
    scenario_summary,
)
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from streams.orders.divergence import evaluate, pending_deadlines, raise_due
from streams.orders.rules import RULES_BY_ID
from streams.orders.timeline import DeadlineIndex
from streams.orders.twin import Twin, apply, epoch_ms
from tests.helpers import CODEC, FP

START = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
T5 = timedelta(seconds=5)
PER_KIND = {k: 7 for k in FAULT_KINDS}

# The live test's scenario (tests/e2e/test_divergence_scenario_live.py), and a sparser one
# with a longer threshold, rate-drawn faults and outages of three sources.
LIVE_LIKE: dict[str, Any] = {
    "seed": 42,
    "n_orders": 2000,
    "start": START,
    "span": timedelta(seconds=60),
    "threshold": T5,
    "fault_counts": PER_KIND,
    "outages": [("wms", timedelta(seconds=30), timedelta(seconds=12))],
}
SPARSE: dict[str, Any] = {
    "seed": 7,
    "n_orders": 800,
    "start": START + timedelta(microseconds=250_000),  # rounded up to the next whole second
    "span": timedelta(minutes=8),
    "threshold": timedelta(seconds=8),
    "fault_counts": {k: 2 for k in FAULT_KINDS},
    "fault_rate": 0.05,
    "heal_share": 0.5,
    "outages": [
        ("wms", timedelta(seconds=100), timedelta(seconds=30)),
        ("carrier", timedelta(seconds=200), timedelta(seconds=20)),
        ("taobao", timedelta(seconds=300), timedelta(seconds=15)),
        ("finance", timedelta(seconds=360), timedelta(seconds=4)),  # shorter than the threshold: no alert
    ],
}
CONFIGS = {"live_like": LIVE_LIKE, "sparse": SPARSE}

SHIPPED = ("PENDING_PAYMENT", "PAID", "ALLOCATED", "OUTBOUND", "IN_TRANSIT", "DELIVERED")
REFUNDED = ("PENDING_PAYMENT", "PAID", "ALLOCATED", "REFUNDED")
INTENDED: dict[str, tuple[str, ...]] = {
    "shipped": SHIPPED,
    "address_change": SHIPPED,
    "cancelled": REFUNDED,
    "unpaid": ("PENDING_PAYMENT", "CANCELLED"),
    "cancel_not_propagated_to_wms": REFUNDED,
    "address_change_not_propagated": SHIPPED,
    "finance_amount_mismatch": SHIPPED,
    "tracking_not_uploaded_to_channel": SHIPPED,
}
INTENDED_UNHEALED: dict[str, tuple[str, ...]] = {
    "wms_never_receives": ("PENDING_PAYMENT", "PAID", "ALLOCATED"),
    "carrier_never_picks_up": ("PENDING_PAYMENT", "PAID", "ALLOCATED", "OUTBOUND"),
}


@dataclass
class Generated:
    scenario: Scenario
    events: list[list[dict[str, Any]]]  # decoded OrderEvents of each record, by record index


_CACHE: dict[str, Generated] = {}


def normalised(scenario: Scenario) -> Generated:
    """Every record through the real normaliser dispatch (no rejection allowed), decoded."""
    events = []
    for offset, rec in enumerate(scenario.records):
        raw = RawRecord(
            source=rec.source,
            topic=f"raw.{rec.source}",
            partition=0,
            offset=offset,
            key=rec.key,
            value=rec.value,
            headers={"received_at": scenario.publish_at(rec).isoformat().encode()},
        )
        outcome = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
        assert outcome.rejection is None, (rec.source, outcome.rejection, rec.value[:300])
        assert not outcome.inventory
        events.append([CODEC.decode_as("OrderEvent", out.value) for out in outcome.orders])
    return Generated(scenario, events)


def generated(name: str) -> Generated:
    """Each configuration generated and normalised once per test session."""
    if name not in _CACHE:
        _CACHE[name] = normalised(generate(**CONFIGS[name]))
    return _CACHE[name]


# --- the twin, simulated as the agent drives it ---------------------------------------------------


@dataclass
class TwinSim:
    """``track_twin`` without Kafka: events at their publish second, then every source's
    (the scenario's channels' and subsystems') watermark moves to that second (an outage's
    source stays at its last vouched second),
    then the deadlines the watermarks passed are raised; SOURCE_STALE as the agent's
    wall-clock check does it, with the stale limit equal to the threshold."""

    scenario: Scenario
    threshold_s: float
    twins: dict[str, Twin] = field(default_factory=dict)
    index: DeadlineIndex = field(default_factory=DeadlineIndex)
    wm: dict[str, int] = field(default_factory=dict)
    alerts: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)  # (tick, alert)
    stale: dict[str, int] = field(default_factory=dict)  # source -> watermark it stopped at

    def run(self, events: list[list[dict[str, Any]]]) -> None:
        by_second: dict[int, list[int]] = defaultdict(list)
        for i, rec in enumerate(self.scenario.records):
            by_second[int(self.scenario.publish_at(rec).timestamp())].append(i)
        first = int(self.scenario.records[0].at.timestamp())
        last = max(by_second) + int(self.threshold_s) + 3
        for second in range(first, last + 1):
            now = datetime.fromtimestamp(second, UTC)
            for i in by_second.get(second, ()):
                for event in events[i]:
                    self.on_event(event, now)
            for source in self.scenario.sources:
                if not any(o.covers(source, now) for o in self.scenario.outages):
                    self.wm[source] = second * 1000
                for key, _rule in self.index.pop_due(source, self.wm[source]):
                    twin, alerts = raise_due(self.twins[key.decode()], self.wm.get, now)
                    self.twins[key.decode()] = twin
                    self.alerts += [(now, a) for a in alerts]
                self.check_stale(source, now)

    def on_event(self, event: dict[str, Any], now: datetime) -> None:
        key = event["order_id"]
        twin = self.twins.get(key)
        new, _ = apply(twin, event)
        new, resolved = evaluate(
            new, at_ms=epoch_ms(event["event_time"]), now=now, default_threshold_s=self.threshold_s
        )
        new, raised = raise_due(new, self.wm.get, now)
        before = set(pending_deadlines(twin)) if twin is not None else set()
        for source, deadline, rule in pending_deadlines(new):
            if (source, deadline, rule) not in before:
                self.index.push(source, deadline, key.encode(), rule)
        self.twins[key] = new
        self.alerts += [(now, a) for a in resolved + raised]

    def check_stale(self, source: str, now: datetime) -> None:
        wm = self.wm[source]
        age = (epoch_ms(now) - wm) / 1000
        if age > self.threshold_s and source not in self.stale:
            self.stale[source] = wm
            self.alerts.append((now, self.stale_alert(source, wm, "RAISED", now)))
        elif age <= self.threshold_s and source in self.stale:
            since = self.stale.pop(source)
            self.alerts.append((now, self.stale_alert(source, since, "RESOLVED", now)))

    @staticmethod
    def stale_alert(source: str, since: int, state: str, now: datetime) -> dict[str, Any]:
        return {
            "rule": SOURCE_STALE,
            "subject": source,
            "state": state,
            "alert_id": f"stale|{source}|{since}",
            "episode_started_at": datetime.fromtimestamp(since / 1000, UTC),
            "resolved_at": now if state == "RESOLVED" else None,
        }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_twin_raises_exactly_the_ground_truth_on_time(name: str) -> None:
    gen = generated(name)
    s = gen.scenario
    threshold = CONFIGS[name]["threshold"]
    kinds = Counter(f.kind for f in s.faults)
    assert set(FAULT_KINDS) <= set(kinds) and "source_outage" in kinds
    assert all(any(f.kind == k and f.heals_at for f in s.faults) for k in FAULT_KINDS)  # healed ones of every kind
    if name == "live_like":
        assert len(s.orders) >= 2000 and len(s.faults) >= 40
    assert_replay_raises_exactly_the_ground_truth(gen, threshold)


def assert_replay_raises_exactly_the_ground_truth(gen: Generated, threshold: timedelta) -> TwinSim:
    """Drive the pure twin through the scenario (TwinSim) and compare its alerts with the
    ground truth: the same set, each raised once, on time; healed ones resolved at the heal;
    orders without a fault end with no open episode."""
    s = gen.scenario
    sim = TwinSim(s, threshold.total_seconds())
    sim.run(gen.events)

    raised = [(t, a) for t, a in sim.alerts if a["state"] == "RAISED"]
    resolved = [(t, a) for t, a in sim.alerts if a["state"] == "RESOLVED"]
    truth = {(f.rule, f.subject): f for f in s.faults}
    got = Counter((a["rule"], a["subject"]) for _, a in raised)
    assert set(got) == set(truth), {"missed": sorted(set(truth) - set(got)), "extra": sorted(set(got) - set(truth))}
    assert max(got.values()) == 1  # raised once each
    assert Counter(a["alert_id"] for _, a in raised).most_common(1)[0][1] == 1
    healed = {k for k, f in truth.items() if f.heals_at is not None}
    assert Counter((a["rule"], a["subject"]) for _, a in resolved) == Counter(healed)

    for tick, alert in raised:
        fault = truth[(alert["rule"], alert["subject"])]
        started: datetime = alert["episode_started_at"]
        if fault.rule == SOURCE_STALE:  # the watermark stopped at the last second vouched before the outage
            assert fault.visible_at - timedelta(seconds=1) <= started <= fault.visible_at
        else:
            assert started == fault.visible_at, (fault, started)
        assert fault.visible_at + threshold <= tick <= fault.visible_at + threshold + timedelta(seconds=1), (
            fault,
            tick,
        )
    for tick, alert in resolved:
        fault = truth[(alert["rule"], alert["subject"])]
        assert alert["resolved_at"] == fault.heals_at == tick, (fault, alert["resolved_at"], tick)

    # Every order with no fault ends with no open episode: nothing pending behind a watermark either.
    faulty = {f.order_id for f in s.faults if f.order_id}
    for order_id, twin in sim.twins.items():
        if order_id not in faulty:
            assert twin["episodes"] == [], (order_id, s.profiles[order_id], twin["episodes"])
    assert set(sim.twins) == set(s.orders)
    return sim


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_expectation_but_the_injected_one_is_met_within_threshold_minus_1s(name: str) -> None:
    """On the scenario's own timeline (every record applied at its event time, no outage),
    each episode any order opens closes strictly within threshold - 1 s, except the one
    episode of each fault, which starts exactly at its visible_at."""
    assert_expectations_met_within_threshold(generated(name), CONFIGS[name]["threshold"])


def assert_expectations_met_within_threshold(gen: Generated, threshold: timedelta) -> None:
    """See the test above: the scenario's timing contract, checked on its own timeline."""
    s = gen.scenario
    injected = {(f.subject, f.rule): f for f in s.faults}
    twins: dict[str, Twin] = {}
    durations: list[tuple[str, str, timedelta]] = []
    for rec, events in zip(s.records, gen.events, strict=True):
        for event in events:
            key = event["order_id"]
            before = twins[key]["episodes"] if key in twins else []
            twin, _ = apply(twins.get(key), event)
            twin, _ = evaluate(twin, at_ms=epoch_ms(rec.at), now=rec.at, default_threshold_s=threshold.total_seconds())
            # Every source is complete up to this record's time on the scenario's own timeline:
            # history older than that is final (an episode met late is closed here).
            twin, _ = raise_due(twin, lambda _source, at=rec.at: epoch_ms(at), rec.at)
            after = {(e["rule"], e["started_at"]) for e in twin["episodes"]}
            for episode in before:
                if (episode["rule"], episode["started_at"]) not in after:
                    durations.append((key, episode["rule"], rec.at - episode["started_at"]))
            twins[key] = twin
    still_open = {(key, e["rule"]): e["started_at"] for key, twin in twins.items() for e in twin["episodes"]}
    slow = [d for d in durations if (d[0], d[1]) not in injected and d[2] >= threshold - timedelta(seconds=1)]
    assert not slow, slow[:5]
    assert len(durations) > len(s.orders)  # orders do open (and promptly close) episodes: not vacuous
    longest = max(d[2] for d in durations if (d[0], d[1]) not in injected)
    assert longest <= timedelta(seconds=3)
    for (subject, rule), fault in injected.items():
        if fault.order_id is None:
            continue
        if fault.heals_at is not None:  # open from visible_at until the heal, then closed
            assert [d[2] for d in durations if d[:2] == (subject, rule)] == [fault.heals_at - fault.visible_at]
            assert (subject, rule) not in still_open
        else:  # open from visible_at to the end
            assert still_open[(subject, rule)] == fault.visible_at
    assert set(still_open) == {k for k, f in injected.items() if f.order_id is not None and f.heals_at is None}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_records_normalise_and_states_run_as_intended(name: str) -> None:
    gen = generated(name)
    s = gen.scenario
    healed = {f.order_id for f in s.faults if f.heals_at is not None}
    twins: dict[str, Twin] = {}
    states: dict[str, list[str]] = defaultdict(list)
    seen_sources: dict[str, set[str]] = defaultdict(set)
    for rec, events in zip(s.records, gen.events, strict=True):
        assert rec.at.tzinfo is UTC and rec.at.microsecond == 0
        assert [e["order_id"] for e in events] == [rec.order_id]
        (event,) = events
        assert event["source"] == rec.source and event["event_time"] == rec.at  # payload time == at, to the second
        seen_sources[rec.order_id].add(rec.source)
        twins[rec.order_id], _ = apply(twins.get(rec.order_id), event)
        state = twins[rec.order_id]["state"]
        if not states[rec.order_id] or states[rec.order_id][-1] != state:
            states[rec.order_id].append(state)
    assert [r.at for r in s.records] == sorted(r.at for r in s.records)
    assert set(states) == set(s.orders)
    for order_id, profile in s.profiles.items():
        intended = INTENDED.get(profile) or (SHIPPED if order_id in healed else INTENDED_UNHEALED[profile])
        assert tuple(states[order_id]) == intended, (order_id, profile, states[order_id])
        twin = twins[order_id]
        wms, channel = twin["systems"].get("WMS"), twin["systems"]["CHANNEL"]
        if profile in ("shipped", "address_change"):
            assert seen_sources[order_id] == set(SOURCES)
            assert wms["address_fp"] == channel["address_fp"]  # the oaid travels to the warehouse
            assert wms["tracking_no"] == twin["systems"]["CARRIER"]["tracking_no"]
            assert twin["systems"]["FINANCE"]["amount_minor"] == twin["amount_minor"]
        if profile == "address_change":
            assert len([k for k in twin["milestones"] if k.startswith("CHANNEL:addr:")]) == 2
        if profile == "cancelled":
            assert wms["status"] == "CANCELLED" and twin["systems"]["FINANCE"]["status"] == "REFUNDED"
        if profile == "unpaid":
            assert seen_sources[order_id] == {"taobao"}


def test_payloads_look_like_the_platforms_and_keep_personal_data_masked() -> None:
    s = generated("live_like").scenario
    raw_statuses: dict[str, Counter[str]] = defaultdict(Counter)
    for rec in s.records:
        doc = json.loads(rec.value)
        if rec.source == "taobao":
            assert rec.key == str(doc["tid"]).encode() and isinstance(doc["tid"], int) and doc["tid"] < 2**63
            assert re.fullmatch(r".\*\*", doc["receiver_name"])
            assert re.fullmatch(r"\d{3}\*{4}\d{4}", doc["receiver_mobile"])
            assert doc["receiver_address"].endswith("***") and doc["oaid"]
            raw_statuses["taobao"][doc["status"]] += 1
        elif rec.source == "oms":
            assert rec.key == doc["trade_no"].encode() and doc["receiver_name"] == ""
            raw_statuses["oms"][str(doc["trade_status"])] += 1
        elif rec.source == "wms":
            body = doc.get("request") or doc["response"]
            code = (body.get("deliveryOrder") or body["order"]).get("deliveryOrderCode") or body["order"]["orderCode"]
            assert rec.key == code.encode()
            info = (body.get("deliveryOrder") or {}).get("receiverInfo")
            if info:
                assert re.fullmatch(r".\*\*", info["name"]) and "*" in info["mobile"] and info["oaid"]
            status = (body.get("process") or {}).get("processStatus") or body["deliveryOrder"]["status"]
            raw_statuses["wms"][f"{doc['method'].removeprefix('taobao.qimen.')}:{status}"] += 1
        elif rec.source == "carrier":
            param = json.loads(doc["param"])
            assert rec.key == param["lastResult"]["nu"].encode() and doc["query"]["order_id"] == rec.order_id
            raw_statuses["carrier"][param["lastResult"]["state"]] += 1
        else:
            assert rec.key == f"{doc['voucher_no']}/{doc['entry_no']}".encode()
            raw_statuses["finance"][doc["biz_type"]] += 1
    assert set(raw_statuses["taobao"]) == {
        "WAIT_BUYER_PAY",
        "WAIT_SELLER_SEND_GOODS",
        "WAIT_BUYER_CONFIRM_GOODS",
        "TRADE_CLOSED",
        "TRADE_CLOSED_BY_TAOBAO",
    }
    assert set(raw_statuses["oms"]) == {"55", "95", "5"}
    assert set(raw_statuses["wms"]) == {
        "orderprocess.report:ACCEPT",
        "orderprocess.report:PACKAGE",
        "orderprocess.report:CANCELED",
        "orderprocess.report:TMSCANCELED",
        "deliveryorder.query:ACCEPT",
        "deliveryorder.confirm:DELIVERED",
    }
    assert set(raw_statuses["carrier"]) == {"1", "0", "3"}
    assert set(raw_statuses["finance"]) == {"PAYMENT_RECEIVED", "REFUND_POSTED"}


def test_outage_records_publish_at_the_outage_end_with_their_event_times() -> None:
    s = generated("live_like").scenario
    (outage,) = s.outages
    held = [r for r in s.records if outage.covers(r.source, r.at)]
    assert held and all(r.source == "wms" for r in held)
    assert {s.publish_at(r) for r in held} == {outage.end}
    assert all(s.publish_at(r) == r.at for r in s.records if r not in held)
    published = s.in_publication_order()
    assert [s.publish_at(r) for r in published] == sorted(s.publish_at(r) for r in s.records)
    # Faulty orders keep away from the outage; plenty of normal orders live through it.
    assert not {f.order_id for f in s.faults if f.order_id} & {r.order_id for r in held}
    assert len({r.order_id for r in held}) > 100


def test_same_seed_same_bytes_other_seed_other_scenario(tmp_path: Path) -> None:
    a = generate(**{**LIVE_LIKE, "n_orders": 300})
    b = generate(**{**LIVE_LIKE, "n_orders": 300})
    c = generate(**{**LIVE_LIKE, "n_orders": 300, "seed": 43})
    assert a.records == b.records and a.faults == b.faults and a.outages == b.outages and a.orders == b.orders
    a.write_ground_truth(tmp_path / "a.json")
    b.write_ground_truth(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert c.records != a.records and c.orders != a.orders


def test_ground_truth_is_json_and_summary_counts() -> None:
    s = generated("live_like").scenario
    truth = json.loads(json.dumps(s.ground_truth()))
    assert len(truth) == len(s.faults)
    for entry, fault in zip(truth, s.faults, strict=True):
        assert set(entry) == {"kind", "order_id", "rule", "subject", "visible_at", "heals_at"}
        assert datetime.fromisoformat(entry["visible_at"]) == fault.visible_at
        assert entry["rule"] in RULES_BY_ID or entry["rule"] == SOURCE_STALE
    summary = scenario_summary(s)
    assert summary["orders"] == 2000 and summary["faults_per_kind"] == {**PER_KIND, "source_outage": 1}
    assert sum(summary["records_per_source"].values()) == len(s.records)
    assert json.loads(json.dumps(summary)) == summary


def test_fault_kinds_name_real_rules() -> None:
    assert set(FAULT_RULES) == set(FAULT_KINDS)
    assert set(FAULT_RULES.values()) <= set(RULES_BY_ID)


def test_bad_arguments_are_refused() -> None:
    ok: dict[str, Any] = {"seed": 1, "n_orders": 10, "start": START, "span": timedelta(seconds=60), "threshold": T5}
    with pytest.raises(ValueError, match="too short"):
        generate(**{**ok, "threshold": timedelta(seconds=3)})
    with pytest.raises(ValueError, match="unknown fault kinds"):
        generate(**{**ok, "fault_counts": {"printer_on_fire": 1}})
    with pytest.raises(ValueError, match="unknown outage source"):
        generate(**{**ok, "outages": [("erp", timedelta(0), timedelta(seconds=10))]})
    with pytest.raises(ValueError, match="too close to the threshold"):
        generate(**{**ok, "outages": [("wms", timedelta(0), timedelta(seconds=6))]})
    with pytest.raises(ValueError, match="not enough orders"):
        generate(**{**ok, "fault_counts": {"wms_never_receives": 11}})
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(**{**ok, "start": datetime(2026, 11, 11)})


def test_scenario_record_shape() -> None:
    rec = generated("live_like").scenario.records[0]
    assert isinstance(rec, ScenarioRecord) and rec.order_id.startswith("taobao:")


def test_cli_prints_the_summary_and_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from connectors.scenario.__main__ import main

    args = ["--orders", "120", "--start", START.isoformat(), "--per-kind", "1", "--outage", "wms:20:8"]
    assert main([*args, "--ground-truth", str(tmp_path / "gt.json"), "--records", str(tmp_path / "r.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["orders"] == 120 and summary["faults"] == len(FAULT_KINDS) + 1
    assert len(json.loads((tmp_path / "gt.json").read_text())) == summary["faults"]
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(rows) == summary["records"] and {r["source"] for r in rows} == set(SOURCES)
