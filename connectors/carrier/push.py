"""快递100 (Kuaidi100) subscription pushes (订阅推送) as a :class:`connectors.webhook.WebhookSpec`.

A push (the 订阅推送 guide, 回调接口; official SDK ``kuaidi100-api/java-demo``,
``SubscribeWithMap.callBackUrl``) is a form POST ``param=<JSON text>&sign=<MD5(param+salt)>`` to
the ``callbackurl`` given at subscription. ``param`` holds ``status`` (polling / shutdown / abort
/ updateall), ``message``, ``autoCheck``, ``comOld``/``comNew`` and ``lastResult`` (``nu``,
``com``, ``state``, the whole trace ``data[]`` newest first). Kuaidi100 takes a push as
delivered only when the answer is ``{"result":true,"returnCode":"200","message":"成功"}``;
otherwise it retries (the SDK says 3 more times, 35 minutes apart) and it waits at most 20 s
for an answer (FAQ https://api.kuaidi100.com/document/tuisongtimeout).

What we publish is the normaliser's envelope (``streams/normalise/sources/carrier.py``)::

    {"query": {"order_id": "<callback URL's order_id>"}, "param": "<param, exact signed text>"}

as compact UTF-8 JSON - byte for byte what ``connectors.scenario.payloads.carrier_push`` renders.
Kuaidi100 echoes nothing of ours but the callback URL, so the merchant subscribes each waybill
with ``callbackurl=https://<hook>/webhooks/carrier?order_id=<channel>:<order id>[,...]``.

- **Signature**: ``sign`` over the form-decoded ``param`` text with ``settings.carrier_salt``
  (:mod:`connectors.carrier.signing`). The callback URL (hence ``order_id``) is *not* covered
  by the signature - Kuaidi100 signs ``param`` only.
- **Freshness**: a push carries no send time (``param`` has only the trace's own times, which
  may be days old on a legitimate push), so there is no timestamp check. Replays are stopped by
  the signature and the dedup window (``webhook_max_age_s``) only.
- **Dedup id**: SHA-256 of the exact ``param`` text. A Kuaidi100 retry is the same text; a
  replay of a captured push with another ``order_id`` in the URL is the same text too, so it
  is answered as a duplicate and never republished under the forged order.
- **Key**: the order reference (``order_id`` as it stands in the URL; all pushes of a waybill
  share it, so they stay in order on one partition).
- A correctly signed push we cannot attribute (no ``order_id``) or whose ``param`` is not JSON
  is still published: the normaliser rejects it (MISSING_FIELD / INVALID_VALUE) into the
  dead-letter topic, where it is visible and replayable; a 4xx would only make Kuaidi100 retry
  three times and drop it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from connectors.carrier.signing import PARAM_FIELD, SIGN_FIELD, verify_push
from connectors.webhook import BadRequest, BadSignature, Delivery, Headers, WebhookSpec
from ordertwin.errors import ConfigError
from ordertwin.settings import Settings

SOURCE = "carrier"
ORDER_QUERY = "order_id"  # the callback URL's query parameter naming the channel order(s)
MAX_FORM_FIELDS = 16
SUCCESS_BODY = json.dumps({"result": True, "returnCode": "200", "message": "成功"}, ensure_ascii=False).encode()
FAIL_BODY = json.dumps({"result": False, "returnCode": "500", "message": "失败"}, ensure_ascii=False).encode()


@dataclass(frozen=True)
class CarrierPush:
    """One verified push: the exact ``param`` text and the callback URL's order reference."""

    param: str
    order_ref: str | None

    @property
    def event_id(self) -> str:
        return push_id(self.param)

    def envelope(self) -> bytes:
        return envelope(self.order_ref, self.param)


def push_id(param: str) -> str:
    """The dedup id of a push: SHA-256 of its exact ``param`` text."""
    return hashlib.sha256(param.encode("utf-8")).hexdigest()


def envelope(order_ref: str | None, param: str) -> bytes:
    """The record published to ``raw.carrier`` (compact UTF-8 JSON, ``query`` then ``param``)."""
    doc = {"query": {ORDER_QUERY: order_ref} if order_ref else {}, "param": param}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_form(raw: bytes) -> tuple[str, str | None]:
    """``(param, sign)`` of a form body; BadRequest when it is not one readable form with
    exactly one ``param`` (a repeated field is refused: which one was signed would be a guess)."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as exc:  # UnicodeDecodeError, bad field, too many fields
        raise BadRequest(f"carrier: body is not a readable form ({exc})") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    params, signs = fields.get(PARAM_FIELD, []), fields.get(SIGN_FIELD, [])
    if len(params) != 1:
        raise BadRequest(f"carrier: the form has {len(params)} '{PARAM_FIELD}' fields, expected 1")
    if len(signs) > 1:
        raise BadRequest(f"carrier: the form has {len(signs)} '{SIGN_FIELD}' fields")
    return params[0], (signs[0] if signs else None)


def order_reference(url: str) -> str | None:
    """The callback URL's ``order_id`` (None when absent or blank; BadRequest when repeated)."""
    try:
        pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except ValueError as exc:
        raise BadRequest(f"carrier: unreadable callback URL query ({exc})") from None
    values = [v.strip() for k, v in pairs if k == ORDER_QUERY]
    if len(values) > 1:
        raise BadRequest(f"carrier: the callback URL names '{ORDER_QUERY}' {len(values)} times")
    return values[0] if values and values[0] else None


def parse_push(raw: bytes, url: str) -> CarrierPush:
    param, _sign = read_form(raw)
    return CarrierPush(param=param, order_ref=order_reference(url))


def deliveries(push: CarrierPush) -> list[Delivery]:
    """One delivery per push: the envelope, keyed by the order reference."""
    key = push.order_ref.encode("utf-8") if push.order_ref else None
    return [Delivery(event_id=push.event_id, key=key, value=push.envelope())]


def make_spec(settings: Settings, _http: aiohttp.ClientSession | None = None) -> WebhookSpec:
    """The Kuaidi100 receiver's spec, verifying with ``settings.carrier_salt``."""
    salt = settings.carrier_salt.get_secret_value()
    if not salt:
        raise ConfigError("carrier: ORDERTWIN_CARRIER_SALT is empty; an unsalted Kuaidi100 sign is forgeable")

    def verify(_headers: Headers, raw: bytes, _url: str) -> None:
        param, sign = read_form(raw)
        if not verify_push(param, salt, sign):
            raise BadSignature(f"carrier: '{SIGN_FIELD}' does not match MD5(param + salt)")

    def parse(_headers: Headers, raw: bytes, url: str) -> CarrierPush:
        return parse_push(raw, url)

    def not_used(*_: Any) -> Any:
        raise AssertionError("carrier pushes go through split")

    return WebhookSpec(
        source=SOURCE,
        verify=verify,
        event_id=not_used,
        key=not_used,
        split=lambda _headers, body, _raw: deliveries(body),
        parse=parse,
        ok_body=SUCCESS_BODY,
        ok_content_type="application/json",
        error_body=FAIL_BODY,
        error_content_type="application/json",
    )
