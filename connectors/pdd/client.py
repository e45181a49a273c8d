"""Pinduoduo open platform (拼多多开放平台) HTTP client: common parameters, signing, errors.

HTTP only: no Kafka, no cursors. The business call is ``pdd.order.number.list.increment.get``
(查询订单增量), ``POST https://gw-api.pinduoduo.com/api/router`` (form body):

* common parameters ``type``, ``client_id``, ``access_token``, ``timestamp`` (unix seconds,
  within 10 min of PDD's clock), ``data_type=JSON`` and ``sign`` (:mod:`connectors.pdd.signing`);
* ``start_updated_at``/``end_updated_at``: unix seconds, "end_updated_at - start_updated_at <=
  30min"; ``is_lucky_flag=0`` (all orders, lottery or not), ``order_status=5`` and
  ``refund_status=5`` (all), ``page`` from 1, ``page_size`` <= 100, ``use_has_next=false``:
  backward paging needs ``total_count``, which ``use_has_next=true`` leaves out;
* answer ``{"order_sn_increment_get_response": {"total_count": n, "order_sn_list": [...]}}``,
  where each element is a complete order (item_list, statuses, masked address...): the same
  shape as ``pdd.order.information.get``'s ``order_info``, so no per-order detail call is
  needed - the golden fixtures (tests/fixtures/pdd) are such elements;
* failures ``{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}``.

The API doc's two warnings shape :mod:`connectors.pdd.source`: pages must be read from the last
one backwards ("必须采用倒序的分页方式（从最后一页往回取）才能避免漏单问题"), and windows must end at
least 3 minutes before PDD's clock ("结束时间不小于拼多多系统时间前3min").

Sources: open.pinduoduo.com API doc of pdd.order.number.list.increment.get (as mirrored by
the ``pdd`` crate and PDD SDK models), the common parameters and error code table of the
PDD API docs, and the access guide's signing section.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.pdd import signing
from connectors.rawjson import array_items
from ordertwin.settings import Settings

SOURCE = "pdd"
CHINA_TZ = ZoneInfo("Asia/Shanghai")
PDD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TYPE_INCREMENT_GET = "pdd.order.number.list.increment.get"
RESPONSE_KEY = "order_sn_increment_get_response"
LIST_KEY = "order_sn_list"
MAX_PAGE_SIZE = 100
ALL_STATUSES = 5  # order_status / refund_status: 5 = 全部
ALL_ORDERS = 0  # is_lucky_flag: 0 = 全部 (1 non-lottery, 2 lottery)

# PDD error codes (API docs, "返回错误码说明"), by what waiting can do about them.
RATE_LIMIT_CODES = frozenset({"52101", "70031", "70036"})  # 限流 / 调用过于频繁 / 测试应用调用次数受限
TRANSIENT_CODES = frozenset({"50000", "50002", "52001", "52002", "52102", "52103", "70033"})


def from_pdd_time(text: str) -> datetime:
    """PDD's Beijing-time text (``updated_at``) -> aware datetime."""
    return datetime.strptime(text, PDD_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def to_pdd_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return moment.astimezone(CHINA_TZ).strftime(PDD_TIME_FORMAT)


def unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return int(moment.timestamp() // 1)


def order_updated(order: Any) -> datetime | None:
    """The order's ``updated_at``, or None if absent or unreadable."""
    value = order.get("updated_at") if isinstance(order, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return from_pdd_time(value)
    except ValueError:
        return None


def order_key(order: Any) -> bytes | None:
    """Kafka key of a raw order: its ``order_sn``; None when there is none."""
    sn = order.get("order_sn") if isinstance(order, Mapping) else None
    if not isinstance(sn, str) or not sn.strip():
        return None
    return sn.strip().encode("utf-8")


def classify_error(error: Mapping[str, Any], *, http_status: int | None = None) -> PlatformError:
    """Map a PDD ``error_response`` to RateLimited (52101, 70031, 70036), TransientError
    (50000, 50002, 52001, 52002, 52102, 52103, 70033; 50001 "业务服务错误" only when its sub
    message says busy/timeout) or PermanentError (parameters, sign 20004, token 10019, ...)."""
    code = str(error.get("error_code", "")).strip()
    sub_code = str(error.get("sub_code") or "").strip()
    msg = str(error.get("error_msg") or "").strip()
    sub_msg = str(error.get("sub_msg") or "").strip()
    text = f"{msg} ({sub_msg})" if sub_msg and sub_msg != msg else (msg or "PDD error")
    kw: dict[str, Any] = {"code": code or None, "sub_code": sub_code or None, "http_status": http_status}
    if code in RATE_LIMIT_CODES or sub_code in RATE_LIMIT_CODES:
        return RateLimited(SOURCE, text, **kw)
    busy = any(word in sub_msg or word in msg for word in ("繁忙", "超时", "稍后重试", "暂时不可用"))
    if code in TRANSIENT_CODES or sub_code in TRANSIENT_CODES or (code == "50001" and busy):
        return TransientError(SOURCE, text, **kw)
    return PermanentError(SOURCE, text, **kw)


@dataclass(frozen=True)
class IncrementPage:
    """One page of ``pdd.order.number.list.increment.get``."""

    orders: list[Any]
    raw: list[bytes]  # each order's exact bytes as they appeared in the response
    total: int  # total_count: orders matching the whole query (as of this call)


def _wire(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class PddClient:
    """Signed calls to the PDD gateway over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        access_token: str,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http = http
        self.base_url = base_url
        self.client_id = client_id
        self._secret = client_secret
        self._token = access_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> PddClient:
        return cls(
            http,
            base_url=settings.pdd_base_url,
            client_id=settings.pdd_client_id,
            client_secret=settings.pdd_client_secret.get_secret_value(),
            access_token=settings.pdd_access_token.get_secret_value(),
            timeout=settings.connector_http_timeout_s,
        )

    def signed_params(self, api_type: str, params: Mapping[str, str | int | bool | None]) -> dict[str, str]:
        """Common + business parameters with ``sign``, as sent in the form body."""
        values: dict[str, str] = {
            "type": api_type,
            "client_id": self.client_id,
            "access_token": self._token,
            "timestamp": str(unix_seconds(self._clock())),
            "data_type": "JSON",
        }
        for name, value in params.items():
            if value is not None:
                values[name] = _wire(value)
        values["sign"] = signing.sign(values, self._secret)
        return values

    async def call(self, api_type: str, params: Mapping[str, str | int | bool | None]) -> tuple[str, dict[str, Any]]:
        """POST one signed call; return the JSON text of a successful answer and its parse."""
        form = self.signed_params(api_type, params)
        try:
            async with self._http.post(self.base_url, data=form, timeout=self._timeout) as resp:
                status = resp.status
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"{api_type}: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            raise RateLimited(SOURCE, f"{api_type}: HTTP 429", http_status=status)
        if status >= 500:
            raise TransientError(SOURCE, f"{api_type}: HTTP {status}", http_status=status)
        if status != 200:
            raise PermanentError(SOURCE, f"{api_type}: HTTP {status}", http_status=status)
        try:
            text = body.decode("utf-8")
            doc = json.loads(text)
        except ValueError as exc:
            raise TransientError(SOURCE, f"{api_type}: response is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise PermanentError(SOURCE, f"{api_type}: response is not a JSON object")
        error = doc.get("error_response")
        if isinstance(error, Mapping):
            raise classify_error(error, http_status=status)
        return text, doc

    async def increment_get(
        self, start: datetime, end: datetime, page: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> IncrementPage:
        """Orders updated in ``[start, end]`` (whole seconds), page ``page`` of the query."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if page < 1:
            raise ValueError(f"page must be >= 1, got {page}")
        text, doc = await self.call(
            TYPE_INCREMENT_GET,
            {
                "start_updated_at": unix_seconds(start),
                "end_updated_at": unix_seconds(end),
                "is_lucky_flag": ALL_ORDERS,
                "order_status": ALL_STATUSES,
                "refund_status": ALL_STATUSES,
                "page": page,
                "page_size": page_size,
                "use_has_next": False,
            },
        )
        body = doc.get(RESPONSE_KEY)
        if not isinstance(body, dict):
            raise PermanentError(SOURCE, f"response has no {RESPONSE_KEY!r} object")
        try:
            items = array_items(text, (RESPONSE_KEY, LIST_KEY))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice orders out of the response: {exc}") from exc
        parsed = body.get(LIST_KEY)
        expected = len(parsed) if isinstance(parsed, list) else 0
        if expected != len(items):
            raise PermanentError(SOURCE, f"found {len(items)} raw orders but the response lists {expected}")
        total = body.get("total_count")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise PermanentError(SOURCE, f"response has no usable total_count: {total!r:.40}")
        return IncrementPage(orders=[v for _, v in items], raw=[r.encode("utf-8") for r, _ in items], total=total)
