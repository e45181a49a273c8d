"""抖店开放平台 client (HTTP only: no Kafka, no cursors).

Calls are POSTs to ``<base>/<method with "." as "/">`` (e.g. ``/order/searchList``) with the
system parameters in the query string and ``param_json`` as the body (see
:mod:`connectors.douyin.signing`); answers are ``{"code": 10000, "msg": "success",
"sub_code", "sub_msg", "log_id", "data": {...}}`` (the official SDKs' base response; any code
but 10000 is a failure).

- ``order.searchList`` (``update_time_start`` / ``update_time_end`` in Unix seconds, ``page``
  from 0, ``size`` <= 100, ``order_by=update_time``, ``order_asc=false``) -> ``data.page``,
  ``data.size``, ``data.total``, ``data.shop_order_list[]``: the shop orders the normaliser
  accepts, published as their exact bytes in the answer.
- ``order.orderDetail`` (``shop_order_id``) -> ``data.shop_order_detail``, the same object for
  one order: what a message push is resolved to.

Error classification (the code table was not available here, so this is deliberately
conservative): HTTP 429, or a ``sub_code``/``sub_msg`` that speaks of a limit (限流, 频率,
"limit"), is a rate limit; HTTP 5xx, code 20000 (服务不可用) and ``isp.*`` sub codes are
transient; everything else (authorisation 3xxxx, parameters and signature 4xxxx, business
5xxxx) is permanent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from connectors.douyin import signing
from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.rawjson import array_items
from ordertwin.settings import Settings

SOURCE = "douyin"
SUCCESS = 10000
SERVICE_UNAVAILABLE = 20000
METHOD_SEARCH_LIST = "order.searchList"
METHOD_ORDER_DETAIL = "order.orderDetail"
MAX_SIZE = 100

_LIMIT_WORDS = ("限流", "频率", "频繁", "limit", "too-many", "too_many")


def unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return int(moment.timestamp())


def order_key(order: Any) -> bytes | None:
    oid = order.get("order_id") if isinstance(order, Mapping) else None
    if isinstance(oid, bool) or not isinstance(oid, (int, str)) or not str(oid).strip():
        return None
    return str(oid).strip().encode("utf-8")


def order_updated(order: Any) -> datetime | None:
    value = order.get("update_time") if isinstance(order, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC)


def classify_error(doc: Mapping[str, Any], *, http_status: int | None = None) -> PlatformError:
    code = doc.get("code")
    sub_code = str(doc.get("sub_code") or "")
    text = f"{doc.get('msg') or 'error'} ({doc.get('sub_msg') or ''}; log_id {doc.get('log_id') or '?'})"
    kw: dict[str, Any] = {"code": str(code), "sub_code": sub_code or None, "http_status": http_status}
    about = f"{sub_code} {doc.get('sub_msg') or ''} {doc.get('msg') or ''}".lower()
    if http_status == 429 or any(word in about for word in _LIMIT_WORDS):
        return RateLimited(SOURCE, text, **kw)
    if code == SERVICE_UNAVAILABLE or sub_code.startswith("isp.") or (http_status or 0) >= 500:
        return TransientError(SOURCE, text, **kw)
    return PermanentError(SOURCE, text, **kw)


@dataclass(frozen=True)
class SearchPage:
    orders: list[Any]
    raw: list[bytes]
    page: int
    size: int
    total: int

    @property
    def has_next(self) -> bool:
        return (self.page + 1) * self.size < self.total


class DouyinClient:
    """Signed 抖店 calls over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        sign_method: str = "hmac-sha256",
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if sign_method not in signing.SIGN_METHODS:
            raise ValueError(f"unknown 抖店 sign_method {sign_method!r}; known: {', '.join(signing.SIGN_METHODS)}")
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self._token = access_token
        self.sign_method = sign_method
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> DouyinClient:
        return cls(
            http,
            base_url=settings.douyin_base_url,
            app_key=settings.douyin_app_key,
            app_secret=settings.douyin_app_secret.get_secret_value(),
            access_token=settings.douyin_access_token.get_secret_value(),
            sign_method=settings.douyin_sign_method,
            timeout=settings.connector_http_timeout_s,
        )

    def system_params(self, method: str, body: str) -> dict[str, str]:
        timestamp = unix(self._clock())
        return {
            "app_key": self.app_key,
            "method": method,
            "access_token": self._token,
            "timestamp": str(timestamp),
            "v": "2",
            "sign": signing.api_sign(self.app_key, self._secret, method, body, timestamp, sign_method=self.sign_method),
            "sign_method": self.sign_method,
        }

    async def call(self, method: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST one signed call; the JSON text and parse of a successful answer."""
        body = signing.param_json(params)
        url = f"{self.base_url}/{method.replace('.', '/')}"
        try:
            async with self._http.post(
                url,
                params=self.system_params(method, body),
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"{method}: {type(exc).__name__}: {exc}") from exc
        try:
            text = raw.decode("utf-8")
            doc = json.loads(text)
        except ValueError:
            if status == 429:
                raise RateLimited(SOURCE, f"{method}: HTTP 429", http_status=status) from None
            raise TransientError(SOURCE, f"{method}: HTTP {status}, response is not JSON", http_status=status) from None
        if not isinstance(doc, dict):
            raise PermanentError(SOURCE, f"{method}: response is not a JSON object", http_status=status)
        if status != 200 or doc.get("code") != SUCCESS:
            raise classify_error(doc, http_status=status)
        return text, doc

    async def search_list(self, start: datetime, end: datetime, *, page: int = 0, size: int = MAX_SIZE) -> SearchPage:
        """Shop orders updated in ``[start, end]``, newest update first, one page (from 0)."""
        if not 1 <= size <= MAX_SIZE:
            raise ValueError(f"size must be 1..{MAX_SIZE}, got {size}")
        if page < 0:
            raise ValueError(f"page must be >= 0, got {page}")
        text, doc = await self.call(
            METHOD_SEARCH_LIST,
            {
                "update_time_start": unix(start),
                "update_time_end": unix(end),
                "page": page,
                "size": size,
                "order_by": "update_time",
                "order_asc": False,
            },
        )
        data = doc.get("data")
        if not isinstance(data, dict):
            raise PermanentError(SOURCE, f"{METHOD_SEARCH_LIST}: answer has no 'data' object")
        try:
            items = array_items(text, ("data", "shop_order_list"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice shop_order_list: {exc}") from exc
        total = data.get("total")
        return SearchPage(
            orders=[v for _, v in items],
            raw=[r.encode("utf-8") for r, _ in items],
            page=page,
            size=size,
            total=total if isinstance(total, int) and not isinstance(total, bool) else 0,
        )

    async def order_detail(self, shop_order_id: str) -> tuple[bytes, Any]:
        """``data.shop_order_detail`` of one order: exact bytes and parse."""
        text, doc = await self.call(METHOD_ORDER_DETAIL, {"shop_order_id": shop_order_id})
        data = doc.get("data")
        detail = data.get("shop_order_detail") if isinstance(data, dict) else None
        if not isinstance(detail, dict):
            raise PermanentError(SOURCE, f"{METHOD_ORDER_DETAIL}: no data.shop_order_detail for {shop_order_id}")
        try:
            exact = value_text(text, ("data", "shop_order_detail"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"{METHOD_ORDER_DETAIL}: cannot slice shop_order_detail: {exc}") from exc
        return exact.encode("utf-8"), detail


_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def value_text(text: str, path: tuple[str, ...]) -> str:
    """The exact text of the value at ``path`` (object members) in the JSON document ``text``."""
    i = _skip(text, 0)
    for name in path:
        if text[i : i + 1] != "{":
            raise ValueError(f"{name!r}: not inside an object")
        i = _skip(text, i + 1)
        while True:
            if text[i : i + 1] == "}":
                raise ValueError(f"no member {name!r}")
            key, i = _DECODER.raw_decode(text, i)
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise ValueError(f"expected ':' at {i}")
            i = _skip(text, i + 1)
            if key == name:
                break
            _, i = _DECODER.raw_decode(text, i)
            i = _skip(text, i)
            if text[i : i + 1] == ",":
                i = _skip(text, i + 1)
    _, end = _DECODER.raw_decode(text, i)
    return text[i:end]
