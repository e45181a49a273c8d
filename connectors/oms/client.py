"""旺店通旗舰版 (Wangdiantong flagship ERP) open API client: system parameters, signing, errors.

HTTP only: no Kafka, no cursors. The one business call is the ERP order query with details,
``sales.TradeQuery.queryWithDetail`` (订单查询):

* ``POST <gateway>/openapi?sid=..&key=..&salt=..&method=..&v=1.0&timestamp=..&page_size=..
  &page_no=..&calc_total=1&sign=..`` with the business parameters as the JSON body - a JSON
  *array* of the positional arguments, here one object ``[{"start_time": .., ...}]`` - and
  ``Content-Type: application/json`` (signature: :mod:`connectors.oms.signing`). Gateways:
  ``http://wdt.wangdian.cn/openapi`` (正式), ``http://47.92.239.46/openapi`` (测试).
* business parameters: ``start_time``/``end_time`` (``YYYY-MM-DD HH:MM:SS``, Beijing time;
  "最大跨度为60分钟"), ``time_type`` (1 修改时间, the default; 2 付款时间; 3 下单时间),
  ``order_type`` (0 默认排序, **1 修改时间降序**: we ask newest first); pager ``page_no``
  from 0, ``page_size`` ("单量较大的卖家，page_size建议200以下"), ``calc_total=1`` for
  ``total_count``.
* answer ``{"status": 0, "data": {"order": [...], "total_count": n}}``; failures
  ``{"status": <non-zero>, "message": "..."}`` inside an HTTP 200, e.g. ``{"status": 100,
  "message": "超过每分钟最大调用频率限制,请稍后重试"}`` (documented 异常响应示例) or ``"您的查询时间过宽,
  查询时间不能大于60分钟"``.

Sources: the 旗舰版 API pages (open.wangdian.cn/qjb/open/apidoc, 公共请求参数 / 公共响应参数,
``sales.TradeQuery.querySelfOrderWithDetail`` - the same query restricted to self-run shops,
with the same parameters, 60-minute span and order_type - ``goods.GoodsClass.search`` for the
rate-limit answer, ``wms.stockout.Base.search`` for the span error), the official PHP SDK
``WdtErpClient`` and public SDK ports (go-marvis/wangdian-sdk-go ``sales.TradeQuery``). The
``queryWithDetail`` page itself was not in the reference copy available here: its 60-minute
span and ``order_type`` are taken from the sibling page and from integrators' clients of
``queryWithDetail``; the simulator enforces them as documented there.

Error codes: apart from status 0 (success) and 100 (used for both the rate limit and parameter
errors), the platform's status numbers are not documented in what was available, so errors
are classified by their message (as the official SDK's retry logic does), not their number.

Each order is returned parsed and as the exact bytes it had in the response: connectors
publish records unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp

from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.oms import signing
from connectors.rawjson import array_items
from ordertwin.settings import Settings

SOURCE = "oms"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
WDT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
METHOD = "sales.TradeQuery.queryWithDetail"
VERSION = "1.0"
MAX_PAGE_SIZE = 200  # "page_size建议200以下"; the settings allow 1..200
TIME_TYPE_MODIFIED = 1  # time_type: 1 修改时间 (default), 2 付款时间, 3 下单时间
ORDER_MODIFIED_DESC = 1  # order_type: 0 默认排序, 1 修改时间降序
STATUS_OK = 0
STATUS_ERROR = 100  # the documented status of rate-limit and parameter errors


def to_wdt_time(moment: datetime) -> str:
    """Aware datetime -> 旺店通's Beijing-time text."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return moment.astimezone(CHINA_TZ).strftime(WDT_TIME_FORMAT)


def from_wdt_time(text: str) -> datetime:
    """旺店通's Beijing-time text -> aware datetime (UTC+8)."""
    return datetime.strptime(text, WDT_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def trade_modified(trade: Any) -> datetime | None:
    """The ERP order's ``modified`` time, or None if absent or unreadable."""
    value = trade.get("modified") if isinstance(trade, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return from_wdt_time(value)
    except ValueError:
        return None


def trade_key(trade: Any) -> bytes | None:
    """Kafka key of a raw ERP order: its ``trade_no`` (订单编号); None when there is none."""
    value = trade.get("trade_no") if isinstance(trade, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    return text.encode("utf-8") if text else None


def dumps_body(params: Mapping[str, Any]) -> str:
    """The request body: the positional arguments as a JSON array, serialised once (it is signed)."""
    return json.dumps([dict(params)], ensure_ascii=False, separators=(",", ":"))


# --- errors ------------------------------------------------------------------------------

# "超过每分钟最大调用频率限制,请稍后重试" / "超过每分钟最大并发次数限制，请稍后重试" (both retried by the SDK)
_LIMIT_WORDS = re.compile(r"调用频率|并发次数|频率限制|限流|流控|too many|rate limit|frequency", re.IGNORECASE)
_TRANSIENT_WORDS = re.compile(
    r"系统繁忙|服务繁忙|繁忙|超时|不可用|稍后重试|请重试|busy|timeout|timed out|unavailable", re.IGNORECASE
)


def classify_error(status: Any, message: str, *, http_status: int | None = None) -> PlatformError:
    """Map a ``{"status": n, "message": ...}`` answer to an error kind, by its message.

    * a per-minute call or concurrency limit: RateLimited;
    * a busy / timed-out / unavailable service, or "try again later": TransientError;
    * anything else (signature, sid/appkey, timestamp, span too wide, parameters): PermanentError -
      retrying the same request cannot help.
    """
    code = str(status).strip() if status is not None else None
    text = message.strip() or "旺店通 error"
    kw: dict[str, Any] = {"code": code or None, "http_status": http_status}
    if _LIMIT_WORDS.search(text):
        return RateLimited(SOURCE, text, **kw)
    if _TRANSIENT_WORDS.search(text):
        return TransientError(SOURCE, text, **kw)
    return PermanentError(SOURCE, text, **kw)


# --- the client --------------------------------------------------------------------------


@dataclass(frozen=True)
class TradePage:
    """One page of the order query."""

    orders: list[Any]  # parsed orders (normally dicts; kept as-is when malformed)
    raw: list[bytes]  # each order's exact bytes as they appeared in the response
    total: int | None  # total_count: orders matching the whole query (None if not returned)
    has_next: bool


class OmsClient:
    """Signed calls to the 旺店通旗舰版 gateway over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        sid: str,
        app_key: str,
        app_secret: str,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http = http
        self.base_url = base_url
        self.sid = sid
        self.app_key = app_key
        self._secret, self.salt = signing.split_app_secret(app_secret)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> OmsClient:
        return cls(
            http,
            base_url=settings.oms_base_url,
            sid=settings.oms_sid,
            app_key=settings.oms_app_key,
            app_secret=settings.oms_app_secret.get_secret_value(),
            timeout=settings.connector_http_timeout_s,
        )

    def signed_query(self, method: str, body: str, pager: Mapping[str, int] | None = None) -> dict[str, str]:
        """The query-string parameters of a call whose JSON body is ``body``, ``sign`` included."""
        values: dict[str, str] = {
            "sid": self.sid,
            "key": self.app_key,
            "salt": self.salt,
            "method": method,
            "timestamp": str(signing.wdt_timestamp(self._clock())),
            "v": VERSION,
        }
        values.update({name: str(value) for name, value in (pager or {}).items()})
        values["sign"] = signing.sign({**values, "body": body}, self._secret)
        return values

    async def call(
        self, method: str, params: Mapping[str, Any], pager: Mapping[str, int] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """POST one signed call; return the JSON text of a successful answer and its parse.

        Raises TransientError (network, timeout, 5xx, unreadable body), RateLimited (HTTP 429
        or a call/concurrency limit) or PermanentError (other 4xx, other platform errors).
        """
        body = dumps_body(params)
        query = self.signed_query(method, body, pager)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            async with self._http.post(
                self.base_url, params=query, data=body.encode("utf-8"), headers=headers, timeout=self._timeout
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"{method}: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            raise RateLimited(SOURCE, f"{method}: HTTP 429", http_status=status)
        if status >= 500:
            raise TransientError(SOURCE, f"{method}: HTTP {status}", http_status=status)
        if status != 200:
            raise PermanentError(SOURCE, f"{method}: HTTP {status}", http_status=status)
        try:
            text = raw.decode("utf-8")
            doc = json.loads(text)
        except ValueError as exc:  # truncated or garbled body: a gateway hiccup
            raise TransientError(SOURCE, f"{method}: response is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise PermanentError(SOURCE, f"{method}: response is not a JSON object")
        code = doc.get("status")
        if code != STATUS_OK and str(code).strip() != str(STATUS_OK):
            raise classify_error(code, str(doc.get("message") or ""), http_status=status)
        return text, doc

    async def trade_query(
        self, start: datetime, end: datetime, page_no: int = 0, page_size: int = MAX_PAGE_SIZE
    ) -> TradePage:
        """ERP orders modified in ``[start, end]`` (aware datetimes), newest first, one page
        (``page_no`` from 0, as the platform counts)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if page_no < 0:
            raise ValueError(f"page_no must be >= 0, got {page_no}")
        text, doc = await self.call(
            METHOD,
            {
                "start_time": to_wdt_time(start),
                "end_time": to_wdt_time(end),
                "time_type": TIME_TYPE_MODIFIED,
                "order_type": ORDER_MODIFIED_DESC,
            },
            {"page_size": page_size, "page_no": page_no, "calc_total": 1},
        )
        data = doc.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PermanentError(SOURCE, "response data is not an object")
        try:
            items = array_items(text, ("data", "order"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice orders out of the response: {exc}") from exc
        parsed = data.get("order")
        expected = len(parsed) if isinstance(parsed, list) else 0
        if expected != len(items):
            raise PermanentError(SOURCE, f"found {len(items)} raw orders but the response lists {expected}")
        total = data.get("total_count")
        if isinstance(total, str) and total.strip().isdigit():
            total = int(total)
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            raise PermanentError(SOURCE, f"response has an unusable total_count: {total!r:.40}")
        # calc_total=1 asks for total_count; should it be missing, only a full page can have a next.
        has_next = (page_no + 1) * page_size < total if total is not None else len(items) >= page_size
        return TradePage(
            orders=[value for _, value in items],
            raw=[raw.encode("utf-8") for raw, _ in items],
            total=total,
            has_next=has_next,
        )
