"""Shopify Admin REST client for the reconciliation pull (HTTP only: no Kafka, no cursors).

``GET /admin/api/<version>/orders.json`` (Admin REST ``Order`` resource,
https://shopify.dev/docs/api/admin-rest/latest/resources/order#get-orders) with
``status=any`` (the default, ``open``, would skip cancelled and closed orders),
``updated_at_min`` / ``updated_at_max`` ("at or after" / "at or before", ISO-8601 with offset)
and ``limit`` <= 250. Paging is cursor based (https://shopify.dev/docs/api/usage/pagination-rest):
the ``Link`` response header names the next page as a URL with ``page_info``, and a request
with ``page_info`` may carry nothing but ``limit`` (and ``fields``): the filters live in the
cursor. Authentication: ``X-Shopify-Access-Token``. Rate limits
(https://shopify.dev/docs/api/usage/limits): a leaky bucket per app and store, reported in
``X-Shopify-Shop-Api-Call-Limit`` ("32/40"); over it, HTTP 429 with ``Retry-After`` seconds.

Orders are returned both parsed and as the exact bytes they had inside the response, because
connectors publish records unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.rawjson import array_items
from ordertwin.settings import Settings

SOURCE = "shopify"
MAX_LIMIT = 250
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"


def to_shopify_time(moment: datetime) -> str:
    """Aware datetime -> ISO-8601 with offset, whole seconds (``2026-11-11T01:00:00+00:00``)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_shopify_time(text: str) -> datetime:
    """ISO-8601 with offset (Shopify prints ``-05:00`` or ``Z``, and up to nanoseconds in
    ``X-Shopify-Triggered-At``) -> aware datetime; ValueError if unreadable or naive."""
    value = _FRACTION.sub(r"\1", text.strip())
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return parsed


def order_key(order: Any) -> bytes | None:
    """Kafka key of a raw order: its ``id`` as text."""
    oid = order.get("id") if isinstance(order, Mapping) else None
    if isinstance(oid, bool) or not isinstance(oid, (int, str)) or not str(oid).strip():
        return None
    return str(oid).strip().encode("utf-8")


def order_updated(order: Any) -> datetime | None:
    value = order.get("updated_at") if isinstance(order, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return parse_shopify_time(value)
    except ValueError:
        return None


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([a-z]+)"?')


def parse_link(header: str | None) -> dict[str, str]:
    """``Link`` header -> {rel: url}."""
    return {rel: url for url, rel in _LINK.findall(header or "")}


def page_info_of(url: str | None) -> str | None:
    return URL(url).query.get("page_info") if url else None


@dataclass(frozen=True)
class OrdersPage:
    orders: list[Any]
    raw: list[bytes]
    next_page_info: str | None
    call_limit: str | None = None


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return json.dumps(errors, ensure_ascii=False)[:300] if errors is not None else str(doc)[:300]


class ShopifyClient:
    """Calls to one store's Admin REST API over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        api_version: str,
        access_token: str,
        timeout: float = 30.0,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._token = access_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> ShopifyClient:
        return cls(
            http,
            base_url=settings.shopify_base_url,
            api_version=settings.shopify_api_version,
            access_token=settings.shopify_access_token.get_secret_value(),
            timeout=settings.connector_http_timeout_s,
        )

    @property
    def orders_url(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}/orders.json"

    async def get_orders(
        self,
        updated_at_min: datetime,
        updated_at_max: datetime,
        *,
        limit: int = MAX_LIMIT,
        page_info: str | None = None,
    ) -> OrdersPage:
        """One page of orders updated in ``[updated_at_min, updated_at_max]`` (any status);
        with ``page_info`` the next page of the query that cursor belongs to."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}, got {limit}")
        params: dict[str, str]
        if page_info:
            params = {"limit": str(limit), "page_info": page_info}
        else:
            params = {
                "status": "any",
                "updated_at_min": to_shopify_time(updated_at_min),
                "updated_at_max": to_shopify_time(updated_at_max),
                "limit": str(limit),
            }
        headers = {ACCESS_TOKEN_HEADER: self._token, "Accept": "application/json"}
        try:
            async with self._http.get(self.orders_url, params=params, headers=headers, timeout=self._timeout) as resp:
                status = resp.status
                body = await resp.read()
                link = resp.headers.get("Link")
                retry_after = resp.headers.get("Retry-After")
                call_limit = resp.headers.get(CALL_LIMIT_HEADER)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"orders.json: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise RateLimited(
                SOURCE,
                f"orders.json: HTTP 429 ({call_limit or '?'}) {_error_text(body)}",
                retry_after=wait,
                http_status=429,
            )
        if status >= 500:
            raise TransientError(SOURCE, f"orders.json: HTTP {status}", http_status=status)
        if status != 200:
            raise PermanentError(SOURCE, f"orders.json: HTTP {status}: {_error_text(body)}", http_status=status)
        try:
            text = body.decode("utf-8")
            doc = json.loads(text)
        except ValueError as exc:
            raise TransientError(SOURCE, f"orders.json: response is not JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("orders"), list):
            raise PermanentError(SOURCE, "orders.json: response has no 'orders' array")
        try:
            items = array_items(text, ("orders",))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice orders out of the response: {exc}") from exc
        if len(items) != len(doc["orders"]):
            raise PermanentError(SOURCE, f"found {len(items)} raw orders but the response lists {len(doc['orders'])}")
        return OrdersPage(
            orders=[value for _, value in items],
            raw=[raw.encode("utf-8") for raw, _ in items],
            next_page_info=page_info_of(parse_link(link).get("next")),
            call_limit=call_limit,
        )
