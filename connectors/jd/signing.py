"""JD JOS (宙斯) request signing.

As documented by JOS ("签名算法", https://jos.jd.com/commondoc?listId=33):

1. every request parameter except ``sign`` - the system parameters ``method``, ``app_key``,
   ``access_token``, ``timestamp``, ``v`` and the business parameters packed as one JSON
   string in ``360buy_param_json`` - sorted by name in ASCII order;
2. concatenate name and value of each (no separators);
3. ``sign = UPPER(HEX(MD5(app_secret + s + app_secret)))`` over the UTF-8 bytes.

Like the official SDKs, parameters with an empty or absent value take no part (they are not
sent either). ``360buy_param_json`` is signed exactly as sent, so the client serialises it
once and signs that very string.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

ParamValue = str | int | None


def _text(value: ParamValue) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text or None


def string_to_sign(params: Mapping[str, ParamValue]) -> str:
    """Sorted name+value concatenation of every signed parameter."""
    parts = []
    for name in sorted(params):  # str order = code point order = ASCII order for names
        if name == "sign" or not name:
            continue
        text = _text(params[name])
        if text is not None:
            parts.append(name + text)
    return "".join(parts)


def sign(params: Mapping[str, ParamValue], secret: str) -> str:
    """The ``sign`` value for ``params`` (upper-case hex MD5)."""
    data = (secret + string_to_sign(params) + secret).encode("utf-8")
    return hashlib.md5(data).hexdigest().upper()


def verify(params: Mapping[str, ParamValue], secret: str) -> bool:
    """Whether ``params['sign']`` is right (compared case-insensitively, in constant time)."""
    given = params.get("sign")
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(sign(params, secret), given.upper())
