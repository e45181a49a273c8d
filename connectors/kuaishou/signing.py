"""Kuaishou e-commerce open platform (快手电商开放平台) request signing.

As documented ("API调用说明", section 4 "签名算法", doc 401853):

1. the signed parameters are ``method``, ``appkey``, ``access_token`` (required) and, when
   present, ``signMethod``, ``version``, ``timestamp`` (ms) and ``param`` (the business JSON,
   exactly as sent) - not ``sign`` and never the secret itself;
2. sorted by name and joined as ``name=value`` with ``&``;
3. ``&signSecret=<signSecret>`` is appended;
4. ``signMethod=MD5``: ``sign = lower-case hex MD5`` of that string;
   ``signMethod=HMAC_SHA256`` (recommended): ``sign = Base64(HMAC_SHA256(key=signSecret, string))``.

Signing happens before URL encoding: the values are signed as they are, not encoded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SIGN_METHODS: tuple[str, ...] = ("MD5", "HMAC_SHA256")
SIGNED: tuple[str, ...] = ("access_token", "appkey", "method", "param", "signMethod", "timestamp", "version")
REQUIRED: tuple[str, ...] = ("method", "appkey", "access_token")

ParamValue = str | int | None


def string_to_sign(params: Mapping[str, ParamValue], secret: str) -> str:
    """``k1=v1&k2=v2...&signSecret=<secret>`` over the signed parameters that are present."""
    for name in REQUIRED:
        if params.get(name) in (None, ""):
            raise ValueError(f"{name} is required to sign a Kuaishou request")
    parts = [f"{name}={params[name]}" for name in sorted(SIGNED) if params.get(name) is not None]
    return "&".join(parts) + "&signSecret=" + secret


def sign(params: Mapping[str, ParamValue], secret: str, method: str = "HMAC_SHA256") -> str:
    data = string_to_sign(params, secret).encode("utf-8")
    if method == "MD5":
        return hashlib.md5(data).hexdigest()
    if method == "HMAC_SHA256":
        return base64.b64encode(hmac.new(secret.encode("utf-8"), data, hashlib.sha256).digest()).decode("ascii")
    raise ValueError(f"unknown Kuaishou signMethod {method!r}; known: {', '.join(SIGN_METHODS)}")


def verify(params: Mapping[str, ParamValue], secret: str) -> bool:
    """Whether ``params['sign']`` is right for ``params['signMethod']`` (default MD5)."""
    given = params.get("sign")
    method = str(params.get("signMethod") or "MD5")
    if not isinstance(given, str) or not given or method not in SIGN_METHODS:
        return False
    try:
        expected = sign(params, secret, method)
    except ValueError:
        return False
    if method == "MD5":
        return hmac.compare_digest(expected, given.lower())
    return hmac.compare_digest(expected, given)
