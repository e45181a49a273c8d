"""Pinduoduo open platform (拼多多开放平台) request signing.

As documented in the PDD access guide (接入指南, part 3 "签名算法"):

1. every request parameter except ``sign`` - the common ones ``type``, ``client_id``,
   ``access_token``, ``timestamp`` (unix seconds), ``data_type`` and every business parameter -
   sorted by name in ASCII order;
2. concatenate name and value of each (no separators);
3. ``sign = UPPER(HEX(MD5(client_secret + s + client_secret)))`` over the UTF-8 bytes.

Parameters without a value are neither sent nor signed (as in the official SDK), so both
sides skip them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

ParamValue = str | int | bool | None


def _text(value: ParamValue) -> str | None:
    if value is None:
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text or None


def string_to_sign(params: Mapping[str, ParamValue]) -> str:
    """Sorted name+value concatenation of every signed parameter."""
    parts = []
    for name in sorted(params):
        if name == "sign" or not name:
            continue
        text = _text(params[name])
        if text is not None:
            parts.append(name + text)
    return "".join(parts)


def sign(params: Mapping[str, ParamValue], client_secret: str) -> str:
    """The ``sign`` value for ``params`` (upper-case hex MD5)."""
    data = (client_secret + string_to_sign(params) + client_secret).encode("utf-8")
    return hashlib.md5(data).hexdigest().upper()


def verify(params: Mapping[str, ParamValue], client_secret: str) -> bool:
    """Whether ``params['sign']`` is right (case-insensitive, constant time)."""
    given = params.get("sign")
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(sign(params, client_secret), given.upper())
