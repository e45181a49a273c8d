"""An in-process TOP gateway for ``taobao.trades.sold.increment.get``, for tests and demos.

Faithful where the connector depends on it: form/query parameters, signature check (md5,
hmac, hmac-sha256) with TOP's error 25, app key / session / timestamp checks, trades filtered
by ``modified`` in ``[start_modified, end_modified]`` (Beijing time), newest first as TOP
documents, ``page_no``/``page_size`` (1..100, default 40), ``has_next`` with
``use_has_next=true`` (else ``total_results``), the one-day window limit, and TOP's error
envelope ``{"error_response": {...}}`` with HTTP 200.

Without a ``type`` parameter only TOP's default types (guarantee_trade = fixed + auction,
auto_delivery, ec, cod, step) are returned, as on the real platform.

Simplifications: JSON only; the ``fields`` parameter is required but not used to project
(every stored field is returned, so a trade's bytes are the same in every answer).

Fault knobs (all off by default): a TOP rate-limit error every N calls, HTTP 500 every M
calls, a slow answer every K calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.taobao import signing
from connectors.taobao.client import (
    METHOD_TRADES_SOLD_INCREMENT_GET,
    RESPONSE_KEY,
    from_top_time,
    to_top_time,
    trade_key,
    trade_modified,
)
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

GATEWAY_PATH = "/router/rest"
MAX_WINDOW = timedelta(days=1)
DEFAULT_PAGE_SIZE = 40
MAX_PAGE_SIZE = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


def serialise(trade: Mapping[str, Any]) -> bytes:
    """How the simulator writes a trade: compact UTF-8 JSON, key order kept."""
    return json.dumps(trade, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the trade store -----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredTrade:
    key: str  # tid as text, or a synthetic key for records without a usable tid
    modified: datetime
    raw: bytes
    trade_type: str = "fixed"


class TradeStore:
    """Current version of each trade (by tid), indexed by its ``modified`` time."""

    def __init__(self) -> None:
        self._trades: dict[str, StoredTrade] = {}
        self._anonymous = 0

    def __len__(self) -> int:
        return len(self._trades)

    def __iter__(self) -> Iterator[StoredTrade]:
        return iter(self._trades.values())

    def add(
        self, trade: Mapping[str, Any], *, modified: datetime | None = None, raw: bytes | None = None
    ) -> StoredTrade:
        """Store (or replace, by tid) a trade; any JSON object is accepted, even malformed ones.

        ``modified`` indexes the record when its own ``modified`` field is missing or bad;
        ``raw`` is the trade's exact bytes, served as given (default: serialised here).
        """
        when = modified or trade_modified(trade)
        if when is None:
            raise ValueError("trade has no readable 'modified'; pass modified= to index it")
        if when.tzinfo is None:
            raise ValueError(f"naive modified time {when!r}")
        key_bytes = trade_key(trade)
        if key_bytes is None:
            self._anonymous += 1
            key = f"~anonymous-{self._anonymous}"
        else:
            key = key_bytes.decode("utf-8")
        trade_type = trade.get("type")
        stored = StoredTrade(
            key=key,
            modified=when,
            raw=serialise(trade) if raw is None else raw,
            trade_type=trade_type if isinstance(trade_type, str) and trade_type else "fixed",
        )
        self._trades[key] = stored
        return stored

    def add_many(self, trades: Iterable[Mapping[str, Any]]) -> None:
        for trade in trades:
            self.add(trade)

    def add_raw(self, raw: bytes) -> StoredTrade:
        """Store a trade given as its exact JSON bytes (a scenario record's value)."""
        return self.add(json.loads(raw), raw=raw)

    def update(self, tid: int | str, changes: Mapping[str, Any], *, modified: datetime) -> StoredTrade:
        """Apply ``changes`` to a stored trade and bump its ``modified`` (as the platform does)."""
        current = self._trades[str(tid)]
        trade = json.loads(current.raw)
        trade.update(changes)
        trade["modified"] = to_top_time(modified)
        return self.add(trade)

    def get(self, tid: int | str) -> StoredTrade | None:
        return self._trades.get(str(tid))

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: t.raw for k, t in self._trades.items()}

    def query(self, start: datetime, end: datetime, types: Iterable[str] | None = None) -> list[StoredTrade]:
        """Trades with ``start <= modified <= end`` (of ``types``), newest first (TOP's order)."""
        wanted = expand_types(types)
        hits = [t for t in self._trades.values() if start <= t.modified <= end and t.trade_type in wanted]
        hits.sort(key=lambda t: (t.modified, t.key), reverse=True)
        return hits


# TOP: without ``type`` only these are returned; guarantee_trade = fixed + auction.
DEFAULT_TYPES: tuple[str, ...] = ("guarantee_trade", "auto_delivery", "ec", "cod", "step")


def expand_types(types: Iterable[str] | None) -> set[str]:
    wanted = set(DEFAULT_TYPES if types is None else types)
    if "guarantee_trade" in wanted:
        wanted |= {"fixed", "auction"}
    return wanted


# --- realistic generated trades -------------------------------------------------------------

# (status, weight). TOP Trade.status values.
STATUS_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("WAIT_BUYER_PAY", 12),
    ("TRADE_NO_CREATE_PAY", 2),
    ("PAY_PENDING", 1),
    ("WAIT_PRE_AUTH_CONFIRM", 1),
    ("WAIT_SELLER_SEND_GOODS", 25),
    ("PAID_FORBID_CONSIGN", 2),
    ("SELLER_CONSIGNED_PART", 4),
    ("WAIT_BUYER_CONFIRM_GOODS", 20),
    ("TRADE_BUYER_SIGNED", 2),
    ("TRADE_FINISHED", 20),
    ("TRADE_CLOSED", 5),
    ("TRADE_CLOSED_BY_TAOBAO", 6),
)
PAID = {
    "WAIT_SELLER_SEND_GOODS",
    "PAID_FORBID_CONSIGN",
    "SELLER_CONSIGNED_PART",
    "WAIT_BUYER_CONFIRM_GOODS",
    "TRADE_BUYER_SIGNED",
    "TRADE_FINISHED",
    "TRADE_CLOSED",
}
SHIPPED = {"SELLER_CONSIGNED_PART", "WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED"}
ENDED = {"TRADE_FINISHED", "TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"}

# (title, price, num_iid, sku_id, outer_sku_id (merchant SKU code), sku_properties_name)
CATALOGUE: tuple[tuple[str, str, int, int, str, str], ...] = (
    ("保温杯 500ml 不锈钢", "89.00", 612345678901, 4987654321001, "CUP-500-BLK", "颜色分类:黑色"),
    ("保温杯 500ml 不锈钢", "89.00", 612345678901, 4987654321002, "CUP-500-WHT", "颜色分类:白色"),
    ("纯棉T恤 男款", "128.00", 623456789012, 4987654322001, "TEE-M-NAVY", "颜色:藏青;尺码:M"),
    ("纯棉T恤 男款", "128.00", 623456789012, 4987654322002, "TEE-L-NAVY", "颜色:藏青;尺码:L"),
    ("蓝牙耳机 降噪", "299.00", 634567890123, 4987654323001, "EAR-ANC-01", "颜色分类:曜石黑"),
    ("手冲咖啡豆 250g", "68.50", 645678901234, 4987654324001, "BEAN-250-ETH", "产地:埃塞俄比亚"),
    ("帆布托特包", "45.90", 656789012345, 4987654325001, "BAG-TOTE-NAT", "颜色分类:原色"),
    ("机械键盘 87键", "459.00", 667890123456, 4987654326001, "KB-87-RED", "轴体:红轴"),
)
# (receiver_state, receiver_city, receiver_district, receiver_zip)
ADDRESSES: tuple[tuple[str, str, str, str], ...] = (
    ("浙江省", "杭州市", "西湖区", "310000"),
    ("上海", "上海市", "浦东新区", "200120"),
    ("广东省", "深圳市", "南山区", "518000"),
    ("北京", "北京市", "朝阳区", "100020"),
    ("江苏省", "南京市", "鼓楼区", "210000"),
    ("四川省", "成都市", "武侯区", "610000"),
    ("河南省", "", "济源市", "459000"),  # 省直辖县级行政区: TOP puts it in receiver_district
)
SURNAMES = "张王李赵刘陈杨黄周吴"
MOBILE_PREFIXES = ("138", "139", "186", "135", "150", "177", "188")
CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _open_uid(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "AAH" + "".join(rng.choice(alphabet) for _ in range(21))


def generate_trades(
    n: int,
    *,
    seed: int,
    start: datetime,
    end: datetime | None = None,
    seller_nick: str = "ordertwin旗舰店",
    tmall_share: float = 0.3,
    same_second_share: float = 0.1,
) -> list[dict[str, Any]]:
    """``n`` deterministic, realistic TOP Trade objects modified within ``[start, end)``.

    Mixed statuses (incl. Tmall trades: ``orders.order[].seller_type = "B"``, some Tmall
    Global ``type = "tmall_i18n"``; presale ``type = "step"``; cash-on-delivery ``cod``),
    1-3 lines, receiver fields masked as TOP masks them, and a share of trades modified in
    the same second as the previous one (bulk updates), which exercises window boundaries.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    end = end or start + timedelta(hours=6)
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    rng = random.Random(seed)
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    span = (end - start).total_seconds()
    used_ids: set[int] = set()

    def new_id() -> int:
        while True:
            value = 3_000_000_000_000_000_000 + rng.randrange(10**18)  # 19 digits, < 2**63
            if value not in used_ids:
                used_ids.add(value)
                return value

    trades: list[dict[str, Any]] = []
    previous_modified: datetime | None = None
    for _ in range(n):
        if previous_modified is not None and rng.random() < same_second_share:
            modified = previous_modified
        else:
            modified = start + timedelta(seconds=int(rng.random() * span))
        previous_modified = modified
        status = rng.choices(statuses, weights)[0]
        tmall = rng.random() < tmall_share
        trade_type = "fixed"
        step_status: str | None = None
        if status == "TRADE_BUYER_SIGNED":
            trade_type = "cod"
        elif tmall and rng.random() < 0.15:
            trade_type = "tmall_i18n"
        elif status in ("WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS") and rng.random() < 0.1:
            trade_type = "step"
            step_status = (
                rng.choice(("FRONT_NOPAID_FINAL_NOPAID", "FRONT_PAID_FINAL_NOPAID"))
                if status == "WAIT_BUYER_PAY"
                else "FRONT_PAID_FINAL_PAID"
            )

        # Times, going backwards from modified: end <= modified, consign <= end, ...
        t = modified
        end_time = consign_time = pay_time = None
        if status in ENDED:
            end_time = t
            t -= timedelta(seconds=rng.randint(0, 3 * 86400))
        if status in SHIPPED:
            consign_time = t
            t -= timedelta(seconds=rng.randint(600, 2 * 86400))
        if status in PAID:
            pay_time = t
            t -= timedelta(seconds=rng.randint(5, 1800))
        created = t - timedelta(seconds=rng.randint(0, 600))

        tid = new_id()
        n_lines = rng.choices((1, 2, 3), (70, 22, 8))[0]
        products = rng.sample(CATALOGUE, n_lines)
        lines: list[dict[str, Any]] = []
        total = discount = Decimal(0)
        for i, (title, price, num_iid, sku_id, outer_sku_id, props) in enumerate(products):
            num = rng.choices((1, 2, 3), (80, 15, 5))[0]
            line_total = Decimal(price) * num
            line_discount = Decimal(rng.choice((0, 0, 0, 5, 10))) if line_total > 20 else Decimal(0)
            line_status = status
            if status == "SELLER_CONSIGNED_PART":
                line_status = "WAIT_BUYER_CONFIRM_GOODS" if i == 0 else "WAIT_SELLER_SEND_GOODS"
            refund = "NO_REFUND"
            if status == "TRADE_CLOSED":
                refund = "SUCCESS"
            elif status == "WAIT_SELLER_SEND_GOODS" and rng.random() < 0.05:
                refund = "WAIT_SELLER_AGREE"
            lines.append(
                {
                    "oid": tid if n_lines == 1 else new_id(),
                    "num_iid": num_iid,
                    "sku_id": str(sku_id),
                    "outer_iid": outer_sku_id.rsplit("-", 1)[0],
                    "outer_sku_id": outer_sku_id,
                    "title": title,
                    "sku_properties_name": props,
                    "num": num,
                    "price": price,
                    "total_fee": _money(line_total),
                    "discount_fee": _money(line_discount),
                    "adjust_fee": "0.00",
                    "payment": _money(line_total - line_discount),
                    "divide_order_fee": _money(line_total - line_discount),
                    "status": line_status,
                    "refund_status": refund,
                    "seller_type": "B" if tmall else "C",
                }
            )
            total += line_total
            discount += line_discount

        shipping_type = rng.choices(("express", "free", "ems"), (85, 10, 5))[0]
        post_fee = Decimal(0) if shipping_type == "free" else Decimal(rng.choice((0, 6, 8, 12)))
        state, city, district, zip_code = rng.choice(ADDRESSES)
        mobile = f"{rng.choice(MOBILE_PREFIXES)}****{rng.randrange(10000):04d}"
        trade: dict[str, Any] = {
            "tid": tid,
            "status": status,
            "type": trade_type,
        }
        if step_status is not None:
            trade["step_trade_status"] = step_status
            trade["step_paid_fee"] = _money((total - discount) * Decimal("0.2"))
        trade.update(
            {
                "payment": _money(total - discount + post_fee),
                "total_fee": _money(total),
                "post_fee": _money(post_fee),
                "discount_fee": _money(discount),
                "adjust_fee": "0.00",
                "created": to_top_time(created),
                "modified": to_top_time(modified),
            }
        )
        if pay_time is not None:
            trade["pay_time"] = to_top_time(pay_time)
        if consign_time is not None:
            trade["consign_time"] = to_top_time(consign_time)
        if end_time is not None:
            trade["end_time"] = to_top_time(end_time)
        trade.update(
            {
                "seller_nick": seller_nick,
                "buyer_nick": f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}**",
                "buyer_open_uid": _open_uid(rng),
                "title": seller_nick,
                "trade_from": rng.choice(("WAP,WAP", "TAOBAO", "WAP,WAP", "JHS")),
                "shipping_type": shipping_type,
                "receiver_name": f"{rng.choice(SURNAMES)}**",
                "receiver_mobile": mobile,
                "receiver_phone": "",
                "receiver_state": state,
                "receiver_city": city,
                "receiver_district": district,
                "receiver_address": f"{state}{city}***",
                "receiver_zip": zip_code,
                "oaid": f"{rng.getrandbits(128):032x}",
                "has_buyer_message": rng.random() < 0.2,
                "orders": {"order": lines},
            }
        )
        trades.append(trade)
    return trades


def first_tid(seed: int) -> int:
    """The tid of the first trade :func:`generate_trades` makes for ``seed`` (any window):
    a ready example for docs and banners (``/orders/taobao:<tid>``)."""
    return int(generate_trades(1, seed=seed, start=datetime(2026, 1, 1, tzinfo=UTC))[0]["tid"])


# --- the gateway ----------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted on every gateway call (1-based); 0 = off."""

    rate_limit_every: int = 0  # answer TOP code 7 "App Call Limited"
    error_500_every: int = 0  # answer HTTP 500
    slow_every: int = 0  # delay the answer by slow_seconds
    slow_seconds: float = 0.0
    ban_seconds: int = 1  # "This ban will last for N more seconds"


def _error(
    code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None, request_id: str = ""
) -> web.Response:
    err: dict[str, Any] = {"code": code, "msg": msg}
    if sub_code:
        err["sub_code"] = sub_code
    if sub_msg:
        err["sub_msg"] = sub_msg
    err["request_id"] = request_id
    return web.Response(
        body=json.dumps({"error_response": err}, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
    )


class TopError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


@dataclass
class TaobaoSimulator:
    """The gateway's state: credentials, trades, faults, and counters of what it answered."""

    app_key: str
    app_secret: str
    session_key: str
    store: TradeStore = field(default_factory=TradeStore)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], datetime] = utc_now
    timestamp_tolerance: timedelta = timedelta(minutes=10)
    stats: Counter[str] = field(default_factory=Counter)
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.taobao.scenario)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> TaobaoSimulator:
        return cls(
            app_key=settings.taobao_app_key,
            app_secret=settings.taobao_app_secret.get_secret_value(),
            session_key=settings.taobao_session.get_secret_value(),
            **kw,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", GATEWAY_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["calls"] += 1
        n = self.stats["calls"]
        request_id = f"sim{n:x}"
        if self.scenario is not None and self.scenario.gate() is not None:
            # TOP's platform error 10 "Service Currently Unavailable" (服务不可用), HTTP 200.
            self.stats["outage"] += 1
            return _error(10, "Service Currently Unavailable", request_id=request_id)
        f = self.faults
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self.stats["rate_limited"] += 1
            return _error(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-app-access-count",
                f"This ban will last for {f.ban_seconds} more seconds",
                request_id,
            )
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            return web.Response(
                status=500, text="<html><body>500 Internal Server Error</body></html>", content_type="text/html"
            )
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        try:
            self._check_system(params)
            body = self._trades_sold_increment_get(params, request_id)
        except TopError as exc:
            self.stats["top_error"] += 1
            self.stats[f"top_error_{exc.code}"] += 1
            return _error(exc.code, exc.msg, exc.sub_code, exc.sub_msg, request_id)
        self.stats["ok"] += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _check_system(self, p: Mapping[str, str]) -> None:
        if not p.get("method"):
            raise TopError(21, "Missing method")
        if not p.get("app_key"):
            raise TopError(28, "Missing app key")
        if p["app_key"] != self.app_key:
            raise TopError(29, "Invalid app Key", "isv.appkey-not-exists")
        if not p.get("timestamp"):
            raise TopError(30, "Missing timestamp")
        try:
            sent = from_top_time(p["timestamp"])
        except ValueError:
            raise TopError(31, "Invalid timestamp") from None
        if abs(sent - self.clock()) > self.timestamp_tolerance:
            raise TopError(31, "Invalid timestamp", sub_msg="timestamp differs from server time")
        if not p.get("sign"):
            raise TopError(24, "Missing signature")
        if p.get("sign_method", "md5") not in signing.SIGN_METHODS:
            raise TopError(25, "Invalid signature", sub_msg="unsupported sign_method")
        if not signing.verify(p, self.app_secret):
            raise TopError(25, "Invalid signature")
        if p.get("format", "xml") != "json":
            raise TopError(23, "Invalid format", sub_msg="this simulator answers JSON only")
        if p.get("v") != "2.0":
            raise TopError(33 if p.get("v") else 32, "Invalid version" if p.get("v") else "Missing version")
        if not p.get("session"):
            raise TopError(26, "Missing session")
        if p["session"] != self.session_key:
            raise TopError(27, "Invalid session", "invalid-sessionkey")
        if p["method"] != METHOD_TRADES_SOLD_INCREMENT_GET:
            raise TopError(22, "Invalid method")

    def _trades_sold_increment_get(self, p: Mapping[str, str], request_id: str) -> bytes:
        for name in ("fields", "start_modified", "end_modified"):
            if not p.get(name):
                raise TopError(40, f"Missing required arguments:{name}")
        try:
            start = from_top_time(p["start_modified"])
            end = from_top_time(p["end_modified"])
        except ValueError:
            raise TopError(
                41,
                "Invalid arguments:start_modified/end_modified",
                "isv.invalid-parameter",
                "time format must be yyyy-MM-dd HH:mm:ss",
            ) from None
        if end <= start:
            raise TopError(
                15, "Remote service error", "isv.invalid-parameter", "end_modified must be later than start_modified"
            )
        if end - start > MAX_WINDOW:
            raise TopError(
                15,
                "Remote service error",
                "isv.invalid-parameter",
                "end_modified - start_modified must not exceed one day",
            )
        try:
            page_no = int(p.get("page_no", "1"))
            page_size = int(p.get("page_size", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            raise TopError(41, "Invalid arguments:page_no/page_size", "isv.invalid-parameter") from None
        if page_no < 1:
            raise TopError(41, "Invalid arguments:page_no", "isv.invalid-parameter")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise TopError(
                41,
                "Invalid arguments:page_size",
                "isv.invalid-parameter",
                f"page_size must be between 1 and {MAX_PAGE_SIZE}",
            )
        types = [t.strip() for t in p["type"].split(",") if t.strip()] if p.get("type") else None
        hits = self.store.query(start, end, types)
        offset = (page_no - 1) * page_size
        page = hits[offset : offset + page_size]
        parts: list[bytes] = []
        if p.get("use_has_next", "false").lower() == "true":
            parts.append(b'"has_next":' + (b"true" if offset + page_size < len(hits) else b"false"))
        else:
            parts.append(b'"total_results":' + str(len(hits)).encode())
        if page:
            parts.append(b'"trades":{"trade":[' + b",".join(t.raw for t in page) + b"]}")
        parts.append(b'"request_id":"' + request_id.encode() + b'"')
        return b'{"' + RESPONSE_KEY.encode() + b'":{' + b",".join(parts) + b"}}"


# --- running it ---------------------------------------------------------------------------


@dataclass
class RunningSimulator:
    """A simulator served by aiohttp in this process."""

    simulator: TaobaoSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{GATEWAY_PATH}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: TaobaoSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start serving ``simulator`` (port 0 = an ephemeral port); close() the result to stop."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("taobao simulator on http://%s:%s%s (%d trades)", host, bound, GATEWAY_PATH, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
