"""JD JOS (京东宙斯) HTTP client: system parameters, signing, error mapping.

HTTP only: no Kafka, no cursors. The one business call is the POP order search,
``jingdong.pop.order.enSearch`` (PII encrypted; JOS's current name) or its older twin
``jingdong.pop.order.search`` - same parameters, same ``OrderSearchInfo`` objects:

* ``POST https://api.jd.com/routerjson`` with the system parameters ``method``, ``app_key``,
  ``access_token``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, Beijing time; JOS accepts 6 min of
  clock skew), ``v=2.0``, ``360buy_param_json`` (the business parameters as one JSON string)
  and ``sign`` (:mod:`connectors.jd.signing`).
* business parameters: ``start_date``/``end_date`` (same format; "不得相差超过1个月"),
  ``dateType`` (0 = by modified time), ``sortType`` (1 = descending), ``order_state``
  (required, comma separated: we send every documented state so nothing is filtered out),
  ``optional_fields`` (required: the fields to return), ``page`` (from 1), ``page_size`` (<= 100).
* answer ``{"jingdong_pop_order_enSearch_responce": {"code": "0", "searchorderinfo_result":
  {"apiResult": {"success": true, ...}, "orderInfoList": [...], "orderTotal": n}}}`` (JOS spells
  it "responce"); failures ``{"error_response": {"code", "zh_desc", "en_desc"}}`` (gateway) or
  ``apiResult.success = false`` (the order service).

Sources: JOS API docs for jingdong.pop.order.search / enSearch and the gateway error table
(code 2 "App Call Limited", 8 "Invalid Timestamp" +-6 min, 12 "Invalid Signature", 19
"Invalid access_token"), as mirrored in public SDKs (jd-open-api-sdk ``OrderSearchRequest``,
``PopOrderSearchRequest``) and ERP integration docs.

Each order is returned parsed and as the exact bytes it had in the response: connectors
publish records unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.jd import signing
from connectors.rawjson import array_items
from ordertwin.settings import Settings

SOURCE = "jd"
CHINA_TZ = ZoneInfo("Asia/Shanghai")
JOS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
METHOD_ENSEARCH = "jingdong.pop.order.enSearch"
METHOD_SEARCH = "jingdong.pop.order.search"
METHODS: tuple[str, ...] = (METHOD_ENSEARCH, METHOD_SEARCH)
MAX_PAGE_SIZE = 100
DATE_TYPE_MODIFIED = 0  # dateType: 0 (default) by modified time, 1 by creation time
SORT_DESCENDING = 1  # sortType: 1 descending, anything else ascending
RESULT_KEY = "searchorderinfo_result"

# orderState values of the JOS enumeration ("订单状态（英文）"), all of them, so the search
# never hides an order the normaliser should see (or dead-letter, e.g. UN_KNOWN).
ORDER_STATES: tuple[str, ...] = (
    "WAIT_SELLER_STOCK_OUT", "WAIT_SELLER_DELIVERY", "PAUSE", "POP_ORDER_PAUSE", "LOCKED",
    "WAIT_SEND_CODE", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L", "TRADE_CANCELED",
    "DELIVERY_RETURN", "UN_KNOWN",
)  # fmt: skip

# OrderSearchInfo fields we ask for (optional_fields is required by JOS).
OPTIONAL_FIELDS: tuple[str, ...] = (
    "orderId", "venderId", "orderType", "payType", "orderTotalPrice", "orderSellerPrice",
    "orderPayment", "freightPrice", "sellerDiscount", "orderState", "orderStateRemark",
    "deliveryType", "invoiceInfo", "invoiceCode", "orderRemark", "orderStartTime", "orderEndTime",
    "consigneeInfo", "itemInfoList", "couponDetailList", "venderRemark", "balanceUsed", "pin",
    "open_id_buyer", "xid_buyer", "returnOrder", "paymentConfirmTime", "waybill", "logisticsId",
    "modified", "directParentOrderId", "parentOrderId", "orderSource", "storeOrder",
    "idSopShipmenttype", "storeId",
)  # fmt: skip


def response_key(method: str) -> str:
    """``jingdong.pop.order.enSearch`` -> ``jingdong_pop_order_enSearch_responce`` (sic)."""
    return method.replace(".", "_") + "_responce"


def to_jos_time(moment: datetime) -> str:
    """Aware datetime -> JOS's Beijing-time text."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return moment.astimezone(CHINA_TZ).strftime(JOS_TIME_FORMAT)


def from_jos_time(text: str) -> datetime:
    """JOS's Beijing-time text -> aware datetime (Asia/Shanghai)."""
    return datetime.strptime(text, JOS_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def order_modified(order: Any) -> datetime | None:
    """The order's ``modified`` time, or None if absent or unreadable."""
    value = order.get("modified") if isinstance(order, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return from_jos_time(value)
    except ValueError:
        return None


def order_key(order: Any) -> bytes | None:
    """Kafka key of a raw order: its ``orderId`` as text; None when there is none."""
    oid = order.get("orderId") if isinstance(order, Mapping) else None
    if isinstance(oid, bool) or not isinstance(oid, (int, str)):
        return None
    text = str(oid).strip()
    return text.encode("utf-8") if text else None


# --- errors ------------------------------------------------------------------------------

_LIMIT_WORDS = re.compile(r"call limited|limit|频繁|限流|流控|频率|调用次数", re.IGNORECASE)
_TRANSIENT_WORDS = re.compile(r"unavailable|timeout|timed out|busy|繁忙|超时|不可用|稍后", re.IGNORECASE)


def classify_error(error: Mapping[str, Any], *, http_status: int | None = None) -> PlatformError:
    """Map a JOS ``error_response`` (``code``, ``zh_desc``, ``en_desc``) to an error kind.

    * code 2 "App Call Limited", or a description about call limits/flow control: RateLimited;
    * a description saying the service is busy, unavailable or timed out: TransientError;
    * everything else (8 Invalid Timestamp, 12 Invalid Signature, 19 Invalid access_token,
      parameter errors): PermanentError - retrying the same request cannot help.
    """
    code = str(error.get("code", "")).strip()
    zh = str(error.get("zh_desc") or "").strip()
    en = str(error.get("en_desc") or "").strip()
    text = " / ".join(part for part in (en, zh) if part) or "JOS error"
    kw: dict[str, Any] = {"code": code or None, "http_status": http_status}
    if code == "2" or _LIMIT_WORDS.search(en) or _LIMIT_WORDS.search(zh):
        return RateLimited(SOURCE, text, **kw)
    if _TRANSIENT_WORDS.search(en) or _TRANSIENT_WORDS.search(zh):
        return TransientError(SOURCE, text, **kw)
    return PermanentError(SOURCE, text, **kw)


def classify_api_result(result: Mapping[str, Any]) -> PlatformError:
    """A ``searchorderinfo_result.apiResult`` with ``success: false`` (the order service's own
    failure inside an HTTP 200): busy/timeout texts are transient, the rest permanent."""
    number = result.get("numberCode")
    zh = str(result.get("chineseErrCode") or "").strip()
    en = str(result.get("englishErrCode") or "").strip()
    text = " / ".join(part for part in (en, zh) if part) or "order service failed"
    code = str(number) if number is not None else None
    if _LIMIT_WORDS.search(en) or _LIMIT_WORDS.search(zh):
        return RateLimited(SOURCE, text, code=code)
    if _TRANSIENT_WORDS.search(en) or _TRANSIENT_WORDS.search(zh):
        return TransientError(SOURCE, text, code=code)
    return PermanentError(SOURCE, text, code=code)


# --- the client --------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPage:
    """One page of the order search."""

    orders: list[Any]  # parsed orders (normally dicts; kept as-is when malformed)
    raw: list[bytes]  # each order's exact bytes as they appeared in the response
    total: int  # orderTotal: orders matching the whole query
    has_next: bool


class JdClient:
    """Signed calls to the JOS gateway over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        method: str = METHOD_ENSEARCH,
        order_states: Sequence[str] = ORDER_STATES,
        fields: Sequence[str] = OPTIONAL_FIELDS,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown JOS order search method {method!r}; known: {', '.join(METHODS)}")
        self._http = http
        self.base_url = base_url
        self.app_key = app_key
        self._secret = app_secret
        self._token = access_token
        self.method = method
        self.order_states = tuple(order_states)
        self.fields = tuple(fields)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> JdClient:
        return cls(
            http,
            base_url=settings.jd_base_url,
            app_key=settings.jd_app_key,
            app_secret=settings.jd_app_secret.get_secret_value(),
            access_token=settings.jd_access_token.get_secret_value(),
            method=settings.jd_method,
            timeout=settings.connector_http_timeout_s,
        )

    def signed_params(self, method: str, business: Mapping[str, Any]) -> dict[str, str]:
        """System parameters + ``360buy_param_json`` + ``sign``, as sent in the form body."""
        values: dict[str, str] = {
            "method": method,
            "app_key": self.app_key,
            "access_token": self._token,
            "timestamp": to_jos_time(self._clock()),
            "v": "2.0",
            # Serialised once: the signature covers exactly these characters.
            "360buy_param_json": json.dumps(dict(business), ensure_ascii=False, separators=(",", ":")),
        }
        values["sign"] = signing.sign(values, self._secret)
        return values

    async def call(self, method: str, business: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST one signed call; return the JSON text of a successful answer and its parse.

        Raises TransientError (network, timeout, 5xx, unreadable body), RateLimited (HTTP 429
        or a JOS call limit) or PermanentError (other 4xx, other JOS errors).
        """
        form = self.signed_params(method, business)
        try:
            async with self._http.post(self.base_url, data=form, timeout=self._timeout) as resp:
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
        except ValueError as exc:  # truncated or garbled body: a gateway hiccup
            raise TransientError(SOURCE, f"{method}: response is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise PermanentError(SOURCE, f"{method}: response is not a JSON object")
        error = doc.get("error_response")
        if isinstance(error, Mapping):
            raise classify_error(error, http_status=status)
        return text, doc

    async def order_search(
        self, start: datetime, end: datetime, page: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> OrderPage:
        """Orders modified in ``[start, end]`` (aware datetimes), newest first, one page."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if page < 1:
            raise ValueError(f"page must be >= 1, got {page}")
        key = response_key(self.method)
        text, doc = await self.call(
            self.method,
            {
                "start_date": to_jos_time(start),
                "end_date": to_jos_time(end),
                "order_state": ",".join(self.order_states),
                "optional_fields": ",".join(self.fields),
                "page": str(page),
                "page_size": str(page_size),
                "sortType": SORT_DESCENDING,
                "dateType": DATE_TYPE_MODIFIED,
            },
        )
        body = doc.get(key)
        result = body.get(RESULT_KEY) if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise PermanentError(SOURCE, f"response has no {key}.{RESULT_KEY} object")
        api_result = result.get("apiResult")
        if isinstance(api_result, Mapping) and api_result.get("success") is False:
            raise classify_api_result(api_result)
        try:
            items = array_items(text, (key, RESULT_KEY, "orderInfoList"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice orders out of the response: {exc}") from exc
        parsed = result.get("orderInfoList")
        expected = len(parsed) if isinstance(parsed, list) else 0
        if expected != len(items):
            raise PermanentError(SOURCE, f"found {len(items)} raw orders but the response lists {expected}")
        total = result.get("orderTotal")
        if isinstance(total, str) and total.strip().isdigit():
            total = int(total)
        if not isinstance(total, int) or isinstance(total, bool):
            raise PermanentError(SOURCE, f"response has no usable orderTotal: {total!r:.40}")
        return OrderPage(
            orders=[value for _, value in items],
            raw=[raw.encode("utf-8") for raw, _ in items],
            total=total,
            has_next=page * page_size < total,
        )
