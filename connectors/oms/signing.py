"""旺店通旗舰版 (Wangdiantong flagship ERP) open API request signing.

As the 旗舰版 open API documents its public request parameters (every API page, section
"3.2 公共请求参数", e.g. open.wangdian.cn/qjb/open/apidoc/doc?path=sales.TradeQuery.querySelfOrderWithDetail)
and as the official SDK (``WdtErpClient::makeSign``, PHP) and public ports (go-marvis
wangdian-sdk-go ``core.sign``) compute it:

* system parameters ``sid`` (卖家账号), ``key`` (appkey), ``salt``, ``method``, ``v`` (``1.0``),
  ``timestamp`` - **seconds since 2012-01-01 00:00:00 Beijing time**, i.e. Unix time minus
  1325347200, accepted within 120 s of the server's clock - and, for paged calls, ``page_size``,
  ``page_no`` (from 0) and ``calc_total``;
* the appsecret is issued as ``"secret:salt"``: the part before the first colon is the signing
  secret (never sent), the part after it is sent as ``salt``;
* ``body`` is the JSON request body exactly as posted; it is signed as a parameter named
  ``body`` but travels as the HTTP body, not in the query string;
* ``sign = lower(hex(md5(secret + k1 + v1 + k2 + v2 + ... + secret)))`` over every parameter
  but ``sign``, sorted by name (byte order; the names are ASCII), UTF-8.

No example with a published result was found in the reference material, so the unit tests use
vectors computed independently with coreutils ``md5sum`` (tests/connectors/test_oms_signing.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

# "当前时间戳减去 2012-01-01 00:00:00(1325347200)": 2012-01-01 00:00 Beijing time in Unix seconds.
EPOCH_OFFSET = 1325347200
TIMESTAMP_TOLERANCE_S = 120  # "时间与服务器时间差120s内即合法"

ParamValue = str | int


def split_app_secret(app_secret: str) -> tuple[str, str]:
    """``"secret:salt"`` -> ``(secret, salt)``; the salt may itself contain colons."""
    secret, sep, salt = app_secret.partition(":")
    if not sep or not secret or not salt:
        raise ValueError("旺店通 appsecret must look like 'secret:salt'")
    return secret, salt


def wdt_timestamp(moment: datetime) -> int:
    """Aware datetime -> the ``timestamp`` parameter (seconds since 2012-01-01 Beijing time)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return int(moment.timestamp()) - EPOCH_OFFSET


def from_wdt_timestamp(value: int) -> datetime:
    """The ``timestamp`` parameter -> aware UTC datetime."""
    return datetime.fromtimestamp(value + EPOCH_OFFSET, UTC)


def string_to_sign(params: Mapping[str, ParamValue]) -> str:
    """Sorted name+value concatenation of every parameter except ``sign`` (empty values too)."""
    return "".join(name + str(params[name]) for name in sorted(params) if name != "sign")


def sign(params: Mapping[str, ParamValue], secret: str) -> str:
    """The ``sign`` value for ``params`` (which include ``body``): lower-case hex MD5."""
    data = (secret + string_to_sign(params) + secret).encode("utf-8")
    return hashlib.md5(data).hexdigest()


def verify(params: Mapping[str, ParamValue], secret: str) -> bool:
    """Whether ``params['sign']`` is right (case-insensitive hex, compared in constant time)."""
    given = params.get("sign")
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(sign(params, secret).encode("ascii"), given.lower().encode("utf-8", "replace"))
