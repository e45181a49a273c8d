"""The Kuaidi100 push spec without a broker: form parsing, the envelope, dedup id and key, and the
generic receiver (a fake publisher whose acknowledgements the test controls) refusing or
deduplicating every hostile request. The same on the real broker: test_carrier_live.py."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from yarl import URL

from connectors.carrier.push import (
    FAIL_BODY,
    SUCCESS_BODY,
    CarrierPush,
    envelope,
    make_spec,
    order_reference,
    push_id,
    read_form,
)
from connectors.carrier.signing import push_sign
from connectors.carrier.simulator import kuaidi100_success
from connectors.publish import RecordAck
from connectors.registry import plugin
from connectors.scenario.payloads import carrier_push, dumps, make_identity
from connectors.webhook import BadRequest, WebhookMetrics, WebhookReceiver
from ordertwin.errors import ConfigError
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from streams.normalise.model import INVALID_VALUE, MISSING_FIELD
from tests.connectors.test_webhook_receiver import FakePublisher
from tests.helpers import CODEC, FP, raw_record

SALT = "kd100-dev-salt"  # Settings() default
T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
ORDER = "taobao:3987215540123456829"


def _param(state: str = "0") -> str:
    """A scenario-shaped param text (what Kuaidi100 posts) for one order."""
    o = make_identity(0, T0, random.Random(7), set())
    trace = [("1", T0 + timedelta(hours=1)), ("0", T0 + timedelta(hours=5))]
    if state == "3":
        trace.append(("3", T0 + timedelta(hours=30)))
    doc = carrier_push(o, trace, address=o.addresses[0])
    return str(doc["param"])


PARAM = _param()


def form(param: str, *, sign: str | None = None, salt: str = SALT) -> bytes:
    return urlencode({"param": param, "sign": push_sign(param, salt) if sign is None else sign}).encode()


# --- pure parts -------------------------------------------------------------------------------


def test_envelope_is_byte_identical_to_the_scenario_payload() -> None:
    o = make_identity(3, T0, random.Random(1), set())
    doc = carrier_push(o, [("1", T0), ("0", T0 + timedelta(hours=2))], address=o.addresses[0])
    assert envelope(o.order_id, doc["param"]) == dumps(doc)
    assert json.loads(envelope(None, "x")) == {"query": {}, "param": "x"}


def test_form_is_decoded_exactly() -> None:
    tricky = '{"context":"a+b & c=d 中文 %41","nu":"SF1"}'
    assert read_form(form(tricky, sign="ABC")) == (tricky, "ABC")
    assert read_form(b"param=x+y%2Bz") == ("x y+z", None)  # '+' is a space in a form, %2B a plus
    assert read_form(b"sign=S&param=") == ("", "S")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"sign=ABC",  # no param
        b"param=a&param=b&sign=ABC",  # which param was signed?
        b"param=a&sign=A&sign=B",
        b"param=a&&sign=b",  # not a form
        b"param=%FF%FE&sign=A",  # percent-encoded bytes that are not UTF-8
        "param=中文".encode("gbk"),  # raw bytes that are not UTF-8
        b"&".join(b"f%d=1" % i for i in range(40)) + b"&param=a",  # too many fields
    ],
)
def test_unreadable_forms_are_bad_requests(body: bytes) -> None:
    with pytest.raises(BadRequest):
        read_form(body)


def test_order_reference_comes_from_the_callback_url() -> None:
    base = "http://hook/webhooks/carrier"
    assert order_reference(f"{base}?order_id={quote(ORDER)}") == ORDER
    assert order_reference(f"{base}?order_id=taobao:1,jd:2&x=1") == "taobao:1,jd:2"
    assert order_reference(f"{base}?order_id=+taobao:1+") == "taobao:1"
    assert order_reference(base) is None
    assert order_reference(f"{base}?order_id=") is None
    with pytest.raises(BadRequest):
        order_reference(f"{base}?order_id=taobao:1&order_id=taobao:2")


def test_dedup_id_is_the_param_text_and_ignores_the_url() -> None:
    a = CarrierPush(PARAM, ORDER)
    assert a.event_id == push_id(PARAM) == CarrierPush(PARAM, "taobao:1").event_id
    assert CarrierPush(_param("3"), ORDER).event_id != a.event_id
    assert len(a.event_id) == 64


def test_empty_salt_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        make_spec(Settings(carrier_salt=""))


def test_plugin_is_push_only() -> None:
    found = plugin("carrier")
    assert found.mode == "webhook" and found.page_source is None
    assert found.start_simulator is not None and found.start_scenario_simulator is not None


# --- through the receiver -------------------------------------------------------------------------


@dataclass
class Harness:
    receiver: WebhookReceiver
    publisher: FakePublisher
    url: URL
    http: aiohttp.ClientSession

    def sample(self, outcome: str) -> float:
        return self.receiver.metrics.value("ordertwin_webhook_requests_total", source="carrier", outcome=outcome)

    async def post(self, body: bytes, *, order_id: str | None = ORDER) -> tuple[int, bytes]:
        url = self.url.update_query(order_id=order_id) if order_id is not None else self.url
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
        async with self.http.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.read()


async def _harness(publisher: FakePublisher, *, ack_timeout: float = 0.3) -> AsyncIterator[Harness]:
    spec = make_spec(Settings())
    receiver = WebhookReceiver(
        spec,
        publisher,
        topic="raw.carrier",
        metrics=WebhookMetrics(CollectorRegistry()),
        max_body_bytes=4096,
        ack_timeout=ack_timeout,
    )
    server = TestServer(receiver.app())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Harness(receiver, publisher, server.make_url(spec.route), http)
    finally:
        await server.close()


@pytest.fixture
async def carrier() -> AsyncIterator[Harness]:
    async for h in _harness(FakePublisher()):
        yield h


def _normalise(value: bytes, key: bytes | None) -> tuple[str | None, int]:
    outcome = normalise_record(raw_record("carrier", value, key=key), codec=CODEC, fingerprint=FP, max_bytes=10**6)
    return (outcome.rejection.reason if outcome.rejection else None), len(outcome.orders)


async def test_accepted_push_publishes_the_envelope_keyed_by_order(carrier: Harness) -> None:
    status, answer = await carrier.post(form(PARAM))
    assert (status, answer) == (200, SUCCESS_BODY)
    assert kuaidi100_success(status, answer)
    assert json.loads(answer) == {"result": True, "returnCode": "200", "message": "成功"}
    [(topic, key, value, delivery_id)] = carrier.publisher.records
    assert (topic, key, delivery_id) == ("raw.carrier", ORDER.encode(), push_id(PARAM))
    assert value == envelope(ORDER, PARAM)
    assert json.loads(value)["param"] == PARAM  # the exact signed text travels on
    assert _normalise(value, key) == (None, 1)
    assert carrier.receiver.last_heard is not None


async def test_merged_parcel_keeps_its_whole_reference(carrier: Harness) -> None:
    ref = "taobao:3987215540123456829,taobao:3987215540123456830"
    assert (await carrier.post(form(PARAM), order_id=ref))[0] == 200
    [(_, key, value, _)] = carrier.publisher.records
    assert key == ref.encode() and _normalise(value, key) == (None, 2)


async def test_retry_and_replay_are_deduplicated(carrier: Harness) -> None:
    assert (await carrier.post(form(PARAM)))[0] == 200
    # Kuaidi100's retry of the same push (answer lost on the way back): acknowledged, not republished.
    assert await carrier.post(form(PARAM)) == (200, SUCCESS_BODY)
    # A captured push replayed with another order in the (unsigned) callback URL: same param text,
    # a duplicate - never published under the forged order.
    assert await carrier.post(form(PARAM), order_id="taobao:1111111111111111111") == (200, SUCCESS_BODY)
    assert await carrier.post(form(PARAM), order_id=None) == (200, SUCCESS_BODY)
    assert len(carrier.publisher.records) == 1 and carrier.publisher.records[0][1] == ORDER.encode()
    assert carrier.sample("accepted") == 1 and carrier.sample("duplicate") == 3
    # The next state of the waybill is a new push.
    assert (await carrier.post(form(_param("3"))))[0] == 200
    assert len(carrier.publisher.records) == 2


async def test_forged_and_tampered_pushes_are_refused(carrier: Harness) -> None:
    refused = [
        form(PARAM, salt="guessed-salt"),  # signed with another salt
        form(PARAM, sign=""),
        form(PARAM, sign=push_sign(PARAM, "")),  # unsalted MD5: what anyone could compute
        urlencode({"param": PARAM}).encode(),  # no sign at all
        # param altered after signing: the state moved to 签收 under the original sign
        form(PARAM.replace('"state": "0"', '"state": "3"'), sign=push_sign(PARAM, SALT)),
        form(PARAM.replace('"com": ', '"com":  '), sign=push_sign(PARAM, SALT)),  # whitespace only
    ]
    assert '"state": "0"' in PARAM and '"com": ' in PARAM  # the tampering above did change the text
    for body in refused:
        assert await carrier.post(body) == (401, FAIL_BODY)
    assert not kuaidi100_success(401, FAIL_BODY)  # so Kuaidi100 would retry a genuine one
    assert carrier.publisher.records == [] and len(carrier.receiver.dedup) == 0
    assert carrier.sample("bad_signature") == len(refused)
    assert carrier.receiver.metrics.value("ordertwin_webhook_signature_failures_total", source="carrier") == len(
        refused
    )
    assert carrier.receiver.last_heard is None  # a forger does not keep the source vouched for


async def test_unreadable_requests_are_400(carrier: Harness) -> None:
    bad = [
        b"param=a&param=b&sign=" + push_sign("a", SALT).encode(),
        json.dumps({"param": PARAM, "sign": push_sign(PARAM, SALT)}).encode(),  # JSON, not a form
        b"param=%FF&sign=x",
    ]
    for body in bad:
        assert await carrier.post(body) == (400, FAIL_BODY)
    url_twice = carrier.url.with_query([("order_id", "taobao:1"), ("order_id", "taobao:2")])
    async with carrier.http.post(url_twice, data=form(PARAM)) as resp:
        assert resp.status == 400
    assert carrier.publisher.records == [] and carrier.sample("bad_request") == 4


async def test_oversize_body_is_refused_before_anything_else(carrier: Harness) -> None:
    big = PARAM.replace('"message": ""', '"message": "' + "x" * 5000 + '"')
    assert await carrier.post(form(big)) == (413, FAIL_BODY)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streamed
        for _ in range(10):
            yield b"param=" + b"x" * 1000

    async with carrier.http.post(carrier.url, data=chunks()) as resp:
        assert resp.status == 413
    assert carrier.publisher.records == [] and carrier.sample("too_large") == 2


async def test_signed_but_unattributable_pushes_reach_the_dead_letter_not_the_void(carrier: Harness) -> None:
    # No order_id in the callback URL: published without key, the normaliser rejects it.
    assert (await carrier.post(form(PARAM), order_id=None))[0] == 200
    # A param that is not JSON, correctly signed: published, rejected INVALID_VALUE.
    assert (await carrier.post(form("status=polling&lastResult=")))[0] == 200
    (_, key1, value1, _), (_, key2, value2, _) = carrier.publisher.records
    assert key1 is None and json.loads(value1)["query"] == {}
    assert _normalise(value1, key1) == (MISSING_FIELD, 0)
    assert _normalise(value2, key2) == (INVALID_VALUE, 0)


async def test_no_kafka_ack_is_a_failure_answer_and_the_retry_is_not_a_second_record() -> None:
    publisher = FakePublisher(auto_ack=False)
    async for h in _harness(publisher, ack_timeout=0.3):
        status, answer = await h.post(form(PARAM))
        assert (status, answer) == (503, FAIL_BODY) and not kuaidi100_success(status, answer)
        publisher.futures[0].set_result(RecordAck("raw.carrier", 0, 0))
        await asyncio.sleep(0.05)
        assert await h.post(form(PARAM)) == (200, SUCCESS_BODY)
        assert len(publisher.records) == 1
        assert h.sample("kafka_unavailable") == 1 and h.sample("duplicate") == 1
