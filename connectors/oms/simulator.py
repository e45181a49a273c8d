"""An in-process 旺店通旗舰版 open API gateway for the ERP order query, for tests and demos.

Faithful where the connector depends on it: the query-string system parameters (``sid``,
``key``, ``salt``, ``method``, ``v=1.0``, ``timestamp`` in seconds since 2012-01-01 Beijing
time within 120 s, ``page_size``/``page_no`` from 0/``calc_total``, ``sign``) with the MD5
signature over them plus the JSON body (:mod:`connectors.oms.signing`, checked in constant
time); the body as a JSON array of the positional arguments; ``sales.TradeQuery.queryWithDetail``
filtered by ``modified`` (``time_type=1``) in ``[start_time, end_time]`` (Beijing time; bounds
inclusive by default, switchable to exclusive to prove the connector does not depend on it),
the 60-minute span limit ("您的查询时间过宽,查询时间不能大于60分钟"), ``order_type`` (1
修改时间降序; 0, the unspecified 默认排序, is served ascending here), ``total_count``, and the
envelopes ``{"status": 0, "data": {"order": [...], "total_count": n}}`` and ``{"status": 100,
"message": "..."}``.

This simulator's own choices (not documented in what was available): every error answers
status 100 (the one documented error status) with a Chinese message; page_size must be
1..200; only ``time_type=1`` is served; an outage answers HTTP 503.

Fault knobs (all off by default, counted per gateway call): the per-minute call limit and the
concurrency limit (status 100, the platform's own messages), HTTP 429, HTTP 500, slow answers;
on order-query calls, duplicated records and orders modified while the client pages (their
``modified`` jumps to now and ``version_id`` goes up, as in the ERP).

Scenario mode (``make run``): records of a generated scenario are listed once the clock
reaches their time, with that time as their ``modified``; during an outage of source "oms"
every call fails with HTTP 503.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.oms import signing
from connectors.oms.client import (
    MAX_PAGE_SIZE,
    METHOD,
    STATUS_ERROR,
    TIME_TYPE_MODIFIED,
    VERSION,
    from_wdt_time,
    to_wdt_time,
    trade_key,
    trade_modified,
)
from connectors.scenario import payloads as p
from connectors.scenario.model import Outage, ScenarioRecord
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "oms"
GATEWAY_PATH = "/openapi"
MAX_SPAN = timedelta(minutes=60)  # "start_time和end_time最大跨度为60分钟"
RATE_LIMIT_MESSAGE = "超过每分钟最大调用频率限制,请稍后重试"  # documented 异常响应示例
CONCURRENCY_LIMIT_MESSAGE = "超过每分钟最大并发次数限制，请稍后重试"
SPAN_MESSAGE = "您的查询时间过宽,查询时间不能大于60分钟"


def utc_now() -> datetime:
    return datetime.now(UTC)


def serialise(trade: Mapping[str, Any]) -> bytes:
    """How the simulator writes an ERP order: compact UTF-8 JSON, key order kept."""
    return json.dumps(trade, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the order store ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoredTrade:
    key: str  # trade_no
    modified: datetime
    raw: bytes


class TradeStore:
    """Current version of each ERP order (by ``trade_no``), plus every version ever stored."""

    def __init__(self) -> None:
        self._trades: dict[str, StoredTrade] = {}
        self.versions: dict[str, list[bytes]] = {}

    def __len__(self) -> int:
        return len(self._trades)

    def __iter__(self) -> Iterator[StoredTrade]:
        return iter(self._trades.values())

    def add(self, trade: Mapping[str, Any]) -> StoredTrade:
        """Store (or replace, by ``trade_no``) an order; it needs a trade_no and a modified time."""
        key = trade_key(trade)
        modified = trade_modified(trade)
        if key is None or modified is None:
            raise ValueError("an ERP order needs a readable trade_no and modified")
        return self.add_raw(key.decode(), serialise(trade), modified)

    def add_raw(self, key: str, raw: bytes, modified: datetime) -> StoredTrade:
        """Store exact bytes (scenario records are served as generated)."""
        stored = StoredTrade(key, modified, raw)
        self._trades[key] = stored
        self.versions.setdefault(key, []).append(raw)
        return stored

    def add_many(self, trades: Iterable[Mapping[str, Any]]) -> None:
        for trade in trades:
            self.add(trade)

    def update(self, key: str, changes: Mapping[str, Any], *, modified: datetime) -> StoredTrade:
        """Apply ``changes``, bump ``modified`` and ``version_id``, as the ERP does on every change."""
        trade = json.loads(self._trades[key].raw)
        trade.update(changes)
        trade["modified"] = to_wdt_time(modified)
        trade["version_id"] = int(trade.get("version_id") or 0) + 1
        return self.add(trade)

    def get(self, key: str) -> StoredTrade | None:
        return self._trades.get(key)

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: t.raw for k, t in self._trades.items()}

    def query(
        self,
        start: datetime,
        end: datetime,
        *,
        descending: bool,
        start_inclusive: bool = True,
        end_inclusive: bool = True,
    ) -> list[StoredTrade]:
        def inside(t: StoredTrade) -> bool:
            after = t.modified >= start if start_inclusive else t.modified > start
            before = t.modified <= end if end_inclusive else t.modified < end
            return after and before

        hits = [t for t in self._trades.values() if inside(t)]
        hits.sort(key=lambda t: (t.modified, t.key), reverse=descending)
        return hits


# --- realistic generated orders ----------------------------------------------------------

# (trade_status, weight): the states an ERP order spends time in, mapped by the normaliser.
STATUSES: tuple[tuple[int, int], ...] = (
    (16, 2),  # 延时审核
    (30, 6),  # 待客审
    (23, 4),  # 异常订单 (with a bad_reason)
    (55, 30),  # 已审核
    (95, 35),  # 已发货
    (110, 13),  # 已完成
    (5, 10),  # 已取消
)
# platform_id (平台代码表) -> (weight, shop_no, shop_name); every one is a tracked channel.
PLATFORMS: dict[int, tuple[int, str, str]] = {
    1: (60, "SHOP01", p.SELLER_NICK),  # 淘宝/天猫
    3: (20, "SHOP02", "ordertwin京东自营旗舰店"),  # 京东
    39: (20, "SHOP03", "ordertwin拼多多官方店"),  # 拼多多
}
BAD_REASONS = (2, 16, 32, 512)  # 修改地址, 修改备注, 更换货品, 买家留言变化
# The version_id an ERP order has reached in a state (the ERP bumps it on every change).
VERSION_BY_STATUS = {16: 2, 30: 2, 23: 3, 55: 3, 95: 6, 110: 8, 5: 4}


def _platform_ids(platform: int, o: p.OrderIdentity, rng: random.Random, used: set[str]) -> tuple[str, list[str]]:
    """The channel order id and line ids the platform would have used (TOP's own for 淘宝)."""
    if platform == 1:
        return str(o.tid), [str(ln.oid) for ln in o.lines]
    while True:
        if platform == 3:  # JOS orderId: 12 digits
            tid = str(300_000_000_000 + rng.randrange(10**11))
        else:  # PDD order_sn: yymmdd-15 digits
            tid = f"{o.created.astimezone(p.CHINA_TZ):%y%m%d}-{rng.randrange(10**15):015d}"
        if tid not in used:
            used.add(tid)
            break
    if platform == 3:  # a JD line is identified by the order and the SKU
        return tid, [f"{tid}-{ln.product.sku_id}" for ln in o.lines]
    return tid, [tid if len(o.lines) == 1 else f"{tid}-{i + 1}" for i in range(len(o.lines))]


def _trade(
    o: p.OrderIdentity,
    modified: datetime,
    status: int,
    paid: datetime,
    platform: int,
    rng: random.Random,
    used: set[str],
) -> dict[str, Any]:
    """One ERP order of one channel order, via the scenario's renderer, then moved to ``status``
    and (for 京东/拼多多) to that platform's shop and ids."""
    base = 95 if status in (95, 110) else 5 if status == 5 else 55
    trade = p.oms_trade(o, modified, base, pay_time=paid)
    trade["trade_status"] = status
    trade["version_id"] = VERSION_BY_STATUS[status]
    if status in (16, 30, 23):
        trade["check_time"] = ""  # not through 审核 yet
    if status == 23:
        trade["bad_reason"] = rng.choice(BAD_REASONS)
    if platform != 1:
        _, shop_no, shop_name = PLATFORMS[platform]
        tid, oids = _platform_ids(platform, o, rng, used)
        trade.update(
            platform_id=platform, shop_platform_id=platform, sub_platform_id=0, src_tids=tid,
            shop_no=shop_no, shop_name=shop_name,
        )  # fmt: skip
        for detail, oid in zip(trade["detail_list"], oids, strict=True):
            detail.update(platform_id=platform, src_tid=tid, src_oid=oid)
    return trade


_SUMMED = (
    "goods_type_count",
    "goods_count",
    "goods_amount",
    "post_amount",
    "discount",
    "receivable",
    "paid",
    "paid_amount",
)


def _merge(trade: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Merge ``other`` (same buyer, same shop) into ``trade``, as the ERP's 合并 does: channel
    orders listed ascending in ``src_tids``, the lines of both, the amounts summed."""
    tids = sorted({*str(trade["src_tids"]).split(","), *str(other["src_tids"]).split(",")})
    trade["src_tids"] = ",".join(tids)
    for name in _SUMMED:
        trade[name] = p.money4(Decimal(trade[name]) + Decimal(other[name]))
    trade["detail_list"] = [
        *trade["detail_list"],
        *({**d, "trade_id": trade["trade_id"]} for d in other["detail_list"]),
    ]


def generate_trades(
    n: int,
    *,
    seed: int,
    start: datetime,
    end: datetime | None = None,
    same_second_share: float = 0.1,
    merged_share: float = 0.06,
) -> list[dict[str, Any]]:
    """``n`` deterministic ``queryWithDetail`` orders modified within ``[start, end)``.

    Rendered by :func:`connectors.scenario.payloads.oms_trade` (the shape of tests/fixtures/oms),
    spread over the states an ERP order rests in (待客审, 异常 with a reason, 已审核, 已发货,
    已完成, 已取消...), over 淘宝/天猫, 京东 and 拼多多 shops, with a share of merged orders (two
    channel orders in one ERP order) and of orders modified in the same second as the previous
    one (a bulk 审核).
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    end = end or start + timedelta(hours=6)
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    statuses, status_weights = zip(*STATUSES, strict=True)
    platforms = list(PLATFORMS)
    platform_weights = [PLATFORMS[k][0] for k in platforms]
    used_tids: set[int] = set()  # TOP tids
    used_refs: set[str] = set()  # JD / PDD order ids
    trades: list[dict[str, Any]] = []
    previous: datetime | None = None
    for i in range(n):
        if previous is not None and rng.random() < same_second_share:
            modified = previous
        else:
            modified = start + timedelta(seconds=int(rng.random() * span))
        previous = modified
        status = rng.choices(statuses, status_weights)[0]
        platform = rng.choices(platforms, platform_weights)[0]
        paid = modified - timedelta(seconds=rng.randint(60, 2 * 86400))
        created = paid - timedelta(seconds=rng.randint(5, 600))
        identity = p.make_identity(i, created, random.Random(rng.getrandbits(64)), used_tids)
        trade = _trade(identity, modified, status, paid, platform, rng, used_refs)
        if rng.random() < merged_share:
            twin = p.make_identity(n + i, created, random.Random(rng.getrandbits(64)), used_tids)
            _merge(trade, _trade(twin, modified, status, paid, platform, rng, used_refs))
        trades.append(trade)
    return trades


def advance(trade: Mapping[str, Any], moment: datetime, rng: random.Random) -> dict[str, Any]:
    """What the ERP changes next: 审核, ship (waybill), complete, clear an exception, or a note."""
    status = trade.get("trade_status")
    if status in (16, 30):
        return {"trade_status": 55, "check_time": to_wdt_time(moment)}
    if status == 23:
        return {"trade_status": 55, "bad_reason": 0, "check_time": to_wdt_time(moment)}
    if status == 55:
        carrier = rng.choice(p.CARRIERS)
        waybill = carrier.prefix + "".join(str(rng.randrange(10)) for _ in range(carrier.digits))
        details = [{**d, "platform_status": 50} for d in trade.get("detail_list") or [] if isinstance(d, Mapping)]
        return {
            "trade_status": 95,
            "logistics_no": waybill,
            "logistics_name": carrier.name,
            "logistics_code": carrier.qimen,
            "detail_list": details,
        }
    if status == 95:
        return {"trade_status": 110}
    return {"cs_remark": f"客服备注{rng.randrange(1000)}"}


# --- the gateway -------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted on every gateway call (1-based); 0 = off."""

    rate_limit_every: int = 0  # status 100 "超过每分钟最大调用频率限制,请稍后重试"
    concurrency_limit_every: int = 0  # status 100 "超过每分钟最大并发次数限制，请稍后重试"
    http_429_every: int = 0
    error_500_every: int = 0
    slow_every: int = 0  # delay the answer by slow_seconds
    slow_seconds: float = 0.0
    duplicate_every: int = 0  # an order-query page repeats one of its records
    modify_every: int = 0  # before answering, modify an order of the query not on this page
    max_modifications: int = 0  # 0 = unlimited


class WdtError(Exception):
    """An answer ``{"status": status, "message": message}`` inside an HTTP 200."""

    def __init__(self, message: str, status: int = STATUS_ERROR) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _json(doc: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
    )


def _int(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise WdtError(f"参数{name}不能为空")
        return default
    if isinstance(value, bool):
        raise WdtError(f"参数{name}格式错误")
    try:
        return int(str(value).strip())
    except ValueError:
        raise WdtError(f"参数{name}格式错误") from None


@dataclass
class OmsSimulator:
    """The gateway's state: credentials, orders, faults, and counters of what it answered."""

    sid: str
    app_key: str
    app_secret: str  # "secret:salt", as issued
    store: TradeStore = field(default_factory=TradeStore)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], datetime] = utc_now  # the platform's time: releases, changes, outages
    wall: Callable[[], datetime] = utc_now  # what the request timestamp is checked against
    seed: int = 0
    start_inclusive: bool = True
    end_inclusive: bool = True
    stats: Counter[str] = field(default_factory=Counter)
    modified_keys: list[str] = field(default_factory=list)
    before_query: Callable[[OmsSimulator, Mapping[str, Any], int], None] | None = None  # test hook
    outages: list[Outage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._secret, self.salt = signing.split_app_secret(self.app_secret)
        self._rng = random.Random(self.seed)
        self._pending: list[tuple[datetime, int, str, bytes]] = []  # scenario records not yet listed
        self._scheduled = 0
        self.in_flight = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> OmsSimulator:
        return cls(
            sid=settings.oms_sid,
            app_key=settings.oms_app_key,
            app_secret=settings.oms_app_secret.get_secret_value(),
            **kw,
        )

    # -- scenario -------------------------------------------------------------------------
    def schedule(self, records: Sequence[ScenarioRecord]) -> None:
        """List each record (its bytes, ``modified`` = its time) once the clock reaches ``at``."""
        for record in records:
            if record.source != SOURCE:
                raise ValueError(f"record of source {record.source!r} given to the {SOURCE} simulator")
            self._scheduled += 1  # ties on ``at`` keep the scenario's order
            bisect.insort(self._pending, (record.at, self._scheduled, record.key.decode("utf-8"), record.value))

    def release(self, now: datetime | None = None) -> int:
        """Move every scheduled record due by ``now`` into the store; return how many moved."""
        now = now or self.clock()
        moved = 0
        while self._pending and self._pending[0][0] <= now:
            at, _, key, raw = self._pending.pop(0)
            self.store.add_raw(key, raw, at)
            moved += 1
        return moved

    @property
    def pending(self) -> int:
        return len(self._pending)

    def in_outage(self, now: datetime | None = None) -> bool:
        now = now or self.clock()
        return any(o.covers(SOURCE, now) for o in self.outages)

    # -- HTTP -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", GATEWAY_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1  # requests being answered right now
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        # Read the request first: a client that times out on a slow answer must not break it.
        params: dict[str, str] = dict(request.query)
        body = (await request.read()).decode("utf-8", "replace")
        self.stats["calls"] += 1
        n = self.stats["calls"]
        if self.in_outage():
            self.stats["outage"] += 1
            return web.Response(
                status=503, text="<html><body>503 Service Unavailable</body></html>", content_type="text/html"
            )
        f = self.faults
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self.stats["rate_limited"] += 1
            return _json({"status": STATUS_ERROR, "message": RATE_LIMIT_MESSAGE})
        if f.concurrency_limit_every and n % f.concurrency_limit_every == 0:
            self.stats["concurrency_limited"] += 1
            return _json({"status": STATUS_ERROR, "message": CONCURRENCY_LIMIT_MESSAGE})
        if f.http_429_every and n % f.http_429_every == 0:
            self.stats["http_429"] += 1
            return web.Response(status=429, text="Too Many Requests")
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            return web.Response(
                status=500, text="<html><body>500 Internal Server Error</body></html>", content_type="text/html"
            )
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        try:
            self._check_system(params, body)
            payload = self._trade_query(params, body)
        except WdtError as exc:
            self.stats["wdt_error"] += 1
            return _json({"status": exc.status, "message": exc.message})
        self.stats["ok"] += 1
        return web.Response(body=payload, content_type="application/json", charset="utf-8")

    def _check_system(self, q: Mapping[str, str], body: str) -> None:
        for name in ("sid", "key", "salt", "method", "v", "timestamp", "sign"):
            if not q.get(name):
                raise WdtError(f"缺少公共参数{name}")
        if q["sid"] != self.sid:
            raise WdtError("卖家账号sid不存在")
        if q["key"] != self.app_key:
            raise WdtError("接口账号key不存在")
        if q["salt"] != self.salt:
            raise WdtError("salt不正确")
        if q["v"] != VERSION:
            raise WdtError("不支持的版本号v")
        try:
            sent = signing.from_wdt_timestamp(int(q["timestamp"]))
        except (ValueError, OverflowError, OSError):
            raise WdtError("timestamp格式错误") from None
        if abs((sent - self.wall()).total_seconds()) > signing.TIMESTAMP_TOLERANCE_S:
            raise WdtError("timestamp与服务器时间相差超过120秒")
        if not signing.verify({**q, "body": body}, self._secret):
            self.stats["bad_sign"] += 1
            raise WdtError("签名错误")
        if q["method"] != METHOD:
            raise WdtError(f"接口{q['method']}不存在")

    def _trade_query(self, q: Mapping[str, str], body: str) -> bytes:
        try:
            args = json.loads(body) if body.strip() else None
        except ValueError:
            raise WdtError("请求参数body不是合法的JSON") from None
        if not isinstance(args, list) or not args or not isinstance(args[0], dict):
            raise WdtError("请求参数body应为参数数组, 例如[{...}]")
        b: dict[str, Any] = args[0]
        page_size = _int(q, "page_size")
        page_no = _int(q, "page_no")
        calc_total = _int(q, "calc_total", 0)
        if not 1 <= page_size <= MAX_PAGE_SIZE or page_no < 0:
            raise WdtError(f"分页参数错误: page_size 1~{MAX_PAGE_SIZE}, page_no从0开始")
        if not str(b.get("start_time") or "").strip() or not str(b.get("end_time") or "").strip():
            raise WdtError("start_time和end_time不能为空")
        try:
            start = from_wdt_time(str(b["start_time"]))
            end = from_wdt_time(str(b["end_time"]))
        except ValueError:
            raise WdtError("时间格式错误, 应为YYYY-MM-DD HH:MM:SS") from None
        time_type = _int(b, "time_type", TIME_TYPE_MODIFIED)
        order_type = _int(b, "order_type", 0)
        if time_type != TIME_TYPE_MODIFIED:
            raise WdtError(f"模拟器仅支持time_type=1(修改时间), 收到{time_type}")
        if end < start:
            raise WdtError("结束时间不能小于开始时间")
        if end - start > MAX_SPAN:
            raise WdtError(SPAN_MESSAGE)
        self.stats["query_calls"] += 1
        if self.before_query is not None:
            self.before_query(self, b, page_no)
        self.release()
        descending = order_type == 1

        def query() -> list[StoredTrade]:
            return self.store.query(
                start,
                end,
                descending=descending,
                start_inclusive=self.start_inclusive,
                end_inclusive=self.end_inclusive,
            )

        hits = query()
        offset = page_no * page_size
        f = self.faults
        if f.modify_every and self.stats["query_calls"] % f.modify_every == 0:
            others = [h for i, h in enumerate(hits) if not offset <= i < offset + page_size]
            if self._modify_one(others or hits):
                hits = query()
        chosen = [t.raw for t in hits[offset : offset + page_size]]
        if chosen and f.duplicate_every and self.stats["query_calls"] % f.duplicate_every == 0:
            self.stats["duplicated"] += 1
            chosen.append(chosen[0])
        total = b',"total_count":' + str(len(hits)).encode() if calc_total else b""
        return b'{"status":0,"data":{"order":[' + b",".join(chosen) + b"]" + total + b"}}"

    def modify(self, key: str, moment: datetime | None = None) -> StoredTrade:
        """Change one stored order now (test hook and fault): ``modified`` and ``version_id`` move."""
        target = self.store.get(key)
        if target is None:
            raise KeyError(key)
        moment = max(moment or self.clock(), target.modified + timedelta(seconds=1))
        trade = json.loads(target.raw)
        changed = self.store.update(key, advance(trade, moment, self._rng), modified=moment)
        self.modified_keys.append(key)
        self.stats["modified"] += 1
        return changed

    def _modify_one(self, candidates: list[StoredTrade]) -> bool:
        limit = self.faults.max_modifications
        if not candidates or (limit and len(self.modified_keys) >= limit):
            return False
        self.modify(self._rng.choice(candidates).key)
        return True


# --- running it --------------------------------------------------------------------------


@dataclass
class RunningSimulator:
    """A simulator served by aiohttp in this process."""

    simulator: OmsSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{GATEWAY_PATH}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: OmsSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start serving ``simulator`` (port 0 = an ephemeral port); close() the result to stop."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("oms simulator on http://%s:%s%s (%d orders)", host, bound, GATEWAY_PATH, len(simulator.store))
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
    """Serve the OMS share of a scenario in real time (contract: :mod:`connectors.registry`)."""
    simulator = OmsSimulator.from_settings(settings, clock=clock, outages=[o for o in outages if o.source == SOURCE])
    simulator.schedule([r for r in records if r.source == SOURCE])
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.oms_simulator_port if port is None else port,
    )
