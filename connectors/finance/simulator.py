"""An in-process ledger query API (:mod:`connectors.finance.client` documents the contract).

Faithful where the connector depends on it: ``GET /v1/postings`` with the HMAC-SHA256
``Authorization`` header (unknown key, stale timestamp, bad signature and replayed nonce are
refused with 401 and the documented codes), ``posted_from``/``posted_to`` in Beijing time
with ``[from, to)`` semantics and the 31-day limit, ``page_size`` 1..500, postings ordered by
``(posted_at, voucher_no, entry_no)`` and paged by a keyset ``page_token`` bound to its query,
``{"detail_list": [...], "page_size": n, "next_page_token": ...}``, and error bodies
``{"code", "message"}``. Postings are immutable: the store refuses to change one.

Fault knobs (:class:`FaultConfig`, all off by default, counted per call): HTTP 429 with
``Retry-After``, HTTP 500, slow answers (a client with a shorter timeout sees a timeout);
on continuation pages, the page starting one posting early (the previous page's last posting
again: a duplicate across pages); and late postings - when a new query starts (a first page),
a posting is first committed dated 1-3 s before the furthest ``posted_to`` of a query already
answered to its last page, i.e. inside a window the connector has pulled: only the window
overlap brings it back.

Scenario mode (``make run``): records of a generated scenario are listed once the platform
clock reaches their time (their ``posted_at``); during an outage of source ``finance`` every
call answers HTTP 503.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiohttp import web

from connectors.finance import signing
from connectors.finance.client import (
    CHINA_TZ,
    DEFAULT_PAGE_SIZE,
    LIST_FIELD,
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    POSTINGS_PATH,
    SOURCE,
    from_ledger_time,
    posting_key,
    posting_time,
    to_ledger_time,
)
from connectors.scenario.model import Outage, ScenarioRecord
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

PARAMETERS = frozenset({"posted_from", "posted_to", "page_size", "page_token"})
CENT = Decimal("0.01")


def utc_now() -> datetime:
    return datetime.now(UTC)


def serialise(posting: Mapping[str, Any]) -> bytes:
    """How the simulator writes a posting: compact UTF-8 JSON, key order kept."""
    return json.dumps(posting, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the ledger ----------------------------------------------------------------------------

SortKey = tuple[datetime, str, int]


@dataclass(frozen=True)
class StoredPosting:
    key: str  # voucher_no/entry_no
    posted_at: datetime
    sort: SortKey  # (posted_at, voucher_no, entry_no): the API's total order
    raw: bytes


def _sort_key(posting: Mapping[str, Any], posted_at: datetime) -> SortKey:
    entry = posting.get("entry_no")
    if isinstance(entry, bool) or not isinstance(entry, (int, str)) or not str(entry).strip().isdigit():
        raise ValueError(f"posting entry_no {entry!r:.20} is not a whole number")
    return (posted_at, str(posting.get("voucher_no")), int(str(entry)))


class PostingStore:
    """The ledger's postings by key; immutable once booked (a correction is a new posting)."""

    def __init__(self) -> None:
        self._postings: dict[str, StoredPosting] = {}
        self._ordered: list[tuple[SortKey, str]] = []

    def __len__(self) -> int:
        return len(self._postings)

    def __iter__(self) -> Iterator[StoredPosting]:
        return iter(self._postings.values())

    def add_raw(self, raw: bytes) -> StoredPosting:
        """Book a posting given as its exact bytes; re-booking the same bytes is a no-op."""
        posting = json.loads(raw)
        key, posted_at = posting_key(posting), posting_time(posting)
        if key is None or posted_at is None:
            raise ValueError("posting needs voucher_no, entry_no and a readable posted_at")
        stored = StoredPosting(key.decode("utf-8"), posted_at, _sort_key(posting, posted_at), raw)
        existing = self._postings.get(stored.key)
        if existing is not None:
            if existing.raw != raw:
                raise ValueError(f"posting {stored.key} is immutable; book a correcting posting instead")
            return existing
        self._postings[stored.key] = stored
        bisect.insort(self._ordered, (stored.sort, stored.key))
        return stored

    def add(self, posting: Mapping[str, Any]) -> StoredPosting:
        return self.add_raw(serialise(posting))

    def add_many(self, postings: Iterable[Mapping[str, Any]]) -> None:
        for posting in postings:
            self.add(posting)

    def get(self, key: str) -> StoredPosting | None:
        return self._postings.get(key)

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: p.raw for k, p in self._postings.items()}

    def query(self, start: datetime, end: datetime, after: SortKey | None = None) -> list[StoredPosting]:
        """Postings with ``start <= posted_at < end`` (and after the keyset position), in order."""
        lo = bisect.bisect_left(self._ordered, ((start, "", -1), ""))
        out = []
        for sort, key in self._ordered[lo:]:
            if sort[0] >= end:
                break
            if after is None or sort > after:
                out.append(self._postings[key])
        return out


# --- realistic generated postings ----------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    name: str
    weight: int
    ledger_name: str  # the receivable sub-account's name
    currencies: tuple[str, ...]
    providers: tuple[str, ...]


CHANNELS: tuple[Channel, ...] = (
    Channel("taobao", 30, "淘宝", ("CNY",), ("ALIPAY",)),
    Channel("jd", 18, "京东", ("CNY",), ("WECHATPAY", "JDPAY")),
    Channel("pdd", 16, "拼多多", ("CNY",), ("WECHATPAY", "ALIPAY")),
    Channel("douyin", 12, "抖店", ("CNY",), ("DOUYINPAY", "ALIPAY", "WECHATPAY")),
    Channel("kuaishou", 8, "快手", ("CNY",), ("WECHATPAY", "ALIPAY")),
    Channel("shopee", 8, "Shopee", ("SGD", "MYR", "THB", "PHP"), ("SHOPEEPAY",)),
    Channel("shopify", 8, "Shopify", ("USD", "EUR", "GBP"), ("SHOPIFY_PAYMENTS",)),
)
PRICES: dict[str, tuple[str, ...]] = {
    "CNY": ("9.90", "39.00", "89.00", "129.00", "257.00", "299.00", "459.00", "899.00"),
    "SGD": ("12.90", "25.90", "49.00", "119.00"),
    "MYR": ("29.90", "59.00", "149.00"),
    "THB": ("199.00", "459.00", "1290.00"),
    "PHP": ("499.00", "899.00", "2490.00"),
    "USD": ("19.99", "59.97", "129.00"),
    "EUR": ("24.90", "79.00"),
    "GBP": ("19.00", "65.00"),
}
# biz_type of an order's later postings, after its payment: (kind, weight)
AFTERMATH: tuple[tuple[str, int], ...] = (("none", 72), ("refund", 12), ("partial", 12), ("chargeback", 4))


@dataclass(frozen=True)
class _Order:
    channel: Channel
    order_no: str
    currency: str
    payment: Decimal
    provider: str
    trade_no: str
    tmall: bool


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _order_no(channel: str, at: datetime, rng: random.Random) -> str:
    """A platform order number in the channel's own style."""
    local = at.astimezone(CHINA_TZ)
    if channel == "taobao":
        return "3" + _digits(rng, 18)
    if channel == "jd":
        return "30" + _digits(rng, 10)
    if channel == "pdd":
        return f"{local:%y%m%d}-{_digits(rng, 15)}"
    if channel == "douyin":
        return "69" + _digits(rng, 17)
    if channel == "kuaishou":
        return "23" + _digits(rng, 14)
    if channel == "shopee":
        return f"{local:%y%m%d}" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))
    return "5" + _digits(rng, 12)  # shopify order id


def _trade_no(provider: str, at: datetime, rng: random.Random) -> str:
    """The payment provider's transaction number (Alipay trade_no, WeChat transaction_id...)."""
    local = at.astimezone(CHINA_TZ)
    if provider == "ALIPAY":
        return f"{local:%Y%m%d}22001" + _digits(rng, 15)  # 28 digits
    if provider == "WECHATPAY":
        return "42000" + _digits(rng, 5) + f"{local:%Y%m%d}" + _digits(rng, 10)  # 28 digits
    return f"{provider[:2]}{local:%Y%m%d%H%M%S}" + _digits(rng, 10)


def _new_order(rng: random.Random, at: datetime) -> _Order:
    channel = rng.choices(CHANNELS, [c.weight for c in CHANNELS])[0]
    currency = rng.choice(channel.currencies)
    qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
    payment = Decimal(rng.choice(PRICES[currency])) * qty
    provider = rng.choice(channel.providers)
    return _Order(
        channel, _order_no(channel.name, at, rng), currency, payment, provider, _trade_no(provider, at, rng),
        tmall=channel.name == "taobao" and rng.random() < 0.3,
    )  # fmt: skip


def _posting(
    order: _Order,
    at: datetime,
    biz_type: str,
    amount: Decimal,
    memo: str,
    *,
    refund_no: str | None = None,
    order_amount: bool = False,
) -> dict[str, Any]:
    """One posting in ordertwin's contract; voucher_no/entry_no are filled in when booked."""
    ledger = "天猫" if order.tmall else order.channel.ledger_name
    doc: dict[str, Any] = {
        "voucher_no": "",
        "entry_no": 1,
        "biz_type": biz_type,
        "channel": order.channel.name,
        "platform_order_no": order.order_no,
        "amount": str(amount.quantize(CENT)),
        "currency": order.currency,
        "posted_at": to_ledger_time(at),
        "pay_provider": order.provider,
        "provider_trade_no": order.trade_no,
        "refund_no": refund_no,
        "account": f"1122-应收账款-{ledger}",
        "memo": memo,
    }
    if order_amount:
        doc["order_amount"] = str(order.payment.quantize(CENT))
    return doc


def _refund_no(at: datetime, rng: random.Random) -> str:
    return f"RF{at.astimezone(CHINA_TZ):%Y%m%d}{_digits(rng, 10)}"


def _order_postings(order: _Order, paid: datetime, end: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """An order's payment and what followed it (refunds, partial refunds, a chargeback)."""
    out = [_posting(order, paid, "PAYMENT_RECEIVED", order.payment, "订单收款")]
    kind = rng.choices([k for k, _ in AFTERMATH], [w for _, w in AFTERMATH])[0]
    later = paid + timedelta(seconds=rng.randint(600, 3 * 3600))
    if kind == "none" or later >= end:
        return out
    with_amount = rng.random() < 0.8
    if kind == "refund":
        out.append(
            _posting(
                order, later, "REFUND_POSTED", order.payment, "全额退款",
                refund_no=_refund_no(later, rng), order_amount=with_amount,
            )
        )  # fmt: skip
    elif kind == "partial":
        left = order.payment
        for i in range(rng.choices((1, 2), (75, 25))[0]):
            part = (order.payment * Decimal(rng.randint(15, 40)) / 100).quantize(CENT, rounding=ROUND_DOWN)
            if part <= 0 or part >= left:
                break
            left -= part
            at = later + timedelta(seconds=i * rng.randint(300, 1800))
            if at >= end:
                break
            out.append(
                _posting(
                    order, at, "PARTIAL_REFUND", part, "部分退款",
                    refund_no=_refund_no(at, rng), order_amount=with_amount,
                )
            )  # fmt: skip
    else:
        full = rng.random() < 0.6
        amount = order.payment if full else (order.payment / 2).quantize(CENT, rounding=ROUND_DOWN)
        out.append(_posting(order, later, "CHARGEBACK", amount, "投诉退款(拒付)", order_amount=True))
    return out


def _book(events: list[dict[str, Any]], rng: random.Random, *, prefix: str = "JZ") -> list[dict[str, Any]]:
    """Number vouchers in time order; payments booked within a minute of each other are
    sometimes batched into one voucher (entries 1, 2, 3 at the first one's second)."""
    events.sort(key=lambda d: d["posted_at"])
    seq = 0
    i = 0
    while i < len(events):
        seq += 1
        first = events[i]
        month = from_ledger_time(first["posted_at"]).strftime("%Y%m")
        voucher = f"{prefix}-{month}-{seq:06d}"
        batch = [first]
        if first["biz_type"] == "PAYMENT_RECEIVED" and rng.random() < 0.15:
            limit = from_ledger_time(first["posted_at"]) + timedelta(seconds=60)
            while (
                len(batch) < 3
                and i + len(batch) < len(events)
                and events[i + len(batch)]["biz_type"] == "PAYMENT_RECEIVED"
                and from_ledger_time(events[i + len(batch)]["posted_at"]) <= limit
            ):
                batch.append(events[i + len(batch)])
        for entry, doc in enumerate(batch, start=1):
            doc["voucher_no"] = voucher
            doc["entry_no"] = entry
            doc["posted_at"] = first["posted_at"]
        i += len(batch)
    events.sort(key=lambda d: (d["posted_at"], d["voucher_no"], d["entry_no"]))
    return events


def generate_postings(n: int, *, seed: int, start: datetime, end: datetime | None = None) -> list[dict[str, Any]]:
    """``n`` realistic postings with ``posted_at`` in ``[start, end)`` (default 6 hours):
    payments on every channel, full and partial refunds, chargebacks, batched vouchers."""
    end = end or start + timedelta(hours=6)
    if end <= start:
        raise ValueError("end must be after start")
    rng = random.Random(seed)
    span = int((end - start).total_seconds())
    events: list[dict[str, Any]] = []
    while len(events) < n:
        paid = start + timedelta(seconds=rng.randrange(max(1, span)))
        events.extend(_order_postings(_new_order(rng, paid), paid, end, rng))
    # Keep the earliest n: a refund is never kept without the payment it refunds.
    events.sort(key=lambda d: d["posted_at"])
    return _book(events[:n], rng)


def late_posting(at: datetime, number: int, rng: random.Random) -> dict[str, Any]:
    """A payment committed late (voucher ``LZ-...``, its own series, so keys never collide)."""
    order = _new_order(rng, at)
    doc = _posting(order, at, "PAYMENT_RECEIVED", order.payment, "订单收款(补录)")
    doc["voucher_no"] = f"LZ-{at.astimezone(CHINA_TZ):%Y%m}-{number:06d}"
    return doc


class ApiError(Exception):
    """An API error answer: HTTP status and the body's ``code``/``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- page tokens ---------------------------------------------------------------------------


def encode_token(posted_from: str, posted_to: str, last: StoredPosting) -> str:
    """Opaque keyset position: the query it belongs to and the last posting returned."""
    doc = {"f": posted_from, "t": posted_to, "a": [to_ledger_time(last.sort[0]), last.sort[1], last.sort[2]]}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, posted_from: str, posted_to: str) -> SortKey:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        at, voucher, entry = doc["a"]
        position: SortKey = (from_ledger_time(at), str(voucher), int(entry))
        same_query = doc["f"] == posted_from and doc["t"] == posted_to
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "INVALID_PAGE_TOKEN", "page_token is not one this API issued") from None
    if not same_query:
        raise ApiError(400, "INVALID_PAGE_TOKEN", "page_token belongs to another posted_from/posted_to")
    return position


# --- the API -------------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted per call (1-based); 0 = off."""

    http_429_every: int = 0  # 429 FREQUENCY_LIMITED with Retry-After
    retry_after_s: int = 1
    error_500_every: int = 0
    slow_every: int = 0  # delay the answer by slow_seconds
    slow_seconds: float = 0.0
    duplicate_every: int = 0  # a continuation page starts one posting early
    late_every: int = 0  # on first pages: first book a posting dated inside a window pulled to its end
    late_by_s: tuple[int, ...] = (1, 2, 3)  # seconds before the pulled window's end, cycled
    max_late: int = 0  # 0 = unlimited


def _json(doc: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


@dataclass
class FinanceSimulator:
    """The API's state: credentials, postings, faults, and counters of what it answered."""

    api_key: str
    api_secret: str
    store: PostingStore = field(default_factory=PostingStore)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], datetime] = utc_now  # the ledger's time: scenario releases, outages
    wall: Callable[[], datetime] = utc_now  # what request timestamps are checked against
    seed: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    late_keys: list[str] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)  # valid query parameters, in order

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._pending: list[tuple[datetime, int, bytes]] = []  # scenario records not yet listed
        self._scheduled = 0
        self._nonces: dict[tuple[str, str], datetime] = {}
        self.pulled_to: datetime | None = None  # furthest posted_to answered to its last page

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> FinanceSimulator:
        return cls(api_key=settings.finance_api_key, api_secret=settings.finance_api_secret.get_secret_value(), **kw)

    # -- scenario -----------------------------------------------------------------------
    def schedule(self, records: Sequence[ScenarioRecord]) -> None:
        """List each record (its exact bytes) once the clock reaches ``at``, which must be the
        posting's ``posted_at`` and whose key must be its ``voucher_no/entry_no``."""
        for record in records:
            if record.source != SOURCE:
                raise ValueError(f"record of source {record.source!r} given to the {SOURCE} simulator")
            posting = json.loads(record.value)
            if posting_key(posting) != record.key or posting_time(posting) != record.at:
                raise ValueError(f"record {record.key!r}: payload key/posted_at disagree with key/at ({record.at})")
            self._scheduled += 1  # ties on ``at`` keep the scenario's order
            bisect.insort(self._pending, (record.at, self._scheduled, record.value))

    def release(self) -> int:
        """Book every scheduled posting due by now; return how many."""
        now = self.clock()
        moved = 0
        while self._pending and self._pending[0][0] <= now:
            self.store.add_raw(self._pending.pop(0)[2])
            moved += 1
        return moved

    @property
    def pending(self) -> int:
        return len(self._pending)

    def in_outage(self) -> bool:
        now = self.clock()
        return any(o.covers(SOURCE, now) for o in self.outages)

    # -- HTTP ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(POSTINGS_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["calls"] += 1
        n = self.stats["calls"]
        self.release()
        if "page_token" not in request.query and self._should(self.faults.late_every, "first_pages"):
            # A new query: the windows before it have been pulled to their end. Booked on
            # arrival, before any slow answer, so a retry of this first page already sees it.
            self._book_late()
        if self.in_outage():
            self.stats["outage"] += 1
            return _json({"code": "SERVICE_UNAVAILABLE", "message": "ledger service unavailable"}, 503)
        f = self.faults
        if f.http_429_every and n % f.http_429_every == 0:
            self.stats["http_429"] += 1
            return _json(
                {"code": "FREQUENCY_LIMITED", "message": "too many requests"},
                429,
                headers={"Retry-After": str(f.retry_after_s)},
            )
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            return web.Response(
                status=500, text="<html><body>500 Internal Server Error</body></html>", content_type="text/html"
            )
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        params = list(request.query.items())
        try:
            self._authenticate(request, params)
            body = self._postings(dict(params), len(params))
        except ApiError as exc:
            self.stats[f"error_{exc.code}"] += 1
            return _json({"code": exc.code, "message": exc.message}, exc.status)
        self.stats["ok"] += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _authenticate(self, request: web.Request, params: list[tuple[str, str]]) -> None:
        now = self.wall()
        try:
            creds = signing.verify(
                request.method,
                request.rel_url.raw_path,
                params,
                request.headers.get("Authorization"),
                secret_for=lambda key_id: self.api_secret if key_id == self.api_key else None,
                now=now,
            )
        except signing.AuthError as exc:
            raise ApiError(401, exc.code, exc.message) from None
        horizon = now - 2 * signing.TIMESTAMP_TOLERANCE
        self._nonces = {k: t for k, t in self._nonces.items() if t >= horizon}
        seen = (creds.key_id, creds.nonce)
        if seen in self._nonces:
            raise ApiError(401, "NONCE_REPLAYED", "nonce already used")
        self._nonces[seen] = now

    def _postings(self, p: Mapping[str, str], n_params: int) -> bytes:
        unknown = sorted(set(p) - PARAMETERS)
        if unknown or n_params != len(p):
            raise ApiError(400, "PARAM_ERROR", f"unknown or repeated parameters: {', '.join(unknown) or 'repeated'}")
        for name in ("posted_from", "posted_to"):
            if not p.get(name):
                raise ApiError(400, "PARAM_ERROR", f"{name} is required")
        try:
            start, end = from_ledger_time(p["posted_from"]), from_ledger_time(p["posted_to"])
        except ValueError:
            raise ApiError(400, "PARAM_ERROR", "posted_from/posted_to must be yyyy-MM-dd HH:mm:ss") from None
        if end <= start:
            raise ApiError(400, "PARAM_ERROR", "posted_to must be after posted_from")
        if end - start > MAX_WINDOW:
            raise ApiError(400, "PARAM_ERROR", "posted_to - posted_from must not exceed 31 days")
        size_text = p.get("page_size", str(DEFAULT_PAGE_SIZE))
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            raise ApiError(400, "PARAM_ERROR", f"page_size must be 1..{MAX_PAGE_SIZE}")
        size = int(size_text)
        token = p.get("page_token")
        after = decode_token(token, p["posted_from"], p["posted_to"]) if token else None
        self.stats["queries"] += 1
        self.queries.append(dict(p))
        hits = self.store.query(start, end, after)
        page = hits[:size]
        more = len(hits) > size
        served = [s.raw for s in page]
        if after is not None and self._should(self.faults.duplicate_every, "continuations"):
            previous = self.store.query(start, end)
            again = [s for s in previous if s.sort == after]
            if again:
                served.insert(0, again[0].raw)
                self.stats["duplicated"] += 1
        next_token = encode_token(p["posted_from"], p["posted_to"], page[-1]) if more else None
        if not more:
            self.pulled_to = end if self.pulled_to is None else max(self.pulled_to, end)
        return (
            b'{"' + LIST_FIELD.encode() + b'":[' + b",".join(served) + b'],"page_size":' + str(size).encode()
            + b',"next_page_token":' + json.dumps(next_token).encode() + b"}"
        )  # fmt: skip

    def _should(self, every: int, counter: str) -> bool:
        self.stats[counter] += 1
        return bool(every) and self.stats[counter] % every == 0

    def _book_late(self) -> None:
        f = self.faults
        if self.pulled_to is None or (f.max_late and len(self.late_keys) >= f.max_late) or not f.late_by_s:
            return
        by = f.late_by_s[len(self.late_keys) % len(f.late_by_s)]
        at = self.pulled_to - timedelta(seconds=by)
        stored = self.store.add(late_posting(at, len(self.late_keys) + 1, self._rng))
        self.late_keys.append(stored.key)
        self.stats["late"] += 1


# --- running it ----------------------------------------------------------------------------


@dataclass
class RunningSimulator:
    """A simulator served by aiohttp in this process; ``url`` is the API root."""

    simulator: FinanceSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: FinanceSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start serving ``simulator`` (port 0 = an ephemeral port); close() the result to stop."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("finance simulator on http://%s:%s%s (%d postings)", host, bound, POSTINGS_PATH, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))


async def serve_scenario(
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    outages: Sequence[Outage] = (),
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunningSimulator:
    """Serve the finance share of a scenario in real time (contract: :mod:`connectors.registry`)."""
    simulator = FinanceSimulator.from_settings(
        settings, clock=clock, outages=[o for o in outages if o.source == SOURCE]
    )
    simulator.schedule(records)
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.finance_simulator_port if port is None else port,
    )
