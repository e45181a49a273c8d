"""HTTP client of ordertwin's ledger query API - and the API contract itself.

There is no public standard for reading an ERP's finance vouchers, so ordertwin defines the
small API below; a merchant's finance team implements it over its ledger (one posting per
voucher entry, the JSON object documented in :mod:`streams.normalise.sources.finance`), and
the connector pulls it like any platform. It is modelled on Alipay's 账务明细查询
``alipay.data.bill.accountlog.query`` (https://docs.open.alipay.com/api_15/alipay.data.bill.accountlog.query/),
the bill API finance teams already reconcile against; differences are listed at the end.

Request
-------
``GET {finance_base_url}/v1/postings?posted_from=...&posted_to=...&page_size=...&page_token=...``

* ``posted_from`` (required): inclusive lower bound of ``posted_at``;
* ``posted_to`` (required): *exclusive* upper bound - the window is ``[posted_from,
  posted_to)``, left-closed right-open as Alipay's ``start_time``/``end_time``;
  both as ``yyyy-MM-dd HH:mm:ss`` in Beijing time (UTC+8), the format of ``posted_at``
  itself (and of Alipay's times), so the server compares like with like;
  ``posted_from < posted_to`` and ``posted_to - posted_from <= 31 days`` (Alipay's limit,
  "与起始时间间隔不超过31天");
* ``page_size`` (optional, 1..500, default 200);
* ``page_token`` (optional): the ``next_page_token`` of the previous page of the same query
  (same ``posted_from``/``posted_to``); absent for the first page.

Every request carries ``Authorization: OT-HMAC-SHA256 key_id=...,timestamp=...,nonce=...,
signature=...`` (:mod:`connectors.finance.signing`: HMAC-SHA256 over method, path, canonical
query, timestamp and nonce; timestamps within 5 minutes; nonces single-use).

Response
--------
``200``, ``Content-Type: application/json; charset=utf-8``::

    {"detail_list": [<posting>, ...], "page_size": 200, "next_page_token": "..." | null}

* postings are ordered by ``(posted_at, voucher_no, entry_no)`` ascending, a total order;
* ``next_page_token`` is opaque and marks a *keyset position* (the last posting returned),
  not an offset: the next page holds the postings after that position, so postings booked
  meanwhile never shift one across a page boundary; it is ``null`` on the last page, and only
  the last page may be empty;
* postings are **immutable**: a correction is a new posting (a new voucher entry), never an
  edit, so a posting's bytes are the same in every answer;
* a posting becomes visible at most a few seconds after its ``posted_at`` (the connector's
  ``pull_safety_lag_s`` plus ``pull_overlap_s`` must cover the ledger's commit delay: a voucher
  committed later than that, dated earlier, is not seen).

Errors: a JSON body ``{"code": "...", "message": "..."}`` (as WeChat Pay APIv3 errors) with

* ``400 PARAM_ERROR`` (missing/invalid parameter, window over 31 days, page size) or
  ``INVALID_PAGE_TOKEN``; ``401 UNAUTHORIZED``, ``UNKNOWN_KEY``, ``SIGN_ERROR``,
  ``TIMESTAMP_EXPIRED`` or ``NONCE_REPLAYED``: our request is wrong - the connector stops
  (``PermanentError``), except a replayed nonce (a proxy resent our request; the next
  attempt has a new nonce);
* ``429 FREQUENCY_LIMITED`` with ``Retry-After`` (seconds or an HTTP date): waited out;
* ``5xx`` (any body): retried with backoff, as are timeouts and broken connections.

Differences from Alipay's accountlog query, and why
----------------------------------------------------
* REST ``GET`` + HMAC shared secret instead of the ``gateway.do`` method envelope with RSA2
  keys: an internal ledger service is simpler to secure and debug that way.
* Keyset ``page_token`` instead of ``page_no``: offset paging over a list that grows while it
  is read (late-committed vouchers) can skip or repeat a posting at a page boundary.
* ``page_size`` 1..500 (default 200) instead of 1000..2000: smaller answers keep one call
  well under the connector's HTTP timeout on a busy ledger database.
* Postings are ordertwin's posting objects (the channel order, biz type, amount, provider
  trade number), not Alipay's account-log lines; no ``total_size``, which keyset paging does
  not need and a ledger would have to count.

This module is HTTP only (no Kafka, no cursors); each posting is returned parsed and as the
exact bytes it had in the response (:func:`connectors.rawjson.array_items`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from connectors.errors import PermanentError, PlatformError, RateLimited, TransientError
from connectors.finance import signing
from connectors.rawjson import array_items
from connectors.scenario.payloads import finance_key
from ordertwin.settings import Settings

SOURCE = "finance"
POSTINGS_PATH = "/v1/postings"
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")  # Beijing time, no DST
LEDGER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_WINDOW = timedelta(days=31)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 200
LIST_FIELD = "detail_list"

# Error codes whose retry (with a fresh nonce and timestamp) can succeed.
RETRYABLE_CODES = frozenset({"NONCE_REPLAYED"})


def to_ledger_time(moment: datetime) -> str:
    """Aware datetime -> ``yyyy-MM-dd HH:mm:ss`` Beijing time (sub-seconds dropped)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; pass timezone-aware times")
    return moment.astimezone(CHINA_TZ).strftime(LEDGER_TIME_FORMAT)


def from_ledger_time(text: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` Beijing time -> aware datetime."""
    return datetime.strptime(text, LEDGER_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def ceil_second(moment: datetime) -> datetime:
    """Round up to a whole second (an exclusive bound must not shrink when printed)."""
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def posting_time(posting: Any) -> datetime | None:
    """A posting's ``posted_at``, or None if absent or unreadable."""
    value = posting.get("posted_at") if isinstance(posting, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return from_ledger_time(value)
    except ValueError:
        return None


def posting_key(posting: Any) -> bytes | None:
    """Kafka key of a raw posting: ``<voucher_no>/<entry_no>`` (the scenario's ``finance_key``);
    None when either part is missing or not an id."""
    if not isinstance(posting, Mapping):
        return None
    voucher, entry = posting.get("voucher_no"), posting.get("entry_no")
    for part in (voucher, entry):
        if isinstance(part, bool) or not isinstance(part, (str, int)) or not str(part).strip():
            return None
    return finance_key({"voucher_no": voucher, "entry_no": entry})


# --- errors ------------------------------------------------------------------------------


def _error_fields(body: bytes) -> tuple[str | None, str]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None, body[:200].decode("utf-8", "replace").strip()
    if not isinstance(doc, dict):
        return None, str(doc)[:200]
    code = doc.get("code")
    return (str(code) if code is not None else None), str(doc.get("message") or "")[:300]


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP date (RFC 9110 10.2.3); None if absent/unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def classify(status: int, body: bytes, *, retry_after: float | None = None) -> PlatformError:
    """Map a non-200 answer to an error kind (see the module docstring)."""
    code, message = _error_fields(body)
    text = f"{POSTINGS_PATH}: HTTP {status}" + (f" {message}" if message else "")
    if status == 429:
        return RateLimited(SOURCE, text, retry_after=retry_after, code=code, http_status=status)
    if status >= 500 or status == 408 or code in RETRYABLE_CODES:
        return TransientError(SOURCE, text, code=code, http_status=status)
    return PermanentError(SOURCE, text, code=code, http_status=status)


# --- the client --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostingPage:
    """One page of ``GET /v1/postings``."""

    postings: list[Any]  # parsed postings (normally dicts; kept as-is when malformed)
    raw: list[bytes]  # each posting's exact bytes as they appeared in the response
    next_page_token: str | None

    @property
    def has_next(self) -> bool:
        return self.next_page_token is not None


def new_nonce() -> str:
    return secrets.token_hex(16)


class FinanceClient:
    """Signed calls to the ledger query API over a caller-owned :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._http = http
        self.base_url = base_url
        self.url = URL(base_url.rstrip("/") + POSTINGS_PATH)
        self.api_key = api_key
        self._secret = api_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._nonce = nonce

    @classmethod
    def from_settings(cls, http: aiohttp.ClientSession, settings: Settings) -> FinanceClient:
        return cls(
            http,
            base_url=settings.finance_base_url,
            api_key=settings.finance_api_key,
            api_secret=settings.finance_api_secret.get_secret_value(),
            timeout=settings.connector_http_timeout_s,
        )

    def signed_request(self, params: Mapping[str, str]) -> tuple[URL, dict[str, str]]:
        """The exact URL (query in canonical form) and headers of one signed GET."""
        query = signing.canonical_query(params)
        timestamp = str(int(self._clock().timestamp()))
        auth = signing.authorization(
            self.api_key, self._secret, "GET", self.url.raw_path, params, timestamp=timestamp, nonce=self._nonce()
        )
        url = URL(f"{self.url}?{query}", encoded=True) if query else self.url
        return url, {"Authorization": auth, "Accept": "application/json"}

    async def get(self, params: Mapping[str, str]) -> str:
        """One signed GET; the JSON text of a 200 answer, or a :class:`PlatformError`."""
        url, headers = self.signed_request(params)
        try:
            async with self._http.get(url, headers=headers, timeout=self._timeout, allow_redirects=False) as resp:
                status = resp.status
                body = await resp.read()
                retry_after = resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(SOURCE, f"{POSTINGS_PATH}: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise classify(status, body, retry_after=retry_after_seconds(retry_after, self._clock()))
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:  # a garbled body: a proxy or gateway hiccup
            raise TransientError(SOURCE, f"{POSTINGS_PATH}: response is not UTF-8 ({exc})") from exc

    async def postings(
        self,
        posted_from: datetime,
        posted_to: datetime,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
    ) -> PostingPage:
        """Postings with ``posted_from <= posted_at < posted_to`` (aware datetimes), oldest
        first, one page. ``posted_to`` is rounded up to a whole second, ``posted_from`` down."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        params = {
            "posted_from": to_ledger_time(posted_from),
            "posted_to": to_ledger_time(ceil_second(posted_to)),
            "page_size": str(page_size),
        }
        if page_token is not None:
            params["page_token"] = page_token
        text = await self.get(params)
        try:
            doc = json.loads(text)
        except ValueError as exc:  # truncated body: a gateway hiccup
            raise TransientError(SOURCE, f"{POSTINGS_PATH}: response is not JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get(LIST_FIELD), list):
            raise PermanentError(SOURCE, f"{POSTINGS_PATH}: response has no {LIST_FIELD!r} array")
        token = doc.get("next_page_token")
        if token is not None and (not isinstance(token, str) or not token):
            raise PermanentError(SOURCE, f"{POSTINGS_PATH}: next_page_token is not a string: {token!r:.40}")
        try:
            items = array_items(text, (LIST_FIELD,))
        except ValueError as exc:
            raise PermanentError(SOURCE, f"cannot slice postings out of the response: {exc}") from exc
        if len(items) != len(doc[LIST_FIELD]):
            raise PermanentError(
                SOURCE, f"found {len(items)} raw postings but the response lists {len(doc[LIST_FIELD])}"
            )
        return PostingPage(
            postings=[value for _, value in items],
            raw=[raw.encode("utf-8") for raw, _ in items],
            next_page_token=token,
        )
