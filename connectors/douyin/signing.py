"""抖店开放平台 signatures: API requests and message pushes.

API requests (the official SDKs' ``Sign``; 抖店 "签名算法" guide): the string
``"app_key" + app_key + "method" + method + "param_json" + param_json + "timestamp" +
timestamp + "v" + v``, wrapped in the app secret on both sides, digested as hex MD5
(``sign_method=md5``, the default) or hex HMAC-SHA256 keyed with the app secret
(``sign_method=hmac-sha256``, what the official Go SDK sends). ``param_json`` is the business
parameters as JSON with keys sorted (at every level), no spaces and no ASCII/HTML escaping -
the very string sent as the request body. System parameters (``app_key``, ``method``,
``access_token``, ``timestamp``, ``v=2``, ``sign``, ``sign_method``) go in the query string.

Message pushes (消息推送): the body is a JSON array of ``{"tag", "msg_id", "data"}`` messages;
header ``app-id`` is the app key and ``event-sign`` is hex MD5 of ``app_key + raw body +
app_secret``, as implemented by the open-source 抖店 SDKs (e.g. the Go ``doudian_message``
package's ``VerifySign`` and the ``doudian`` PyPI package's ``callback``). Uncertainty: the
official message-push guide (op.jinritemai.com/docs/guide-docs/215/1977) could not be read
directly here; the brief's "sha1 of secret+body" matches neither SDK, and no source seen
documents an HMAC-SHA256 variant for pushes, so only the MD5 form is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGN_METHODS = ("md5", "hmac-sha256")
EVENT_SIGN_HEADER = "event-sign"
APP_ID_HEADER = "app-id"


def param_json(params: Mapping[str, Any]) -> str:
    """Business parameters as 抖店 signs and sends them."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def string_to_sign(app_key: str, method: str, param_json_text: str, timestamp: int | str, v: str = "2") -> str:
    return f"app_key{app_key}method{method}param_json{param_json_text}timestamp{timestamp}v{v}"


def api_sign(
    app_key: str,
    app_secret: str,
    method: str,
    param_json_text: str,
    timestamp: int | str,
    *,
    v: str = "2",
    sign_method: str = "md5",
) -> str:
    """The ``sign`` query parameter (lower-case hex)."""
    pattern = (app_secret + string_to_sign(app_key, method, param_json_text, timestamp, v) + app_secret).encode()
    if sign_method == "md5":
        return hashlib.md5(pattern).hexdigest()
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode(), pattern, hashlib.sha256).hexdigest()
    raise ValueError(f"unknown 抖店 sign_method {sign_method!r}; known: {', '.join(SIGN_METHODS)}")


def verify_api_sign(
    given: str | None,
    app_key: str,
    app_secret: str,
    method: str,
    param_json_text: str,
    timestamp: int | str,
    *,
    v: str = "2",
    sign_method: str = "md5",
) -> bool:
    if not given or sign_method not in SIGN_METHODS:
        return False
    expected = api_sign(app_key, app_secret, method, param_json_text, timestamp, v=v, sign_method=sign_method)
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))


def push_sign(app_key: str, app_secret: str, body: bytes) -> str:
    """The ``event-sign`` header of a push of ``body`` (lower-case hex MD5)."""
    return hashlib.md5(app_key.encode() + body + app_secret.encode()).hexdigest()


def verify_push(app_key: str, app_secret: str, body: bytes, event_sign: str | None) -> bool:
    """Whether ``event_sign`` is right for ``body`` (constant-time comparison)."""
    if not event_sign:
        return False
    expected = push_sign(app_key, app_secret, body).encode()
    return hmac.compare_digest(expected, event_sign.strip().lower().encode("utf-8", "replace"))
