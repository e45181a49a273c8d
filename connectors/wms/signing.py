"""奇门 (Qimen) request signatures, as the ERP endpoint checks them.

A Qimen call is an HTTP POST whose *system parameters* travel in the URL query string
(``method``, ``timestamp``, ``format``, ``app_key``, ``v``, ``sign``, ``sign_method``,
``customerId``) and whose business body (JSON or XML) is the POST body. The signature, as
documented in 奇门 "签名算法" (reproduced e.g. at https://blog.csdn.net/jiamingku/article/details/80491912:
"按首字母升序排列 ... 连接参数名与参数值, 并在首尾加上 secret ... body 用请求中的 body 内容代替 ...
32 位大写 MD5") and as the TOP SDK's ``com.taobao.api.internal.spi.SpiUtils.checkSign``
computes it on the receiving side::

    sign = HEX_UPPER(MD5(secret + k1 + v1 + k2 + v2 + ... + body + secret))

over every URL query parameter except ``sign`` (plus the headers named in the
``top-sign-list`` header, when the gateway sends one), sorted by name in ASCII order, values
URL-decoded (``+`` is a space, as Java's ``URLDecoder``), the body as the raw bytes received.
Like SpiUtils, a parameter with an empty value still contributes its name. Only ``md5`` is
defined for Qimen calls (SpiUtils computes nothing else); the comparison is constant-time.

Qimen's documented example (secret ``test``; app_key ``testerp_appkey``, customerId
``stub-cust-code``, format ``xml``, method ``taobao.qimen.entryorder.query``, sign_method
``md5``, timestamp ``2015-04-26 00:00:07``, v ``2.0``) shows the string to sign, but not the
body behind its printed MD5, so that final value cannot be reproduced; the unit tests check
the string against the document and the digests against hand-computed vectors (md5sum).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit

SIGN = "sign"
SIGN_METHOD = "md5"
SIGN_LIST_HEADER = "top-sign-list"  # SpiUtils: headers the gateway includes in the signature


def string_to_sign(params: Mapping[str, str]) -> str:
    """Sorted name+value concatenation of every signed parameter (``sign`` left out)."""
    return "".join(name + params[name] for name in sorted(params) if name != SIGN)


def sign(params: Mapping[str, str], body: bytes, secret: str) -> str:
    """The ``sign`` of a call: upper-case hex MD5(secret + params + body + secret)."""
    key = secret.encode("utf-8")
    digest = hashlib.md5(key + string_to_sign(params).encode("utf-8") + body + key)
    return digest.hexdigest().upper()


def verify(params: Mapping[str, str], body: bytes, secret: str, given: str | None) -> bool:
    """Whether ``given`` is the right signature of ``params`` and ``body`` (constant-time)."""
    if not given:
        return False
    expected = sign(params, body, secret).encode("ascii")
    return hmac.compare_digest(expected, given.strip().upper().encode("utf-8", "replace"))


def query_params(url: str) -> dict[str, str]:
    """The URL's query parameters, decoded; ValueError when a name is repeated.

    A repeated parameter is refused rather than resolved: the signature would be checked
    over one value while the other might be used (parameter pollution)."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True, errors="strict"):
        if name in out:
            raise ValueError(f"query parameter {name!r} is repeated")
        out[name] = value
    return out


def header_params(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a ``top-sign-list`` header names, URL-decoded (empty when absent)."""
    listed = headers.get(SIGN_LIST_HEADER) or ""
    out: dict[str, str] = {}
    for name in (n.strip() for n in listed.split(",")):
        if name:
            out[name] = unquote_plus(headers.get(name) or "")
    return out


def signed_query(params: Mapping[str, str], body: bytes, secret: str) -> str:
    """The query string of a call: ``params`` plus their ``sign``, percent-encoded (spaces as %20)."""
    signed = {k: v for k, v in params.items() if k != SIGN}
    signed[SIGN] = sign(signed, body, secret)
    return urlencode(signed, quote_via=quote)
