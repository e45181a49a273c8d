"""Carrier (Kuaidi100 push) specifics: exceptions, returns, order references, fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.core import Outcome, normalise_record
from streams.normalise.sources import carrier
from tests.helpers import CODEC, FP, fixture_json, raw_record

EXCEPTIONS = ["2", "201", "202", "203", "204", "205", "206", "207", "208", "209", "210", "14", "7"]
CUSTOMS = ["8", "10", "11", "12", "13"]


def _run(doc: dict[str, Any]) -> Outcome:
    return normalise_record(
        raw_record("carrier", json.dumps(doc).encode()), codec=CODEC, fingerprint=FP, max_bytes=10**6
    )


def _events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = _run(doc)
    assert outcome.rejection is None, outcome.rejection
    return [o.record for o in outcome.orders]


def _push(state: str) -> dict[str, Any]:
    doc: dict[str, Any] = fixture_json("carrier", "state_1002.json")
    doc["param"]["lastResult"]["state"] = state
    return doc


@pytest.mark.parametrize("state", EXCEPTIONS + CUSTOMS)
def test_exceptions_keep_the_parcel_in_transit_and_show_the_code(state: str) -> None:
    (event,) = _events(_push(state))
    assert (event["status"], event["raw_status"]) == ("IN_TRANSIT", state)


def test_exception_states_are_all_documented_and_mapped() -> None:
    assert set(EXCEPTIONS + CUSTOMS) <= set(carrier.CARRIER_STATE)


@pytest.mark.parametrize(
    ("state", "status"), [("6", "RETURNED"), ("4", "RETURNED"), ("3", "DELIVERED"), ("1", "IN_TRANSIT")]
)
def test_returned_delivered_and_picked_up(state: str, status: str) -> None:
    assert _events(_push(state))[0]["status"] == status


@pytest.mark.parametrize("state", sorted(carrier.CARRIER_UNMAPPED_STATE))
def test_pre_pickup_and_withdrawn_states_are_rejected_with_their_reason(state: str) -> None:
    outcome = _run(_push(state))
    assert outcome.rejection is not None and outcome.rejection.reason == "UNSUPPORTED"
    assert carrier.CARRIER_UNMAPPED_STATE[state] in outcome.rejection.message
    assert state not in carrier.CARRIER_STATE


def test_param_as_json_text_or_object_is_the_same_fact() -> None:
    as_object = fixture_json("carrier", "state_1002.json")
    as_text = dict(as_object, param=json.dumps(as_object["param"], ensure_ascii=False))
    assert _events(as_object) == _events(as_text)


def test_one_parcel_for_merged_orders_reports_each_order_once() -> None:
    doc = fixture_json("carrier", "merged_parcel.json")
    doc["query"]["order_id"] += ",taobao:3987215540123470001"  # listed twice
    events = _events(doc)
    assert [e["order_id"] for e in events] == ["taobao:3987215540123470001", "taobao:3987215540123470002"]
    assert len({e["event_id"] for e in events}) == 2


def test_event_time_is_the_newest_trace_entry_whatever_the_order() -> None:
    doc = fixture_json("carrier", "state_3.json")
    newest = _events(doc)[0]["event_time"]
    doc["param"]["lastResult"]["data"].reverse()  # an 'asc' subscription
    assert _events(doc)[0]["event_time"] == newest


def test_carrier_code_is_the_wms_code_and_unknown_codes_stay_verbatim() -> None:
    assert _events(fixture_json("carrier", "state_1.json"))[0]["carrier"] == "SF"
    assert _events(fixture_json("carrier", "merged_parcel.json"))[0]["carrier"] == "debangkuaidi"


def test_order_reference_must_be_canonical_and_tracked() -> None:
    doc = fixture_json("carrier", "state_0.json")
    doc["query"]["order_id"] = "3987215540123456829"  # no channel
    assert _run(doc).rejection.reason == "INVALID_VALUE"  # type: ignore[union-attr]
    doc["query"]["order_id"] = "amazon:3987215540123456829"
    assert _run(doc).rejection.reason == "UNSUPPORTED"  # type: ignore[union-attr]


def test_no_trace_text_on_the_canonical_event() -> None:
    doc = fixture_json("carrier", "state_5.json")
    doc["param"]["lastResult"]["data"][0]["context"] = "【北京市】快递员 王师傅 13912345678 正在派件"
    outcome = _run(doc)
    for needle in ("王师傅", "13912345678", "北京市"):
        assert needle.encode() not in outcome.orders[0].value


def test_same_push_twice_has_the_same_event_id_and_a_new_state_a_new_one() -> None:
    first = _events(fixture_json("carrier", "state_0.json"))[0]["event_id"]
    assert _events(fixture_json("carrier", "state_0.json"))[0]["event_id"] == first
    doc = fixture_json("carrier", "state_0.json")
    doc["param"]["lastResult"]["state"] = "5"
    assert _events(doc)[0]["event_id"] != first


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
RESULT_KEYS = st.sampled_from(["state", "com", "nu", "data", "message", "ischeck", "condition", "status"])
STEP = st.dictionaries(st.sampled_from(["time", "ftime", "context", "status", "areaCode"]), JSON, max_size=5)
RESULT = st.dictionaries(RESULT_KEYS, JSON | st.lists(STEP, max_size=3), max_size=8)
PARAM = st.dictionaries(st.sampled_from(["status", "message", "lastResult", "autoCheck"]), JSON | RESULT, max_size=4)
QUERY = st.dictionaries(st.just("order_id"), JSON | st.sampled_from(["taobao:1", "jd:2,pdd:3", "x:", ":1"]), max_size=1)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["query", "param"]), JSON | PARAM | QUERY | PARAM.map(json.dumps), max_size=2))
def test_arbitrary_json_never_crashes(doc: dict[str, object]) -> None:
    outcome = _run(doc)
    assert (outcome.rejection is None) != (not outcome.orders)
    if outcome.rejection is not None:
        assert outcome.rejection.reason != "INTERNAL_ERROR", outcome.rejection.message
