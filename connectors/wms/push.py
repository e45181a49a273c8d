"""The WMS's 奇门 (Qimen) calls to the ERP endpoint as a :class:`connectors.webhook.WebhookSpec`.

In the Qimen ERP<->WMS standard the WMS reports to the ERP by calling the ERP's Qimen
endpoint (through the Qimen gateway, which re-signs each call with the ERP app's secret):
``taobao.qimen.deliveryorder.confirm`` (发货单确认), ``orderprocess.report`` (订单流水通知),
``returnorder.confirm`` (退货入库单确认), ``stockchange.report`` (库存异动通知) and
``inventory.report`` (库存盘点通知). Each call is a POST: system parameters in the query
string (``method``, ``timestamp`` in Beijing time, ``format``, ``v``, ``app_key``,
``customerId``, ``sign_method``, ``sign``; see :mod:`connectors.wms.signing`), the business
body in the POST body. The endpoint answers ``{"response": {"flag": "success"|"failure",
"code", "message"}}``; a failed call is redelivered by Qimen, so there is no listing to
reconcile from and the connector is push-only (``mode = "webhook"``).

What is published to ``raw.wms`` is the envelope the normaliser
(``streams/normalise/sources/wms.py``) accepts: the call's system parameters (all but
``sign``, in the order of ``connectors.scenario.payloads._qimen``) and, under ``request``, the
business body *byte for byte as received*. Only ``format=json`` is accepted (Qimen's default
is xml: a missing ``format`` is xml too) and refused with a 400 otherwise.

Freshness: the call's ``timestamp`` (Beijing time) must be within ``webhook_max_age_s`` (and
not ahead by more than the allowed skew). Qimen does not document whether a redelivery keeps
the first attempt's timestamp, so the window is the generic two days rather than TOP's
10-minute API tolerance. Dedup: a Qimen call carries no message id, so the event id is a
hash of the method and the body (``outBizCode``, the WMS's own idempotency code, is in the
body of the confirmations): every redelivery of a call, whatever its timestamp and signature,
is the same event. Kafka key: the ERP document the call is about - ``deliveryOrderCode``
(``order.orderCode`` of a process report, the original ``preDeliveryOrderCode`` of a return,
the first item's ``orderCode`` of a stock change, ``checkOrderCode`` of a stocktake) - so the
facts of one delivery order stay in one partition; a call without one is published with no
key and left to the normaliser to reject.

Other Qimen methods the WMS may call (``entryorder.confirm``, ``stockout.confirm``,
``itemlack.report``, ``sn.report``, the batch ``deliveryorder.batchconfirm``...) carry nothing
ordertwin maps: they are answered success and not published (logged: a WMS configured for
``batchconfirm`` must be switched to single confirmations).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from connectors.webhook import BadRequest, BadSignature, Delivery, Headers, WebhookSpec
from connectors.wms import signing
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "wms"
METHOD_PREFIX = "taobao.qimen."
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
QIMEN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# System parameters kept in the envelope, in the order the scenario's payloads print them.
ENVELOPE_PARAMS: tuple[str, ...] = ("method", "timestamp", "format", "v", "customerId", "app_key", "sign_method")

# The WMS -> ERP calls that carry facts the normaliser maps (WMS_ORDER_MESSAGE / WMS_STOCK_MESSAGE).
PUSHED_METHODS: frozenset[str] = frozenset(
    {
        "deliveryorder.confirm",
        "orderprocess.report",
        "returnorder.confirm",
        "stockchange.report",
        "inventory.report",
    }
)

OK_BODY = b'{"response":{"flag":"success","code":"0","message":"ok"}}'
ERROR_BODY = b'{"response":{"flag":"failure","code":"-1","message":"call not accepted, see the ERP receiver log"}}'


def short_method(method: str) -> str:
    """``taobao.qimen.deliveryorder.confirm`` -> ``deliveryorder.confirm``."""
    return method.strip().removeprefix(METHOD_PREFIX)


def qimen_time(text: str) -> datetime:
    """A Qimen time ('YYYY-MM-DD HH:MM:SS', Beijing time) as an aware datetime."""
    return datetime.strptime(text.strip(), QIMEN_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def event_id_of(method: str, body: bytes) -> str:
    """The dedup id of a call: its method and a SHA-256 of its body (Qimen has no message id)."""
    short = short_method(method)
    digest = hashlib.sha256(short.encode("utf-8") + b"\n" + body).hexdigest()
    return f"{short}:{digest}"


def render_envelope(params: dict[str, str], body: bytes) -> bytes:
    """The raw record: system parameters (no ``sign``) then ``"request":`` + the body bytes."""
    head = ",".join(
        f"{json.dumps(name)}:{json.dumps(params[name], ensure_ascii=False)}"
        for name in ENVELOPE_PARAMS
        if name in params
    )
    return b"{" + head.encode("utf-8") + (b"," if head else b"") + b'"request":' + body + b"}"


@dataclass(frozen=True)
class QimenCall:
    """One verified Qimen call: its system parameters and business body."""

    params: dict[str, str]  # the query parameters, ``sign`` included
    body: bytes  # the business body as received (surrounding whitespace removed)
    request: Any  # the body, parsed

    @property
    def method(self) -> str:
        return short_method(self.params["method"])

    @property
    def sent_at(self) -> datetime:
        return qimen_time(self.params["timestamp"])

    @property
    def event_id(self) -> str:
        return event_id_of(self.params["method"], self.body)

    def envelope(self) -> bytes:
        return render_envelope(self.params, self.body)


def parse_call(url: str, raw: bytes) -> QimenCall:
    """The call in a request (ValueError with the reason when it is not a JSON Qimen call)."""
    params = signing.query_params(url)
    for name in ("method", "timestamp"):
        if not params.get(name, "").strip():
            raise ValueError(f"system parameter {name!r} is missing")
    fmt = params.get("format", "").strip().lower()
    if fmt != "json":
        raise ValueError(
            f"format {fmt or 'xml (the default)'!r} is not supported: configure the Qimen app for format=json"
        )
    body = raw.strip()
    try:
        request = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError("the body is not UTF-8") from exc
    if not isinstance(request, dict):
        raise ValueError(f"the body is JSON {type(request).__name__}, not an object")
    return QimenCall(params, body, request)


def _text(doc: Any, *path: str) -> str | None:
    for name in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(name)
    if isinstance(doc, bool) or not isinstance(doc, (str, int)):
        return None
    text = str(doc).strip()
    return text or None


def _first_item(request: dict[str, Any]) -> Any:
    items = request.get("items")
    if isinstance(items, dict):  # {"items": {"item": [...]}} (XML-shaped JSON)
        items = items.get("item")
    if isinstance(items, dict):
        return items
    return items[0] if isinstance(items, list) and items else None


def call_key(call: QimenCall) -> bytes | None:
    """The ERP document the call is about (see the module docstring), or None."""
    r = call.request
    found = {
        "deliveryorder.confirm": lambda: _text(r, "deliveryOrder", "deliveryOrderCode"),
        "orderprocess.report": lambda: _text(r, "order", "orderCode"),
        "returnorder.confirm": lambda: (
            _text(r, "returnOrder", "preDeliveryOrderCode") or _text(r, "returnOrder", "returnOrderCode")
        ),
        "stockchange.report": lambda: _text(_first_item(r), "orderCode"),
        "inventory.report": lambda: _text(r, "checkOrderCode"),
    }.get(call.method, lambda: None)()
    return found.encode("utf-8") if found else None


def make_spec(settings: Settings, _http: aiohttp.ClientSession | None = None) -> WebhookSpec:
    """The WMS receiver's spec, for ``settings.wms_app_key`` / ``wms_customer_id`` / ``wms_app_secret``."""
    secret = settings.wms_app_secret.get_secret_value()
    app_key = settings.wms_app_key
    customer_id = settings.wms_customer_id

    def verify(headers: Headers, raw: bytes, url: str) -> None:
        try:
            params = signing.query_params(url)
        except ValueError as exc:
            raise BadRequest(f"wms: unreadable query string ({exc})") from exc
        given = params.get(signing.SIGN)
        if not given:
            raise BadSignature("wms: the call has no sign")
        method = params.get("sign_method", signing.SIGN_METHOD).strip().lower()
        if method != signing.SIGN_METHOD:
            raise BadSignature(f"wms: sign_method {method!r:.20} is not md5")
        if params.get("app_key") != app_key:
            raise BadSignature(f"wms: app_key {params.get('app_key')!r:.40} is not the configured one")
        if params.get("customerId") != customer_id:
            raise BadSignature(f"wms: customerId {params.get('customerId')!r:.40} is not the configured one")
        if not signing.verify({**signing.header_params(headers), **params}, raw, secret, given):
            raise BadSignature("wms: sign does not match the query parameters and body")

    def parse(_headers: Headers, raw: bytes, url: str) -> QimenCall:
        return parse_call(url, raw)

    def sent_at(_headers: Headers, call: Any) -> datetime | None:
        return call.sent_at if isinstance(call, QimenCall) else None

    def accepts(_headers: Headers, call: Any) -> bool:
        if not isinstance(call, QimenCall):
            return False
        if call.method not in PUSHED_METHODS:
            # A batch confirmation would carry facts we drop: that needs a WMS-side change.
            level = logging.WARNING if "batch" in call.method else logging.INFO
            log.log(level, "wms: Qimen method %r is acknowledged and not published (not mapped)", call.method[:60])
            return False
        return True

    def split(_headers: Headers, call: Any, _raw: bytes) -> list[Delivery]:
        assert isinstance(call, QimenCall)
        return [Delivery(call.event_id, call_key(call), call.envelope())]

    return WebhookSpec(
        source=SOURCE,
        verify=verify,
        event_id=lambda _headers, call: str(call.event_id),
        key=lambda call: call_key(call) if isinstance(call, QimenCall) else None,
        timestamp=sent_at,
        max_age=timedelta(seconds=settings.webhook_max_age_s),
        accepts=accepts,
        split=split,
        parse=parse,
        ok_body=OK_BODY,
        ok_content_type="application/json",
        error_body=ERROR_BODY,
        error_content_type="application/json",
    )
