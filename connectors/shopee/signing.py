"""Shopee Open Platform v2 signatures (API calls and push mechanism).

API calls (Shopee Open Platform developer guide "API calls", section "Signature calculation"):
``sign`` = hex HMAC-SHA256, keyed with the partner key, of the concatenation
``partner_id + api path + timestamp + access_token + shop_id`` for a Shop API (``partner_id +
path + timestamp`` for a Public API), sent as the ``sign`` query parameter together with
``partner_id``, ``timestamp`` (Unix seconds; a request is valid for 5 minutes),
``access_token`` and ``shop_id``.

Pushes (developer guide "Push Mechanism notifications", section "Push Authorization"): the
``Authorization`` request header is hex HMAC-SHA256, keyed with the partner key, of
``callback URL + "|" + raw request body``; Shopee warns not to re-serialise the body
(``json.loads``) before checking. The URL is the callback URL as registered in the console.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

AUTHORIZATION_HEADER = "Authorization"


def _key(partner_key: str | bytes) -> bytes:
    return partner_key.encode("utf-8") if isinstance(partner_key, str) else partner_key


def base_string(
    partner_id: int | str, path: str, timestamp: int, access_token: str = "", shop_id: int | str = ""
) -> str:
    """The string a Shop API (or, without token and shop, Public API) call signs."""
    return f"{partner_id}{path}{timestamp}{access_token}{shop_id}"


def api_sign(
    partner_key: str | bytes,
    partner_id: int | str,
    path: str,
    timestamp: int,
    access_token: str = "",
    shop_id: int | str = "",
) -> str:
    """The ``sign`` query parameter of one API call (lower-case hex)."""
    data = base_string(partner_id, path, timestamp, access_token, shop_id).encode("utf-8")
    return hmac.new(_key(partner_key), data, hashlib.sha256).hexdigest()


def verify_api_sign(
    partner_key: str | bytes,
    given: str | None,
    partner_id: int | str,
    path: str,
    timestamp: int,
    access_token: str = "",
    shop_id: int | str = "",
) -> bool:
    if not given:
        return False
    expected = api_sign(partner_key, partner_id, path, timestamp, access_token, shop_id)
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))


def push_sign(partner_key: str | bytes, url: str, body: bytes) -> str:
    """The ``Authorization`` header of a push of ``body`` to ``url`` (lower-case hex)."""
    return hmac.new(_key(partner_key), url.encode("utf-8") + b"|" + body, hashlib.sha256).hexdigest()


def verify_push(partner_key: str | bytes, url: str, body: bytes, authorization: str | None) -> bool:
    """Whether ``authorization`` signs ``url|body`` (constant-time comparison)."""
    if not authorization:
        return False
    expected = push_sign(partner_key, url, body).encode("ascii")
    return hmac.compare_digest(expected, authorization.strip().lower().encode("utf-8", "replace"))
