"""Taobao Open Platform (TOP) HTTP client: signing, system parameters, error mapping.

HTTP only: no Kafka, no cursors. The one business call we need is
``taobao.trades.sold.increment.get`` (trades of the session's seller whose ``modified`` time is
in ``[start_modified, end_modified]``, span at most one day, ``page_size`` 1..100,
``use_has_next=true`` replaces ``total_results`` by ``has_next``).

TOP prints every time as ``YYYY-MM-DD HH:MM:SS`` in Beijing time (Asia/Shanghai, UTC+8);
:func:`to_top_time` / :func:`from_top_time` convert at this edge so the rest of ordertwin only
sees timezone-aware datetimes.

Each trade is returned both parsed and as the exact bytes it had inside the response, because
connectors publish records unchanged.
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
from connectors.rawjson import array_items
from connectors.taobao import signing
from ordertwin.settings import Settings

SOURCE = "taobao"
CHINA_TZ = ZoneInfo("Asia/Shanghai")
TOP_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
METHOD_TRADES_SOLD_INCREMENT_GET = "taobao.trades.sold.increment.get"
RESPONSE_KEY = "trades_sold_increment_get_response"
MAX_PAGE_SIZE = 100

# Trade fields we ask for ("orders" returns every Order field). Names as in TOP's Trade/Order.
TRADE_FIELDS: tuple[str, ...] = (
    "tid",
    "status",
    "type",
    "step_trade_status",
    "step_paid_fee",
    "payment",
    "total_fee",
    "post_fee",
    "discount_fee",
    "adjust_fee",
    "created",
    "pay_time",
    "modified",
    "consign_time",
    "end_time",
    "seller_nick",
    "buyer_nick",
    "buyer_open_uid",
    "title",
    "trade_from",
    "shipping_type",
    "receiver_name",
    "receiver_mobile",
    "receiver_phone",
    "receiver_state",
    "receiver_city",
    "receiver_district",
    "receiver_town",
    "receiver_address",
    "receiver_zip",
    "oaid",
    "has_buyer_message",
    "orders",
)


# The ``type`` filter. Without it TOP returns only "guarantee_trade,auto_delivery,ec,cod,step"
# (its documented default), silently skipping e.g. Tmall Global (tmall_i18n) trades, so we
# always send the full list of documented trade types.
TRADE_TYPES: tuple[str, ...] = (
    "fixed", "auction", "guarantee_trade", "step", "independent_simple_trade",
    "independent_shop_trade", "auto_delivery", "ec", "cod", "game_equipment", "shopex_trade",
    "netcn_trade", "external_trade", "instant_trade", "b2c_cod", "hotel_trade",
    "super_market_trade", "super_market_cod_trade", "taohua", "waimai", "o2o_offlinetrade",
    "nopaid", "eticket", "tmall_i18n", "insurance_plus", "finance", "pre_auth_type",
)  # fmt: skip


def to_top_time(moment: datetime) -> str:
    """Aware datetime -> TOP's Beijing-time text."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return moment.astimezone(CHINA_TZ).strftime(TOP_TIME_FORMAT)


def from_top_time(text: str) -> datetime:
    """TOP's Beijing-time text -> aware datetime (Asia/Shanghai)."""
    return datetime.strptime(text, TOP_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def trade_modified(trade: Any) -> datetime | None:
    """The trade's ``modified`` time, or None if absent or unreadable."""
    value = trade.get("modified") if isinstance(trade, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return from_top_time(value)
    except ValueError:
        return None


def trade_key(trade: Any) -> bytes | None:
    """Kafka key of a raw trade: its ``tid`` as text; None when there is no usable tid."""
    tid = trade.get("tid") if isinstance(trade, Mapping) else None
    if isinstance(tid, bool) or tid is None:
        return None
    text = str(tid).strip() if isinstance(tid, (int, str)) else ""
    return text.encode("utf-8") if text else None


# --- errors ----------------------------------------------------------------------------

_BAN = re.compile(r"ban will last for (\d+(?:\.\d+)?) more seconds", re.IGNORECASE)


def classify_error(error: Mapping[str, Any], *, http_status: int | None = None) -> PlatformError:
    """Map a TOP ``error_response`` to a retryable or permanent error.

    * code 7 "App Call Limited" and the flow-control sub codes (``accesscontrol.limited-by-*``,
      ``isv.access-limited-by-*``, ``*-service-rejection``, ``*call-limited*``): RateLimited,
      honouring "This ban will last for N more seconds".
    * code 10 "Service Currently Unavailable", any ``isp.*`` sub code (platform-side, e.g.
      ``isp.top-remote-connection-timeout``) and code 15 "Remote service error" without an
      ``isv.*`` sub code: TransientError.
    * everything else, e.g. 25 "Invalid Signature", 27 "Invalid Session", 41 "Invalid
      Arguments", ``isv.*`` sub codes: PermanentError.
    """
    code = str(error.get("code", "")).strip()
    sub_code = str(error.get("sub_code") or "").strip()
    msg = str(error.get("msg") or "").strip()
    sub_msg = str(error.get("sub_msg") or "").strip()
    text = f"{msg} ({sub_msg})" if sub_msg else (msg or "TOP error")
    kw: dict[str, Any] = {"code": code or None, "sub_code": sub_code or None, "http_status": http_status}
    sub = sub_code.lower()
    if (
        code == "7"
        or sub.startswith("accesscontrol.")
        or "limited-by-" in sub
        or sub.endswith("-service-rejection")
        or "call-limited" in sub
    ):
        ban = _BAN.search(sub_msg) or _BAN.search(msg)
        return RateLimited(SOURCE, text, retry_after=float(ban.group(1)) if ban else None, **kw)
    if code == "10" or sub.startswith("isp.") or (code == "15" and not sub.startswith("isv.")):
        return TransientError(SOURCE, text, **kw)
    return PermanentError(SOURCE, text, **kw)


@dataclass(frozen=True)
class TradePage:
    """One page of ``taobao.trades.sold.increment.get``."""

    trades: list[Any]  # parsed trades (normally dicts; kept as-is when malformed)
    raw: list[bytes]  # each trade's exact bytes as they appeared in the response
    has_next: bool
    request_id: str | None = None


def _wire(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class TaobaoClient:
    """Signed calls to the TOP gateway over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        session_key: str,
        sign_method: str = "md5",
        fields: Sequence[str] = TRADE_FIELDS,
        trade_types: Sequence[str] = TRADE_TYPES,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if sign_method not in signing.SIGN_METHODS:
            raise ValueError(f"unknown TOP sign_method {sign_method!r}; known: {', '.join(signing.SIGN_METHODS)}")
        self._http = http
        self.base_url = base_url
        self.app_key = app_key
        self._secret = app_secret
        self._session_key = session_key
        self.sign_method = sign_method
        self.fields = tuple(fields)
        self.trade_types = tuple(trade_types)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> TaobaoClient:
        return cls(
            http,
            base_url=settings.taobao_base_url,
            app_key=settings.taobao_app_key,
            app_secret=settings.taobao_app_secret.get_secret_value(),
            session_key=settings.taobao_session.get_secret_value(),
            sign_method=settings.taobao_sign_method,
            timeout=settings.connector_http_timeout_s,
        )

    def signed_params(self, method: str, params: Mapping[str, str | int | bool | None]) -> dict[str, str]:
        """System + business parameters with ``sign``, as sent in the form body."""
        values: dict[str, str] = {
            "method": method,
            "app_key": self.app_key,
            "session": self._session_key,
            "timestamp": to_top_time(self._clock()),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        for name, value in params.items():
            if value is not None:
                values[name] = _wire(value)
        values["sign"] = signing.sign(values, self._secret, self.sign_method)
        return values

    async def call(self, method: str, params: Mapping[str, str | int | bool | None]) -> tuple[str, dict[str, Any]]:
        """POST one signed call; return the JSON text of a successful answer and its parse.

        Raises TransientError (network, timeout, 5xx, unreadable body), RateLimited (HTTP 429
        or a TOP flow-control error) or PermanentError (other 4xx, other TOP errors).
        """
        form = self.signed_params(method, params)
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

    async def trades_sold_increment_get(
        self,
        start_modified: datetime,
        end_modified: datetime,
        page_no: int = 1,
        page_size: int = MAX_PAGE_SIZE,
    ) -> TradePage:
        """Trades modified in ``[start_modified, end_modified]`` (aware datetimes), one page."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if page_no < 1:
            raise ValueError(f"page_no must be >= 1, got {page_no}")
        text, doc = await self.call(
            METHOD_TRADES_SOLD_INCREMENT_GET,
            {
                "fields": ",".join(self.fields),
                "start_modified": to_top_time(start_modified),
                "end_modified": to_top_time(end_modified),
                "type": ",".join(self.trade_types) or None,
                "page_no": page_no,
                "page_size": page_size,
                "use_has_next": True,
            },
        )
        body = doc.get(RESPONSE_KEY)
        if not isinstance(body, dict):
            raise PermanentError(SOURCE, f"response has no {RESPONSE_KEY!r} object")
        try:
            items = array_items(text, (RESPONSE_KEY, "trades", "trade"))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice trades out of the response: {exc}") from exc
        trades_obj = body.get("trades")
        parsed = trades_obj.get("trade") if isinstance(trades_obj, dict) else None
        expected = len(parsed) if isinstance(parsed, list) else 0
        if expected != len(items):
            raise PermanentError(SOURCE, f"found {len(items)} raw trades but the response lists {expected}")
        has_next_value = body.get("has_next")
        if isinstance(has_next_value, bool):
            has_next = has_next_value
        elif isinstance(has_next_value, str):
            has_next = has_next_value.lower() == "true"
        else:  # a gateway that ignores use_has_next still tells total_results
            total = body.get("total_results")
            has_next = isinstance(total, int) and page_no * page_size < total
        request_id = body.get("request_id")
        return TradePage(
            trades=[value for _, value in items],
            raw=[raw.encode("utf-8") for raw, _ in items],
            has_next=has_next,
            request_id=request_id if isinstance(request_id, str) else None,
        )
