"""Kuaishou e-commerce open platform (快手电商开放平台) HTTP client: signing, errors, cursor.

HTTP only: no Kafka, no saved cursors. The business call is ``open.order.cursor.list``
(获取订单列表), ``GET https://openapi.kwaixiaodian.com/open/order/cursor/list`` (the method with
``.`` replaced by ``/``):

* system parameters ``appkey``, ``method``, ``version=1``, ``access_token``, ``timestamp``
  (ms), ``signMethod`` (``HMAC_SHA256`` recommended, or ``MD5``), ``param`` (business JSON)
  and ``sign`` (:mod:`connectors.kuaishou.signing`);
* ``param``: ``beginTime``/``endTime`` (ms; at most 7 days apart, "SEARCH TIME RANGE EXPAND 7
  DAYS", within the last 90 days), ``queryType=2`` (by update time), ``orderViewStatus=1``
  (all orders), ``sort=1`` (descending), ``pageSize`` <= 100, ``cursor`` ("" for the first
  page, then the ``cursor`` of the previous answer, until the answer says ``"nomore"``);
* answer ``{"result": 1, "data": {"cursor": "...", "orderList": [...], ...}}``; each element
  is a whole order (``orderBaseInfo``, ``orderItemInfo``, ``orderAddress``, ``orderRefundList``,
  ``orderLogisticsInfo``...), the shape of the golden fixtures (tests/fixtures/kuaishou);
* failures ``{"result": <code>, "error_msg": "...", ...}`` (HTTP 200); flow control answers
  "Exceed qps limit, KEY [apiId:...], MAX_QPS [...]" / "Exceed quota limit" (FAQ K1008).

Sources: open.kwaixiaodian.com docs "API调用说明" (401853), "API限流说明" (401718, 300 QPS
for open.order.cursor.list), "返回码说明" (400074: 300003/300004/300005), FAQ K1008, and the
public kwaishop SDKs (``OpenOrderCursorListRequest``; result codes 15/16/17/1016/1017/802000
mapped to rate limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.kuaishou import signing
from connectors.rawjson import array_items
from ordertwin.settings import Settings

SOURCE = "kuaishou"
METHOD_CURSOR_LIST = "open.order.cursor.list"
NO_MORE = "nomore"  # the cursor of the last page
MAX_PAGE_SIZE = 100
QUERY_BY_UPDATE_TIME = 2  # queryType: 1 by creation time, 2 by update time
ORDER_VIEW_ALL = 1  # orderViewStatus: 1 = all orders
SORT_DESCENDING = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RATE_LIMIT_RESULTS = frozenset({"15", "16", "17", "1016", "1017", "802000"})
_LIMIT_WORDS = re.compile(r"exceed (qps|quota) limit|rate limit|限流|频繁|超过.*(限额|额度)", re.IGNORECASE)
_TRANSIENT_WORDS = re.compile(r"timeout|timed out|busy|unavailable|繁忙|超时|稍后重试|服务异常|系统异常", re.IGNORECASE)


def to_millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_millis(value: int) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


def _base(order: Any) -> Mapping[str, Any] | None:
    base = order.get("orderBaseInfo") if isinstance(order, Mapping) else None
    return base if isinstance(base, Mapping) else None


def order_updated(order: Any) -> datetime | None:
    """``orderBaseInfo.updateTime`` (ms), or None if absent or unreadable."""
    base = _base(order)
    value = base.get("updateTime") if base is not None else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    try:
        return from_millis(value)
    except OverflowError:
        return None


def order_key(order: Any) -> bytes | None:
    """Kafka key of a raw order: ``orderBaseInfo.oid`` as text; None when there is none."""
    base = _base(order)
    oid = base.get("oid") if base is not None else None
    if isinstance(oid, bool) or not isinstance(oid, (int, str)):
        return None
    text = str(oid).strip()
    return text.encode("utf-8") if text else None


def classify_error(doc: Mapping[str, Any], *, http_status: int | None = None) -> PlatformError:
    """A failed answer (``result`` != 1): RateLimited for the flow-control codes and messages,
    TransientError for busy/timeout messages, PermanentError otherwise (signature, token,
    parameters such as 300004 "SEARCH TIME RANGE EXPAND 7 DAYS")."""
    code = str(doc.get("result", "")).strip()
    sub_code = str(doc.get("subCode") or doc.get("sub_code") or "").strip()
    messages = [str(doc.get(k) or "").strip() for k in ("error_msg", "errorMsg", "subMsg", "msg")]
    text = next((m for m in messages if m), "Kuaishou error")
    kw: dict[str, Any] = {"code": code or None, "sub_code": sub_code or None, "http_status": http_status}
    if code in RATE_LIMIT_RESULTS or any(_LIMIT_WORDS.search(m) for m in messages):
        return RateLimited(SOURCE, text, **kw)
    if any(_TRANSIENT_WORDS.search(m) for m in messages):
        return TransientError(SOURCE, text, **kw)
    return PermanentError(SOURCE, text, **kw)


@dataclass(frozen=True)
class CursorPage:
    """One page of ``open.order.cursor.list``."""

    orders: list[Any]
    raw: list[bytes]  # each order's exact bytes as they appeared in the response
    cursor: str  # pass it to get the next page; NO_MORE after the last one

    @property
    def has_next(self) -> bool:
        return self.cursor != NO_MORE


class KuaishouClient:
    """Signed calls to the Kuaishou open API over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        app_key: str,
        sign_secret: str,
        access_token: str,
        sign_method: str = "HMAC_SHA256",
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if sign_method not in signing.SIGN_METHODS:
            raise ValueError(f"unknown Kuaishou signMethod {sign_method!r}; known: {', '.join(signing.SIGN_METHODS)}")
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._secret = sign_secret
        self._token = access_token
        self.sign_method = sign_method
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> KuaishouClient:
        return cls(
            http,
            base_url=settings.kuaishou_base_url,
            app_key=settings.kuaishou_app_key,
            sign_secret=settings.kuaishou_sign_secret.get_secret_value(),
            access_token=settings.kuaishou_access_token.get_secret_value(),
            sign_method=settings.kuaishou_sign_method,
            timeout=settings.connector_http_timeout_s,
        )

    def url(self, method: str) -> str:
        """``open.order.cursor.list`` -> ``<base>/open/order/cursor/list``."""
        return f"{self.base_url}/{method.replace('.', '/')}"

    def signed_params(self, method: str, param: Mapping[str, Any]) -> dict[str, str]:
        values: dict[str, str] = {
            "appkey": self.app_key,
            "method": method,
            "version": "1",
            "access_token": self._token,
            "timestamp": str(to_millis(self._clock())),
            "signMethod": self.sign_method,
            # Serialised once: the signature covers exactly these characters.
            "param": json.dumps(dict(param), ensure_ascii=False, separators=(",", ":")),
        }
        values["sign"] = signing.sign(values, self._secret, self.sign_method)
        return values

    async def call(self, method: str, param: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """GET one signed call; return the JSON text of a successful answer and its parse."""
        query = self.signed_params(method, param)
        try:
            async with self._http.get(self.url(method), params=query, timeout=self._timeout) as resp:
                status = resp.status
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"{method}: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            raise RateLimited(SOURCE, f"{method}: HTTP 429", http_status=status)
        if status >= 500:
            raise TransientError(SOURCE, f"{method}: HTTP {status}", http_status=status)
        if status != 200:
            raise PermanentError(SOURCE, f"{method}: HTTP {status}", http_status=status)
        try:
            text = body.decode("utf-8")
            doc = json.loads(text)
        except ValueError as exc:
            raise TransientError(SOURCE, f"{method}: response is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise PermanentError(SOURCE, f"{method}: response is not a JSON object")
        if doc.get("result") != 1:
            raise classify_error(doc, http_status=status)
        return text, doc

    async def cursor_list(
        self, start: datetime, end: datetime, cursor: str = "", page_size: int = MAX_PAGE_SIZE
    ) -> CursorPage:
        """Orders updated between ``start`` and ``end`` (ms), newest first, one cursor page."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if cursor == NO_MORE:
            raise ValueError("the cursor says there are no more pages")
        text, doc = await self.call(
            METHOD_CURSOR_LIST,
            {
                "orderViewStatus": ORDER_VIEW_ALL,
                "pageSize": page_size,
                "sort": SORT_DESCENDING,
                "queryType": QUERY_BY_UPDATE_TIME,
                "beginTime": to_millis(start),
                "endTime": to_millis(end),
                "cursor": cursor,
            },
        )
        data = doc.get("data")
        if not isinstance(data, dict):
            raise PermanentError(SOURCE, "response has no 'data' object")
        try:
            items = array_items(text, ("data", "orderList"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice orders out of the response: {exc}") from exc
        parsed = data.get("orderList")
        expected = len(parsed) if isinstance(parsed, list) else 0
        if expected != len(items):
            raise PermanentError(SOURCE, f"found {len(items)} raw orders but the response lists {expected}")
        next_cursor = data.get("cursor")
        if not isinstance(next_cursor, str) or not next_cursor:
            raise PermanentError(SOURCE, f"response has no usable cursor: {next_cursor!r:.40}")
        return CursorPage(orders=[v for _, v in items], raw=[r.encode("utf-8") for r, _ in items], cursor=next_cursor)
