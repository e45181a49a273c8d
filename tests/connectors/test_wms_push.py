"""The WMS (奇门) receiver spec without a broker: parsing, key and dedup id; the security paths
through the generic receiver with a fake publisher; and the push-only vouching rule."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from yarl import URL

from connectors.errors import PublishError
from connectors.publish import RawPublisher, RecordAck
from connectors.registry import plugin
from connectors.webhook import WebhookMetrics, WebhookReceiver, push_vouch, vouch_for_pushes
from connectors.wms import signing
from connectors.wms.push import (
    ERROR_BODY,
    OK_BODY,
    PUSHED_METHODS,
    call_key,
    event_id_of,
    make_spec,
    parse_call,
    qimen_time,
    render_envelope,
    short_method,
)
from ordertwin.settings import Settings
from streams.normalise.core import normalise_record
from streams.normalise.model import RawRecord
from streams.normalise.sources import wms as wms_normaliser
from tests.helpers import CODEC, FP

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wms"
NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
SETTINGS = Settings()
SECRET = SETTINGS.wms_app_secret.get_secret_value()


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return doc


def body_of(name: str) -> bytes:
    return json.dumps(fixture(name)["request"], ensure_ascii=False, separators=(",", ":")).encode()


def params_for(method: str, *, timestamp: str = "2026-11-11 09:59:30", **extra: str) -> dict[str, str]:
    return {
        "method": f"taobao.qimen.{method}",
        "timestamp": timestamp,
        "format": "json",
        "v": "2.0",
        "customerId": SETTINGS.wms_customer_id,
        "app_key": SETTINGS.wms_app_key,
        "sign_method": "md5",
        **extra,
    }


def url_for(base: str, params: dict[str, str], body: bytes, *, secret: str = SECRET) -> URL:
    return URL(f"{base}?{signing.signed_query(params, body, secret)}", encoded=True)


# --- the call, parsed ------------------------------------------------------------------------


def test_envelope_is_the_normalisers_shape_with_the_body_byte_for_byte() -> None:
    body = b'  {"order":{"orderCode":"DO1"},  "process":{"processStatus":"ACCEPT"}}\n'
    params = {**params_for("orderprocess.report"), "sign": "X", "extra": "y"}
    call = parse_call(f"http://h/webhooks/wms?{signing.signed_query(params, body, SECRET)}", body)
    envelope = call.envelope()
    assert envelope == (
        b'{"method":"taobao.qimen.orderprocess.report","timestamp":"2026-11-11 09:59:30","format":"json",'
        b'"v":"2.0","customerId":"ot-dev-customer","app_key":"qimen-dev-app-key","sign_method":"md5",'
        b'"request":{"order":{"orderCode":"DO1"},  "process":{"processStatus":"ACCEPT"}}}'
    )
    assert json.loads(envelope)["request"] == json.loads(body)
    assert call.method == "orderprocess.report" and call.sent_at == NOW - timedelta(seconds=30)


@pytest.mark.parametrize(
    "name",
    [
        "deliveryorder_confirm_delivered.json",
        "orderprocess_package.json",
        "returnorder_confirm_thrk.json",
        "stockchange_every_type.json",
        "inventory_report_check.json",
    ],
)
def test_fixture_calls_round_trip_to_records_the_normaliser_accepts(name: str) -> None:
    doc = fixture(name)
    body = body_of(name)
    params = {k: str(v) for k, v in doc.items() if k != "request"}
    call = parse_call(f"http://h/w?{signing.signed_query(params, body, SECRET)}", body)
    assert json.loads(call.envelope()) == doc  # the fixture itself, order and all
    raw = RawRecord("wms", "raw.wms", 0, 0, call_key(call), call.envelope())
    outcome = normalise_record(raw, codec=CODEC, fingerprint=FP, max_bytes=1_000_000)
    assert outcome.rejection is None and (outcome.orders or outcome.inventory)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("deliveryorder_confirm_delivered.json", b"DO2026111100004"),
        ("orderprocess_package.json", b"DO2026111101005"),
        ("returnorder_confirm_thrk.json", b"DO2026111100099"),  # the original delivery order
        ("stockchange_every_type.json", b"DOC-JYCK-000"),
        ("inventory_report_check.json", b"PD20261110"),
    ],
)
def test_key_is_the_erp_document(name: str, key: bytes) -> None:
    body = body_of(name)
    method = short_method(fixture(name)["method"])
    call = parse_call(f"http://h/w?{signing.signed_query(params_for(method), body, SECRET)}", body)
    assert call_key(call) == key


def test_key_falls_back_and_is_none_without_a_document() -> None:
    def key(method: str, request: dict[str, Any]) -> bytes | None:
        body = json.dumps(request).encode()
        return call_key(parse_call(f"http://h/w?{signing.signed_query(params_for(method), body, SECRET)}", body))

    assert key("returnorder.confirm", {"returnOrder": {"returnOrderCode": "RO9"}}) == b"RO9"
    assert key("stockchange.report", {"items": [{"orderCode": "CG1"}]}) == b"CG1"
    assert key("stockchange.report", {"items": {"item": {"orderCode": "CG2"}}}) == b"CG2"
    assert key("deliveryorder.confirm", {"deliveryOrder": {"deliveryOrderCode": ""}}) is None
    assert key("stockchange.report", {"items": []}) is None


def test_event_id_is_method_and_body_not_timestamp_or_signature() -> None:
    body = body_of("orderprocess_package.json")
    first = parse_call(f"http://h/w?{signing.signed_query(params_for('orderprocess.report'), body, SECRET)}", body)
    later = params_for("orderprocess.report", timestamp="2026-11-11 09:59:59")
    again = parse_call(f"http://h/w?{signing.signed_query(later, body, SECRET)}", body + b"\n")
    assert first.event_id == again.event_id == event_id_of("orderprocess.report", body)
    assert first.event_id.startswith("orderprocess.report:")
    assert event_id_of("taobao.qimen.orderprocess.report", body) == first.event_id  # prefix or not
    assert event_id_of("deliveryorder.confirm", body) != first.event_id
    assert event_id_of("orderprocess.report", body.replace(b"PACKAGE", b"WEIGH")) != first.event_id


@pytest.mark.parametrize(
    ("query", "body", "reason"),
    [
        ({"format": "xml"}, b"<request/>", "format 'xml'"),
        ({"format": ""}, b"{}", "xml \\(the default\\)"),
        ({"method": ""}, b"{}", "'method' is missing"),
        ({"timestamp": " "}, b"{}", "'timestamp' is missing"),
        ({}, b"[1, 2]", "JSON list, not an object"),
        ({}, b"{broken", "Expecting property name"),
        ({}, '{"a":"仓"}'.encode("gbk"), "not UTF-8"),
    ],
)
def test_unreadable_calls_are_refused_with_the_reason(query: dict[str, str], body: bytes, reason: str) -> None:
    params = {**params_for("orderprocess.report"), **query}
    with pytest.raises(ValueError, match=reason):
        parse_call(f"http://h/w?{signing.signed_query(params, body, SECRET)}", body)


def test_qimen_time_is_beijing_time() -> None:
    assert qimen_time("2026-11-11 10:00:00") == NOW
    with pytest.raises(ValueError, match="does not match format"):
        qimen_time("2026-11-11T10:00:00Z")


def test_published_methods_are_exactly_the_pushed_ones_the_normaliser_maps() -> None:
    mapped = set(wms_normaliser.WMS_ORDER_MESSAGE) | set(wms_normaliser.WMS_STOCK_MESSAGE)
    assert mapped - PUSHED_METHODS == {"deliveryorder.query", "inventory.query"}  # ERP -> WMS queries
    assert mapped >= PUSHED_METHODS


def test_render_envelope_skips_absent_parameters() -> None:
    assert render_envelope({"method": "m"}, b"{}") == b'{"method":"m","request":{}}'
    assert render_envelope({}, b"{}") == b'{"request":{}}'


def test_plugin_declares_a_push_only_source() -> None:
    found = plugin("wms")
    assert found.mode == "webhook" and found.page_source is None
    assert found.start_simulator is not None and found.start_scenario_simulator is not None
    assert make_spec(SETTINGS).route == "/webhooks/wms"


# --- through the receiver --------------------------------------------------------------------


@dataclass
class FakePublisher:
    records: list[tuple[str, bytes | None, bytes, str | None]] = field(default_factory=list)

    def submit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Any = None,
        *,
        received_at: datetime | None = None,
        delivery_id: str | None = None,
    ) -> concurrent.futures.Future[RecordAck]:
        future: concurrent.futures.Future[RecordAck] = concurrent.futures.Future()
        self.records.append((topic, key, value, delivery_id))
        future.set_result(RecordAck(topic, 0, len(self.records) - 1))
        return future


@dataclass
class Harness:
    receiver: WebhookReceiver
    publisher: FakePublisher
    base: str
    http: aiohttp.ClientSession

    def sample(self, outcome: str) -> float:
        return self.receiver.metrics.value("ordertwin_webhook_requests_total", source="wms", outcome=outcome)

    async def call(
        self,
        method: str,
        body: bytes,
        *,
        params: dict[str, str] | None = None,
        secret: str = SECRET,
        url: URL | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        target = url or url_for(self.base, params or params_for(method), body, secret=secret)
        h = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        async with self.http.post(target, data=body, headers=h) as resp:
            return resp.status, await resp.read()


@pytest.fixture
async def wms() -> AsyncIterator[Harness]:
    spec = make_spec(SETTINGS)
    publisher = FakePublisher()
    receiver = WebhookReceiver(
        spec,
        publisher,
        topic="raw.wms",
        metrics=WebhookMetrics(CollectorRegistry()),
        max_body_bytes=8192,
        ack_timeout=1.0,
        clock=lambda: NOW,
    )
    server = TestServer(receiver.app())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Harness(receiver, publisher, str(server.make_url(spec.route)), http)
    finally:
        await server.close()


DELIVERED = body_of("deliveryorder_confirm_delivered.json")


async def test_a_call_is_published_once_and_answered_in_qimens_shape(wms: Harness) -> None:
    assert await wms.call("deliveryorder.confirm", DELIVERED) == (200, OK_BODY)
    [(topic, key, value, delivery_id)] = wms.publisher.records
    assert topic == "raw.wms" and key == b"DO2026111100004"
    assert delivery_id == event_id_of("deliveryorder.confirm", DELIVERED)
    assert json.loads(value)["request"] == json.loads(DELIVERED)
    assert value.endswith(b'"request":' + DELIVERED + b"}")
    # A replay of the very same request (Qimen redelivery, or an attacker): acknowledged, not republished.
    assert await wms.call("deliveryorder.confirm", DELIVERED) == (200, OK_BODY)
    # A redelivery signed afresh with a later timestamp is the same call.
    later = params_for("deliveryorder.confirm", timestamp="2026-11-11 10:01:00")
    assert (await wms.call("deliveryorder.confirm", DELIVERED, params=later))[0] == 200
    assert len(wms.publisher.records) == 1
    assert wms.sample("accepted") == 1 and wms.sample("duplicate") == 2
    assert wms.receiver.last_heard == NOW


async def test_refusals_publish_nothing(wms: Harness) -> None:
    good = url_for(wms.base, params_for("deliveryorder.confirm"), DELIVERED)
    # Bad signature: another secret, a forged sign, no sign at all.
    assert await wms.call("deliveryorder.confirm", DELIVERED, secret="not-the-secret") == (401, ERROR_BODY)
    forged = {**params_for("deliveryorder.confirm"), "sign": "0" * 32}
    assert (await wms.call("x", DELIVERED, url=URL(f"{wms.base}?{_plain_query(forged)}", encoded=True)))[0] == 401
    unsigned = URL(f"{wms.base}?{_plain_query(params_for('deliveryorder.confirm'))}", encoded=True)
    assert (await wms.call("x", DELIVERED, url=unsigned))[0] == 401
    # Body altered after signing (the signed URL kept), and a parameter altered after signing.
    tampered = DELIVERED.replace(b"ZT7312345700003", b"ZT7399999999999")
    assert (await wms.call("x", tampered, url=good))[0] == 401
    assert (await wms.call("x", DELIVERED, url=good.update_query(method="taobao.qimen.stockchange.report")))[0] == 401
    # Correctly signed, but for another app / customer, or with another sign method.
    for extra in ({"app_key": "other-app"}, {"customerId": "other-customer"}, {"sign_method": "hmac"}):
        assert (await wms.call("deliveryorder.confirm", DELIVERED, params={**params_for("x"), **extra}))[0] == 401
    # Stale (3 days old: a captured call replayed after its id left the dedup window) or from the future.
    old = params_for("deliveryorder.confirm", timestamp="2026-11-08 10:00:00")
    assert (await wms.call("x", DELIVERED, params=old))[0] == 401
    ahead = params_for("deliveryorder.confirm", timestamp="2026-11-11 11:00:00")
    assert (await wms.call("x", DELIVERED, params=ahead))[0] == 401
    # Unreadable: a timestamp in another format, XML, a repeated parameter, not JSON.
    odd = params_for("deliveryorder.confirm", timestamp="2026-11-11T10:00:00")
    assert (await wms.call("x", DELIVERED, params=odd))[0] == 400
    xml = b"<request><deliveryOrder/></request>"
    assert await wms.call("x", xml, params={**params_for("deliveryorder.confirm"), "format": "xml"}) == (
        400,
        ERROR_BODY,
    )
    repeated = URL(f"{good}&method=taobao.qimen.inventory.report", encoded=True)
    assert (await wms.call("x", DELIVERED, url=repeated))[0] == 400
    assert (await wms.call("deliveryorder.confirm", b"{not json"))[0] == 400
    # Oversize: refused before anything else.
    big = json.dumps({**json.loads(DELIVERED), "remark": "x" * 9000}).encode()
    assert await wms.call("deliveryorder.confirm", big) == (413, ERROR_BODY)
    assert wms.publisher.records == []
    assert wms.sample("bad_signature") == 8 and wms.sample("stale") == 2
    assert wms.sample("bad_request") == 4 and wms.sample("too_large") == 1
    assert wms.receiver.metrics.value("ordertwin_webhook_signature_failures_total", source="wms") == 8
    assert len(wms.receiver.dedup) == 0
    # Requests whose signature failed do not count as hearing from the platform.
    assert wms.receiver.last_heard is not None  # the correctly signed but stale/unreadable ones did


async def test_unsigned_noise_does_not_count_as_hearing_the_wms(wms: Harness) -> None:
    assert (await wms.call("deliveryorder.confirm", DELIVERED, secret="nope"))[0] == 401
    assert (await wms.call("deliveryorder.confirm", DELIVERED + b"x" * 9000))[0] == 413
    assert wms.receiver.last_heard is None


def _plain_query(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote)


async def test_unmapped_methods_are_acknowledged_not_published(wms: Harness) -> None:
    for method in ("entryorder.confirm", "deliveryorder.batchconfirm", "deliveryorder.query"):
        assert await wms.call(method, b'{"entryOrder":{"entryOrderCode":"E1"}}') == (200, OK_BODY)
    assert wms.publisher.records == [] and wms.sample("ignored") == 3


async def test_gateway_signed_headers_take_part_in_the_signature(wms: Harness) -> None:
    headers = {"top-sign-list": "x-qimen-route", "x-qimen-route": "HZ01"}
    params = params_for("deliveryorder.confirm")
    sign = signing.sign({**signing.header_params(headers), **params}, DELIVERED, SECRET)
    signed = URL(f"{wms.base}?{_plain_query({**params, 'sign': sign})}", encoded=True)
    # The header's name and value are signed: the call as sent passes, an altered header fails.
    assert (await wms.call("x", DELIVERED, url=signed, headers={**headers, "x-qimen-route": "SH03"}))[0] == 401
    assert (await wms.call("x", DELIVERED, url=signed, headers=headers))[0] == 200
    assert len(wms.publisher.records) == 1


async def test_a_publish_failure_is_a_failure_answer_and_the_redelivery_is_published() -> None:
    class Flaky(FakePublisher):
        fail = True

        def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[RecordAck]:
            if self.fail:
                self.fail = False
                raise PublishError("producer queue is full")
            return super().submit(*args, **kwargs)

    spec = make_spec(SETTINGS)
    publisher = Flaky()
    receiver = WebhookReceiver(
        spec, publisher, topic="raw.wms", metrics=WebhookMetrics(CollectorRegistry()), clock=lambda: NOW
    )
    server = TestServer(receiver.app())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            h = Harness(receiver, publisher, str(server.make_url(spec.route)), http)
            assert await h.call("deliveryorder.confirm", DELIVERED) == (503, ERROR_BODY)
            assert await h.call("deliveryorder.confirm", DELIVERED) == (200, OK_BODY)
            assert len(publisher.records) == 1
    finally:
        await server.close()


# --- vouching for a push-only source ----------------------------------------------------------

SLACK = timedelta(seconds=5)
SILENCE = timedelta(seconds=60)


def test_push_vouch_rule() -> None:
    def vouch(last: datetime | None, in_flight: int = 0) -> datetime | None:
        return push_vouch(NOW, last, in_flight, slack=SLACK, silence=SILENCE)

    assert vouch(None) is None  # never heard: nothing to vouch for
    assert vouch(NOW - timedelta(seconds=1)) == NOW - SLACK
    assert vouch(NOW - SILENCE) == NOW - SLACK  # silence is "longer than", not "as long as"
    assert vouch(NOW - SILENCE - timedelta(milliseconds=1)) is None  # gone quiet
    assert vouch(NOW, in_flight=1) is None  # a delivery still on its way to Kafka


@dataclass
class FakeWatermarks:
    published: list[datetime] = field(default_factory=list)
    fail_next: int = 0

    def publish_watermark(self, topic: str, when: datetime) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise PublishError("broker down")
        self.published.append(when)

    async def aflush(self, _flush_timeout: float) -> None:
        return None


async def test_vouching_loop_follows_the_platform_and_stops_when_it_goes_quiet() -> None:
    clock = [NOW]
    receiver = WebhookReceiver(
        make_spec(SETTINGS),
        FakePublisher(),
        topic="raw.wms",
        metrics=WebhookMetrics(CollectorRegistry()),
        clock=lambda: clock[0],
    )
    publisher = FakeWatermarks(fail_next=0)
    settings = SETTINGS.model_copy(
        update={"push_slack_s": 5.0, "push_silence_s": 60.0, "push_watermark_interval_s": 10.0}
    )
    ticks: list[datetime] = []
    script: list[Any] = [
        lambda: None,  # t0: never heard -> nothing
        lambda: setattr(receiver, "last_heard", clock[0]),  # heard at t10
        lambda: setattr(publisher, "fail_next", 1),  # t20: the broker refuses the watermark
        lambda: None,  # t30: retried
        lambda: receiver._inflight.__setitem__("e", asyncio.get_running_loop().create_future()),  # t40
        lambda: receiver._inflight.clear(),  # t50
        lambda: None,  # t60
        lambda: None,  # t70: last heard 60 s ago: still vouching
        lambda: None,  # t80: silent for 70 s > 60 s: no more watermarks
        lambda: None,  # t90
    ]

    async def sleep(seconds: float) -> None:
        ticks.append(clock[0])
        if len(ticks) == len(script):
            raise asyncio.CancelledError
        clock[0] += timedelta(seconds=seconds)
        script[len(ticks)]()

    script[0]()
    with pytest.raises(asyncio.CancelledError):
        await vouch_for_pushes(receiver, cast(RawPublisher, publisher), settings, clock=lambda: clock[0], sleep=sleep)
    t = [NOW + timedelta(seconds=s) for s in range(0, 100, 10)]
    assert publisher.published == [t[1] - SLACK, t[3] - SLACK, t[5] - SLACK, t[6] - SLACK, t[7] - SLACK]
    assert len(ticks) == 10
