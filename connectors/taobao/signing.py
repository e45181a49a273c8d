"""Taobao Open Platform (TOP) request signing ("签名算法").

As documented by TOP:

1. take every request parameter, system and business, except ``sign`` and byte[]/file
   parameters, sorted by parameter name in ASCII order;
2. concatenate name and value of each: ``bar2foo1foo_bar3foobar4``;
3. digest the UTF-8 bytes: ``md5``: ``MD5(secret + s + secret)``; ``hmac``:
   ``HMAC_MD5(key=secret, s)``; ``hmac-sha256``: ``HMAC_SHA256(key=secret, s)``;
4. hex, upper case.

Like the official SDKs (``areNotEmpty(key, value)``) parameters whose value is empty or
absent are left out: they are not sent either, so both sides must skip them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGN_METHODS: tuple[str, ...] = ("md5", "hmac", "hmac-sha256")

ParamValue = str | int | bool | bytes | bytearray | None


def _text(value: ParamValue) -> str | None:
    """The value as sent on the wire; None for values that do not take part."""
    if value is None or isinstance(value, (bytes, bytearray)):
        return None  # absent, or a byte[] (file) parameter: excluded by the algorithm
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text or None


def string_to_sign(params: Mapping[str, ParamValue]) -> str:
    """Sorted name+value concatenation of every parameter that is signed."""
    parts = []
    for name in sorted(params):  # str sort = code point order = ASCII order for names
        if name == "sign" or not name:
            continue
        text = _text(params[name])
        if text is not None:
            parts.append(name + text)
    return "".join(parts)


def sign(params: Mapping[str, ParamValue], secret: str, method: str = "md5") -> str:
    """The ``sign`` value for ``params`` (upper-case hex)."""
    data = string_to_sign(params).encode("utf-8")
    key = secret.encode("utf-8")
    if method == "md5":
        digest = hashlib.md5(key + data + key).hexdigest()
    elif method == "hmac":
        digest = hmac.new(key, data, hashlib.md5).hexdigest()
    elif method == "hmac-sha256":
        digest = hmac.new(key, data, hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown TOP sign_method {method!r}; known: {', '.join(SIGN_METHODS)}")
    return digest.upper()


def verify(params: Mapping[str, ParamValue], secret: str) -> bool:
    """Whether ``params['sign']`` is right for ``params['sign_method']`` (default md5)."""
    given = params.get("sign")
    method = _text(params.get("sign_method")) or "md5"
    if not isinstance(given, str) or method not in SIGN_METHODS:
        return False
    expected = sign(params, secret, method)
    return hmac.compare_digest(expected, given.upper())
