"""The scenario generator on all seven channels, proved against the real normalisers and the
pure twin; and the default (Taobao-only) output pinned byte for byte.

The digests below were computed from the Taobao-only generator *before* channels existed
(commit 3c6107c): the default arguments must keep producing exactly those records, faults,
orders and profiles, so every existing test and live run keeps its meaning.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.douyin.client import order_key as douyin_key
from connectors.douyin.client import order_updated as douyin_updated
from connectors.jd.client import order_key as jd_key
from connectors.jd.client import order_modified as jd_modified
from connectors.kuaishou.client import order_key as kuaishou_key
from connectors.kuaishou.client import order_updated as kuaishou_updated
from connectors.pdd.client import order_key as pdd_key
from connectors.pdd.client import order_updated as pdd_updated
from connectors.scenario import (
    CHANNELS,
    FAULT_KINDS,
    STRUCTURAL_RULES,
    Scenario,
    generate,
    scenario_summary,
)
from connectors.scenario.platforms import CHANNEL_WEIGHTS, OMS_PLATFORM_ID, QIMEN_PLATFORM_CODE, can_carry
from connectors.shopee.client import order_key as shopee_key
from connectors.shopee.client import order_updated as shopee_updated
from connectors.shopify.client import order_key as shopify_key
from connectors.shopify.client import order_updated as shopify_updated
from connectors.taobao.client import trade_key, trade_modified
from streams.orders.twin import Twin, apply
from tests.connectors.test_scenario import (
    LIVE_LIKE,
    SPARSE,
    START,
    Generated,
    assert_expectations_met_within_threshold,
    assert_replay_raises_exactly_the_ground_truth,
    normalised,
)

# sha256 of the default output (see scenario_digest), computed before the channels change.
PINNED_DIGESTS = {
    "live_like": "b7c6d4c54c0f7665df92abec38fe7825844b4ab36d53c05d3a1658d1f5bbf5dd",
    "sparse": "d592d41dd4b45c4d32c94da63e6c03665bce9effb5b83692d292460b6eaf6201",
}

# Every channel, every fault kind, a WMS outage (the live test's scenario on all channels);
# and a sparser one with a longer threshold, rate-drawn faults and outages of two channels.
ALL_LIVE: dict[str, Any] = {**LIVE_LIKE, "channels": CHANNELS}
ALL_SPARSE: dict[str, Any] = {
    **SPARSE,
    "channels": CHANNELS,
    "outages": [
        ("wms", timedelta(seconds=100), timedelta(seconds=30)),
        ("douyin", timedelta(seconds=200), timedelta(seconds=20)),
        ("shopee", timedelta(seconds=300), timedelta(seconds=15)),
        ("jd", timedelta(seconds=360), timedelta(seconds=4)),  # shorter than the threshold: no alert
    ],
}
CONFIGS = {"all_live": ALL_LIVE, "all_sparse": ALL_SPARSE}
_CACHE: dict[str, Generated] = {}


def generated(name: str) -> Generated:
    if name not in _CACHE:
        _CACHE[name] = normalised(generate(**CONFIGS[name]))
    return _CACHE[name]


def scenario_digest(s: Scenario) -> str:
    h = hashlib.sha256()
    for r in s.records:
        for part in (r.at.isoformat().encode(), r.source.encode(), r.key, r.value):
            h.update(part)
            h.update(b"\0")
        h.update(r.order_id.encode())
        h.update(b"\n")
    h.update(json.dumps(s.ground_truth(), sort_keys=True).encode())
    h.update(json.dumps(s.orders).encode())
    h.update(json.dumps(s.profiles, sort_keys=True).encode())
    h.update(json.dumps([[o.source, o.start.isoformat(), o.end.isoformat()] for o in s.outages]).encode())
    return h.hexdigest()


@pytest.mark.parametrize(("name", "config"), [("live_like", LIVE_LIKE), ("sparse", SPARSE)])
def test_the_default_output_is_byte_identical_to_the_taobao_only_generator(name: str, config: dict[str, Any]) -> None:
    assert scenario_digest(generate(**config)) == PINNED_DIGESTS[name]
    assert scenario_digest(generate(**config, channels=("taobao",))) == PINNED_DIGESTS[name]


def test_any_other_channel_set_changes_the_output() -> None:
    """The digest is not blind: adding a channel changes it."""
    small = {**LIVE_LIKE, "n_orders": 200}
    assert scenario_digest(generate(**small)) != scenario_digest(generate(**small, channels=("taobao", "jd")))


# --- orders, ids and the channel mix -----------------------------------------------------------------

ORDER_ID = {
    "taobao": r"\d{19}",
    "jd": r"3\d{11}",
    "pdd": r"\d{6}-\d{15}",
    "douyin": r"69\d{17}",
    "kuaishou": r"24\d{14}",
    "shopee": r"\d{6}[A-Z0-9]{8}",
    "shopify": r"5\d{12}",
}


def test_order_ids_are_unique_and_carry_their_channel_in_its_format() -> None:
    s = generated("all_live").scenario
    assert len(set(s.orders)) == len(s.orders) == 2000
    for order_id in s.orders:
        channel, ref = order_id.split(":", 1)
        assert re.fullmatch(ORDER_ID[channel], ref), order_id
    for rec in s.records:
        assert rec.order_id in s.profiles


def test_orders_are_spread_over_the_channels_like_a_mid_size_merchant() -> None:
    s = generated("all_live").scenario
    share = Counter(o.split(":", 1)[0] for o in s.orders)
    assert set(share) == set(CHANNELS)
    ranked = [c for c, _ in share.most_common()]
    assert ranked[:5] == ["taobao", "douyin", "pdd", "jd", "kuaishou"], share
    total = sum(CHANNEL_WEIGHTS.values())
    for channel, n in share.items():  # within 4 points of the weight (2000 orders)
        assert abs(n / len(s.orders) - CHANNEL_WEIGHTS[channel] / total) < 0.04, (channel, n)
    assert scenario_summary(s)["orders_per_channel"] == {c: share[c] for c in CHANNELS}


def test_channel_draws_are_reproducible_and_independent_of_the_order_given() -> None:
    small = {**LIVE_LIKE, "n_orders": 300}
    a = generate(**small, channels=("shopify", "jd", "taobao"))
    b = generate(**small, channels=("taobao", "jd", "shopify"))
    assert a.records == b.records and a.faults == b.faults and a.channels == ("taobao", "jd", "shopify")
    assert {o.split(":")[0] for o in a.orders} == {"taobao", "jd", "shopify"}


# --- every record: the connector's key and time, the intended canonical status ---------------------

KEY_AND_TIME: dict[str, Callable[[Any], tuple[bytes | None, datetime | None]]] = {
    "taobao": lambda d: (trade_key(d), trade_modified(d)),
    "jd": lambda d: (jd_key(d), jd_modified(d)),
    "pdd": lambda d: (pdd_key(d), pdd_updated(d)),
    "douyin": lambda d: (douyin_key(d), douyin_updated(d)),
    "kuaishou": lambda d: (kuaishou_key(d), kuaishou_updated(d)),
    "shopee": lambda d: (shopee_key(d), shopee_updated(d)),
    "shopify": lambda d: (shopify_key(d), shopify_updated(d)),
}
CHINA_TEXT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
PRINTED_TIME: dict[str, Callable[[dict[str, Any]], bool]] = {
    "taobao": lambda d: bool(re.fullmatch(CHINA_TEXT, d["modified"])),
    "jd": lambda d: bool(re.fullmatch(CHINA_TEXT, d["modified"])),
    "pdd": lambda d: bool(re.fullmatch(CHINA_TEXT, d["updated_at"])),
    "douyin": lambda d: isinstance(d["update_time"], int) and d["update_time"] < 10**10,
    "kuaishou": lambda d: d["orderBaseInfo"]["updateTime"] % 1000 == 0 and d["orderBaseInfo"]["updateTime"] > 10**12,
    "shopee": lambda d: isinstance(d["update_time"], int) and d["update_time"] < 10**10,
    "shopify": lambda d: bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", d["updated_at"])),
}

# Raw statuses (as normalised) each channel's records must show across the scenario: every step.
RAW_STATUSES = {
    "taobao": {
        "WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS",
        "TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO",
    },
    "jd": {"WAIT_SELLER_STOCK_OUT", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L", "TRADE_CANCELED"},
    "pdd": {"1/1/0", "1/1/1", "2/1/1", "3/1/1", "1/4/1", "1/1/2"},
    "douyin": {"1", "105", "2", "3", "5", "4/21", "4/4"},
    "kuaishou": {"10", "30", "40", "50", "70", "80/60", "80"},
    "shopee": {
        "UNPAID", "READY_TO_SHIP", "PROCESSED", "SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED", "IN_CANCEL", "CANCELLED",
    },
    "shopify": {"pending/null", "paid/null", "paid/fulfilled", "refunded/null/cancelled", "voided/null/cancelled"},
}  # fmt: skip

FINISHES = {"jd", "douyin", "kuaishou", "shopee"}  # a "finished" (buyer confirmed) state after delivery
EXIT_ON_CANCEL = {"jd": "CANCELLED", "shopee": "CANCELLED"}  # the others close as REFUNDED
SHOPPING = ("PAID", "ALLOCATED", "OUTBOUND", "IN_TRANSIT", "DELIVERED")


def intended(channel: str, profile: str, *, healed: bool) -> tuple[str, ...]:
    """The twin states an order runs through, by channel and profile (or fault kind)."""
    unpaid = () if channel == "jd" else ("PENDING_PAYMENT",)
    if profile == "unpaid":
        return ("PENDING_PAYMENT", "CANCELLED")
    exit_ = EXIT_ON_CANCEL.get(channel, "REFUNDED")
    if channel == "shopee":
        if profile == "cancelled":
            return (*unpaid, "PAID", exit_)
        return (*unpaid, "PAID", "IN_TRANSIT", "DELIVERED", "COMPLETED")
    if channel == "shopify":
        if profile == "cancelled":
            return (*unpaid, "PAID", exit_)
        return (*unpaid, "PAID", "OUTBOUND", "IN_TRANSIT", "DELIVERED")
    if profile in ("cancelled", "cancel_not_propagated_to_wms"):
        return (*unpaid, "PAID", "ALLOCATED", exit_)
    if not healed and profile == "wms_never_receives":
        return (*unpaid, "PAID", "ALLOCATED")
    if not healed and profile == "carrier_never_picks_up":
        return (*unpaid, "PAID", "ALLOCATED", "OUTBOUND")
    channel_shipped = healed or profile != "tracking_not_uploaded_to_channel"
    done = ("COMPLETED",) if channel in FINISHES and channel_shipped else ()
    return (*unpaid, *SHOPPING, *done)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_record_normalises_and_each_order_runs_its_intended_states(name: str) -> None:
    gen = generated(name)
    s = gen.scenario
    healed = {f.order_id for f in s.faults if f.heals_at is not None}
    twins: dict[str, Twin] = {}
    states: dict[str, list[str]] = defaultdict(list)
    raw_statuses: dict[str, set[str]] = defaultdict(set)
    for rec, events in zip(s.records, gen.events, strict=True):
        (event,) = events
        assert event["order_id"] == rec.order_id and event["source"] == rec.source
        assert event["event_time"] == rec.at and rec.at.microsecond == 0
        if rec.source in CHANNELS:
            assert event["channel"] == rec.source == rec.order_id.split(":")[0]
            doc = json.loads(rec.value)
            assert KEY_AND_TIME[rec.source](doc) == (rec.key, rec.at), rec.value[:200]
            assert PRINTED_TIME[rec.source](doc), rec.value[:300]
            raw_statuses[rec.source].add(event["raw_status"])
        twins[rec.order_id], _ = apply(twins.get(rec.order_id), event)
        state = twins[rec.order_id]["state"]
        if not states[rec.order_id] or states[rec.order_id][-1] != state:
            states[rec.order_id].append(state)
    assert set(states) == set(s.orders)
    for order_id, profile in s.profiles.items():
        channel = order_id.split(":")[0]
        want = intended(channel, profile, healed=order_id in healed)
        assert tuple(states[order_id]) == want, (order_id, profile, states[order_id])
    if name == "all_live":  # every step of every channel occurs
        assert {c: raw_statuses[c] for c in CHANNELS} == RAW_STATUSES
    assert all(raw_statuses[c] <= RAW_STATUSES[c] for c in CHANNELS)


# --- the subsystems name the right channel -----------------------------------------------------------

PROVIDERS = {
    "taobao": {"ALIPAY"},
    "jd": {"JDPAY"},
    "pdd": {"WECHATPAY", "ALIPAY", "PDDPAY"},
    "douyin": {"WECHATPAY", "ALIPAY", "DOUYINPAY"},
    "kuaishou": {"WECHATPAY", "ALIPAY"},
    "shopee": {"SHOPEEPAY"},
    "shopify": {"SHOPIFY_PAYMENTS"},
}


def test_subsystem_payloads_reference_the_orders_channel() -> None:
    s = generated("all_live").scenario
    seen: dict[str, set[str]] = defaultdict(set)
    providers: dict[str, set[str]] = defaultdict(set)
    currencies: dict[str, set[str]] = defaultdict(set)
    for rec in s.records:
        channel, ref = rec.order_id.split(":", 1)
        doc = json.loads(rec.value)
        if rec.source == "oms":
            assert doc["platform_id"] == doc["shop_platform_id"] == OMS_PLATFORM_ID[channel]
            assert doc["src_tids"] == ref and {d["src_tid"] for d in doc["detail_list"]} == {ref}
            assert {d["platform_id"] for d in doc["detail_list"]} == {OMS_PLATFORM_ID[channel]}
        elif rec.source == "wms":
            body = doc.get("request") or doc["response"]
            props = body.get("extendProps") or {}
            code = props.get("sourcePlatformCode") or body["deliveryOrder"]["sourcePlatformCode"]
            want = {"TB", "TM"} if channel == "taobao" else {QIMEN_PLATFORM_CODE[channel]}
            assert code in want
            assert props.get("sourceOrderCode", ref) == ref
            info = (body.get("deliveryOrder") or {}).get("receiverInfo")
            if info:  # the oaid travels only with TOP orders
                assert ("oaid" in info) == (channel == "taobao")
        elif rec.source == "carrier":
            assert doc["query"]["order_id"] == rec.order_id
        elif rec.source == "finance":
            assert doc["channel"] == channel and doc["platform_order_no"] == ref
            providers[channel].add(doc["pay_provider"])
            currencies[channel].add(doc["currency"])
        seen[channel].add(rec.source)
    for channel in CHANNELS:
        subsystems = (
            {"oms", "wms", "carrier", "finance"}
            if can_carry(channel, "wms_never_receives")
            else {
                "carrier",
                "finance",
            }
        )
        assert seen[channel] == {channel, *subsystems}, (channel, seen[channel])
    assert dict(providers) == PROVIDERS
    assert {c: cur for c, cur in currencies.items() if c not in ("shopee", "shopify")} == {
        c: {"CNY"} for c in CHANNELS if c not in ("shopee", "shopify")
    }
    assert currencies["shopify"] == {"USD"} and currencies["shopee"] <= {"SGD", "MYR", "PHP", "THB"}
    assert len(currencies["shopee"]) > 1


def test_masked_personal_data_on_the_chinese_channels() -> None:
    s = generated("all_live").scenario
    checked: Counter[str] = Counter()
    for rec in s.records:
        doc = json.loads(rec.value)
        if rec.source == "jd":
            info = doc["consigneeInfo"]
            assert re.fullmatch(r".\*", info["fullname"]) and re.fullmatch(r"\d{3}\*{4}\d{4}", info["mobile"])
            assert info["fullAddress"].endswith("***")
        elif rec.source == "pdd":
            assert doc["receiver_name"].startswith("~AgAAAA") and doc["receiver_name_mask"].endswith("**")
            assert doc["address_mask"].endswith("****")
        elif rec.source == "douyin":
            assert doc["mask_post_receiver"].endswith("**") and doc["mask_post_addr"]["detail"].endswith("***号")
        elif rec.source == "kuaishou":
            addr = doc["orderAddress"]
            assert addr["consignee"] == addr["mobile"] == addr["address"] == ""
            assert addr["desensitiseConsignee"].endswith("**")
        else:
            continue
        checked[rec.source] += 1
    assert set(checked) == {"jd", "pdd", "douyin", "kuaishou"}


# --- the ground truth, replayed through the pure twin -----------------------------------------------


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_twin_raises_exactly_the_ground_truth_on_every_channel(name: str) -> None:
    gen = generated(name)
    s = gen.scenario
    threshold = CONFIGS[name]["threshold"]
    kinds = Counter(f.kind for f in s.faults)
    assert set(FAULT_KINDS) | set(STRUCTURAL_RULES) | {"source_outage"} <= set(kinds)
    assert all(any(f.kind == k and f.heals_at for f in s.faults) for k in FAULT_KINDS)
    # Faults on many channels, each on a channel that can carry it.
    fault_channels: dict[str, set[str]] = {f.kind: set() for f in s.faults}
    for f in s.faults:
        if f.order_id:
            channel = f.order_id.split(":")[0]
            fault_channels[f.kind].add(channel)
            assert can_carry(channel, f.kind) or f.kind in STRUCTURAL_RULES
    if name == "all_live":
        assert len({c for k in FAULT_KINDS for c in fault_channels[k]}) >= 5
    assert fault_channels["address_change_not_propagated"] == {"taobao"}
    # Structural alerts: exactly the Shopee/Shopify orders paid and not closed within the threshold.
    cross_border = {o for o, p in s.profiles.items() if o.split(":")[0] in ("shopee", "shopify")}
    open_ones = {o for o in cross_border if s.profiles[o] not in ("unpaid", "cancelled")}
    assert {f.order_id for f in s.faults if f.kind in STRUCTURAL_RULES} == open_ones
    assert len(open_ones) < len(cross_border)  # some were cancelled or never paid: no alert for those

    sim = assert_replay_raises_exactly_the_ground_truth(gen, threshold)
    raised_channels = {
        a["subject"].split(":")[0] for _, a in sim.alerts if a["state"] == "RAISED" and ":" in a["subject"]
    }
    assert raised_channels == set(CHANNELS) if name == "all_live" else len(raised_channels) >= 4
    if name == "all_sparse":
        stale = {a["subject"] for _, a in sim.alerts if a["rule"] == "SOURCE_STALE" and a["state"] == "RAISED"}
        assert stale == {"wms", "douyin", "shopee"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_expectation_but_the_injected_ones_is_met_in_time_on_every_channel(name: str) -> None:
    assert_expectations_met_within_threshold(generated(name), CONFIGS[name]["threshold"])


def test_a_single_other_channel_and_jds_lack_of_unpaid_orders() -> None:
    per_kind = {k: 3 for k in FAULT_KINDS if k != "address_change_not_propagated"}
    kuaishou = generate(**{**LIVE_LIKE, "n_orders": 300, "channels": ("kuaishou",), "fault_counts": per_kind})
    assert {o.split(":")[0] for o in kuaishou.orders} == {"kuaishou"}
    assert {"unpaid", "cancelled", "shipped"} <= set(kuaishou.profiles.values())
    assert "address_change_not_propagated" not in kuaishou.profiles.values()
    assert not {f.kind for f in kuaishou.faults} & set(STRUCTURAL_RULES)
    for rec in kuaishou.records:  # a Kuaishou order has one item: so have its ERP and WMS documents
        if rec.source == "kuaishou":
            assert isinstance(json.loads(rec.value)["orderItemInfo"]["num"], int)
        elif rec.source == "oms":
            assert len(json.loads(rec.value)["detail_list"]) == 1
    jd = generate(
        seed=5, n_orders=200, start=START, span=timedelta(seconds=60), threshold=LIVE_LIKE["threshold"], channels=["jd"]
    )
    assert "unpaid" not in jd.profiles.values() and "address_change" not in jd.profiles.values()
    first: dict[str, str] = {}
    for rec in jd.records:
        if rec.source == "jd":
            first.setdefault(rec.order_id, json.loads(rec.value)["orderState"])
    assert set(first.values()) == {"WAIT_SELLER_STOCK_OUT"} and len(first) == 200


def test_bad_channel_arguments_are_refused() -> None:
    ok: dict[str, Any] = {
        "seed": 1,
        "n_orders": 20,
        "start": START,
        "span": timedelta(seconds=60),
        "threshold": LIVE_LIKE["threshold"],
    }
    with pytest.raises(ValueError, match="unknown channels"):
        generate(**ok, channels=("taobao", "tmall"))
    with pytest.raises(ValueError, match="at least one channel"):
        generate(**ok, channels=())
    with pytest.raises(ValueError, match="not one string"):
        generate(**ok, channels="jd")
    with pytest.raises(ValueError, match="address_change_not_propagated needs one of the channels taobao"):
        generate(**ok, channels=("jd", "pdd"), fault_counts={"address_change_not_propagated": 1})
    with pytest.raises(ValueError, match="unknown outage source 'douyin'"):
        generate(**ok, channels=("jd",), outages=[("douyin", timedelta(0), timedelta(seconds=10))])
    with pytest.raises(ValueError, match="not enough orders"):  # 20 orders, few of them on JD
        generate(**ok, channels=("taobao", "jd", "shopee"), fault_counts={"wms_never_receives": 20})


def test_cli_takes_a_channel_list_or_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from connectors.scenario.__main__ import main

    args = ["--orders", "400", "--start", START.isoformat(), "--per-kind", "1"]
    assert main([*args, "--channels", "all", "--records", str(tmp_path / "r.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["orders_per_channel"]) == set(CHANNELS) and all(summary["orders_per_channel"].values())
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert {r["source"] for r in rows} == {*CHANNELS, "oms", "wms", "carrier", "finance"}
    assert main([*args, "--channels", "jd, pdd"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["orders_per_channel"]) == {"jd", "pdd"} and summary["orders"] == 400
    with pytest.raises(SystemExit):
        main([*args, "--channels", "jd,ebay"])
    assert "unknown channels ['ebay']" in capsys.readouterr().err
