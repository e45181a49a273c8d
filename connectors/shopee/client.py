"""Shopee Open Platform v2 client for the reconciliation pull (HTTP only: no Kafka, no cursors).

Two Shop APIs (GET; common parameters ``partner_id``, ``timestamp``, ``access_token``,
``shop_id``, ``sign`` in the query, see :mod:`connectors.shopee.signing`):

- ``/api/v2/order/get_order_list`` (``v2.order.get_order_list``,
  https://open.shopee.com/documents/v2/v2.order.get_order_list?module=94&type=1): ``time_range_field=update_time``,
  ``time_from`` / ``time_to`` (Unix seconds, at most 15 days apart), ``page_size`` 1..100,
  ``cursor`` (``""`` first) -> ``response.order_list[].order_sn``, ``response.more``,
  ``response.next_cursor``. Entries carry no update time, hence:
- ``/api/v2/order/get_order_detail`` (``v2.order.get_order_detail``, same module): ``order_sn_list``
  (comma separated, at most 50) and ``response_optional_fields`` -> ``response.order_list[]``,
  the order objects the normaliser accepts (``order_sn``, ``order_status``, ``update_time``,
  ``currency``, ``total_amount``, ``item_list``, ``recipient_address``...). Fields such as
  ``total_amount``, ``item_list`` and ``recipient_address`` are returned only when named in
  ``response_optional_fields``.

Every answer is ``{"error": "", "message": "", "response": {...}, "request_id": "..."}``;
``error`` non-empty means failure (e.g. ``error_param``, ``error_auth``, ``error_sign``,
``error_too_many_request`` with HTTP 429 for throttling, ``error_server`` for platform
faults). Orders are returned parsed and as their exact bytes in the response.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.rawjson import array_items
from connectors.shopee import signing
from ordertwin.settings import Settings

SOURCE = "shopee"
PATH_ORDER_LIST = "/api/v2/order/get_order_list"
PATH_ORDER_DETAIL = "/api/v2/order/get_order_detail"
MAX_PAGE_SIZE = 100
MAX_DETAIL_BATCH = 50
MAX_WINDOW = timedelta(days=15)

# What get_order_detail must return for the normaliser (and for audit) besides its basic fields.
OPTIONAL_FIELDS: tuple[str, ...] = (
    "buyer_user_id",
    "buyer_username",
    "estimated_shipping_fee",
    "recipient_address",
    "actual_shipping_fee",
    "goods_to_declare",
    "note",
    "note_update_time",
    "item_list",
    "pay_time",
    "dropshipper",
    "dropshipper_phone",
    "split_up",
    "buyer_cancel_reason",
    "cancel_by",
    "cancel_reason",
    "actual_shipping_fee_confirmed",
    "buyer_cpf_id",
    "fulfillment_flag",
    "pickup_done_time",
    "package_list",
    "shipping_carrier",
    "payment_method",
    "total_amount",
    "invoice_data",
    "order_chargeable_weight_gram",
    "return_request_due_date",
    "edt",
)

RATE_LIMIT_ERRORS = frozenset({"error_too_many_request", "error_rate_limit", "error_api_limit"})
TRANSIENT_ERRORS = frozenset({"error_server", "error_inner", "error_busy", "error_network", "error_timeout"})


def unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return int(moment.timestamp())


def order_key(order: Any) -> bytes | None:
    sn = order.get("order_sn") if isinstance(order, Mapping) else None
    return sn.strip().encode("utf-8") if isinstance(sn, str) and sn.strip() else None


def order_updated(order: Any) -> datetime | None:
    value = order.get("update_time") if isinstance(order, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC)


def classify_error(error: str, message: str, *, http_status: int | None, request_id: str | None) -> PlatformError:
    text = f"{message or error} (request_id {request_id or '?'})"
    if error in RATE_LIMIT_ERRORS or http_status == 429:
        return RateLimited(SOURCE, text, code=error or None, http_status=http_status)
    if error in TRANSIENT_ERRORS or (http_status is not None and http_status >= 500):
        return TransientError(SOURCE, text, code=error or None, http_status=http_status)
    return PermanentError(SOURCE, text, code=error or None, http_status=http_status)


@dataclass(frozen=True)
class OrderListPage:
    order_sns: list[str]
    more: bool
    next_cursor: str


@dataclass(frozen=True)
class OrderDetails:
    orders: list[Any]
    raw: list[bytes]


class ShopeeClient:
    """Signed Shop API calls over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        partner_id: int,
        partner_key: str,
        shop_id: int,
        access_token: str,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.partner_id = partner_id
        self._partner_key = partner_key
        self.shop_id = shop_id
        self._access_token = access_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> ShopeeClient:
        return cls(
            http,
            base_url=settings.shopee_base_url,
            partner_id=settings.shopee_partner_id,
            partner_key=settings.shopee_partner_key.get_secret_value(),
            shop_id=settings.shopee_shop_id,
            access_token=settings.shopee_access_token.get_secret_value(),
            timeout=settings.connector_http_timeout_s,
        )

    def signed_query(self, path: str, params: Mapping[str, str | int]) -> dict[str, str]:
        timestamp = unix(self._clock())
        query = {
            "partner_id": str(self.partner_id),
            "timestamp": str(timestamp),
            "access_token": self._access_token,
            "shop_id": str(self.shop_id),
            "sign": signing.api_sign(
                self._partner_key, self.partner_id, path, timestamp, self._access_token, self.shop_id
            ),
        }
        query.update({k: str(v) for k, v in params.items()})
        return query

    async def call(self, path: str, params: Mapping[str, str | int]) -> tuple[str, dict[str, Any]]:
        """GET one signed Shop API; the JSON text and parse of a successful answer."""
        try:
            async with self._http.get(
                self.base_url + path, params=self.signed_query(path, params), timeout=self._timeout
            ) as resp:
                status = resp.status
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"{path}: {type(exc).__name__}: {exc}") from exc
        try:
            text = body.decode("utf-8")
            doc = json.loads(text)
        except ValueError:
            if status == 429:
                raise RateLimited(SOURCE, f"{path}: HTTP 429", http_status=status) from None
            if status >= 500:
                raise TransientError(SOURCE, f"{path}: HTTP {status}", http_status=status) from None
            raise TransientError(SOURCE, f"{path}: HTTP {status}, response is not JSON") from None
        if not isinstance(doc, dict):
            raise PermanentError(SOURCE, f"{path}: response is not a JSON object", http_status=status)
        error = doc.get("error")
        if error or status != 200:
            raise classify_error(
                str(error or ""),
                str(doc.get("message") or f"HTTP {status}"),
                http_status=status,
                request_id=str(doc.get("request_id") or "") or None,
            )
        return text, doc

    async def get_order_list(
        self, time_from: datetime, time_to: datetime, *, cursor: str = "", page_size: int = MAX_PAGE_SIZE
    ) -> OrderListPage:
        """Orders whose ``update_time`` is in ``[time_from, time_to]``: one cursor page."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if time_to - time_from > MAX_WINDOW:
            raise ValueError(f"get_order_list spans at most {MAX_WINDOW}, got {time_to - time_from}")
        _, doc = await self.call(
            PATH_ORDER_LIST,
            {
                "time_range_field": "update_time",
                "time_from": unix(time_from),
                "time_to": unix(time_to),
                "page_size": page_size,
                "cursor": cursor,
                "response_optional_fields": "order_status",
            },
        )
        response = doc.get("response")
        if not isinstance(response, dict):
            raise PermanentError(SOURCE, "get_order_list: no 'response' object")
        entries = response.get("order_list") or []
        if not isinstance(entries, list):
            raise PermanentError(SOURCE, "get_order_list: 'order_list' is not an array")
        sns = [e["order_sn"] for e in entries if isinstance(e, dict) and isinstance(e.get("order_sn"), str)]
        more = bool(response.get("more"))
        next_cursor = str(response.get("next_cursor") or "")
        if more and not next_cursor:
            raise TransientError(SOURCE, "get_order_list: more=true without next_cursor")
        return OrderListPage(order_sns=sns, more=more, next_cursor=next_cursor)

    async def get_order_detail(self, order_sns: Sequence[str]) -> OrderDetails:
        """The order objects of up to 50 orders, parsed and as exact bytes."""
        if not 1 <= len(order_sns) <= MAX_DETAIL_BATCH:
            raise ValueError(f"order_sn_list takes 1..{MAX_DETAIL_BATCH} orders, got {len(order_sns)}")
        text, doc = await self.call(
            PATH_ORDER_DETAIL,
            {"order_sn_list": ",".join(order_sns), "response_optional_fields": ",".join(OPTIONAL_FIELDS)},
        )
        try:
            items = array_items(text, ("response", "order_list"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice orders out of get_order_detail: {exc}") from exc
        response = doc.get("response")
        listed = response.get("order_list") if isinstance(response, dict) else None
        if len(items) != (len(listed) if isinstance(listed, list) else 0):
            raise PermanentError(SOURCE, "get_order_detail: raw and parsed order_list differ")
        return OrderDetails(orders=[v for _, v in items], raw=[r.encode("utf-8") for r, _ in items])
