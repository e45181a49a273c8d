"""An in-process PDD gateway for ``pdd.order.number.list.increment.get``, for tests and demos.

Faithful where the connector depends on it: form (or query) common parameters, the MD5
signature with PDD's 20004 "签名sign校验失败", client_id (10016) / access_token (20032) /
type (10017) checks, ``timestamp`` within PDD's 10 minutes, the 30-minute window limit and
required business parameters (10000 "参数错误" with a sub message), ``order_status`` /
``refund_status`` / ``is_lucky_flag`` / ``trade_type`` filters, orders with ``updated_at`` in
``[start_updated_at, end_updated_at]`` **oldest first** with ``page``/``page_size`` (1..100)
paging - the order in which paging forwards loses orders updated meanwhile, which is why PDD
tells clients to page backwards - ``total_count`` (or ``has_next`` with
``use_has_next=true``), and PDD's envelopes ``{"order_sn_increment_get_response": {...}}`` /
``{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}``.

Simplification: JSON only (``data_type=XML`` is refused).

Fault knobs (all off by default, counted per gateway call): 70031 "调用过于频繁", HTTP 429,
HTTP 500, 50000 "系统内部错误", slow answers; on list calls, duplicated records and orders
updated while the client pages (``updated_at`` jumps to now, as on the platform).
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

from connectors.pdd import signing
from connectors.pdd.client import (
    CHINA_TZ,
    LIST_KEY,
    RESPONSE_KEY,
    TYPE_INCREMENT_GET,
    order_key,
    order_updated,
    to_pdd_time,
)
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

GATEWAY_PATH = "/api/router"
MAX_PAGE_SIZE = 100
MAX_WINDOW = timedelta(minutes=30)
TIMESTAMP_TOLERANCE = timedelta(minutes=10)  # "需要与拼多多服务器时间差值在10分钟内"


def utc_now() -> datetime:
    return datetime.now(UTC)


def serialise(order: Mapping[str, Any]) -> bytes:
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the order store ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoredOrder:
    key: str
    updated: datetime
    raw: bytes
    order_status: int
    refund_status: int
    lucky: int
    trade_type: int


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class OrderStore:
    """Current version of each order (by ``order_sn``), plus every version ever served."""

    def __init__(self) -> None:
        self._orders: dict[str, StoredOrder] = {}
        self.versions: dict[str, list[bytes]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[StoredOrder]:
        return iter(self._orders.values())

    def add(self, order: Mapping[str, Any], *, raw: bytes | None = None) -> StoredOrder:
        """Store (or replace, by ``order_sn``) an order; ``raw`` is its exact bytes, served as
        given (default: serialised here)."""
        key = order_key(order)
        updated = order_updated(order)
        if key is None or updated is None:
            raise ValueError("order needs an order_sn and a readable updated_at")
        stored = StoredOrder(
            key=key.decode(),
            updated=updated,
            raw=serialise(order) if raw is None else raw,
            order_status=_int(order.get("order_status"), 1),
            refund_status=_int(order.get("refund_status"), 1),
            lucky=_int(order.get("is_lucky_flag"), 1),
            trade_type=_int(order.get("trade_type"), 0),
        )
        self._orders[stored.key] = stored
        self.versions.setdefault(stored.key, []).append(stored.raw)
        return stored

    def add_many(self, orders: Iterable[Mapping[str, Any]]) -> None:
        for order in orders:
            self.add(order)

    def add_raw(self, raw: bytes) -> StoredOrder:
        """Store an order given as its exact JSON bytes (a scenario record's value)."""
        return self.add(json.loads(raw), raw=raw)

    def update(self, key: str, changes: Mapping[str, Any], *, updated: datetime) -> StoredOrder:
        """Apply ``changes`` and bump ``updated_at``, as the platform does on every change."""
        order = json.loads(self._orders[key].raw)
        order.update(changes)
        order["updated_at"] = to_pdd_time(updated)
        return self.add(order)

    def get(self, key: str) -> StoredOrder | None:
        return self._orders.get(key)

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: o.raw for k, o in self._orders.items()}

    def query(
        self,
        start: datetime,
        end: datetime,
        *,
        order_status: int,
        refund_status: int,
        lucky: int,
        trade_type: int | None,
    ) -> list[StoredOrder]:
        """Orders updated in ``[start, end]`` matching the filters, oldest first."""
        hits = [
            o
            for o in self._orders.values()
            if start <= o.updated <= end
            and order_status in (5, o.order_status)
            and refund_status in (5, o.refund_status)
            and lucky in (0, o.lucky)
            and trade_type in (None, o.trade_type)
        ]
        hits.sort(key=lambda o: (o.updated, o.key))
        return hits


# --- realistic generated orders ----------------------------------------------------------

# (order_status, refund_status, confirm_status, weight): 发货状态 x 售后状态 x 成交状态.
COMBOS: tuple[tuple[int, int, int, int], ...] = (
    (1, 1, 0, 6),  # 未成交 (unpaid or group not formed)
    (1, 1, 2, 4),  # 已取消
    (1, 1, 1, 25),
    (1, 2, 1, 2),
    (1, 3, 1, 2),
    (1, 4, 1, 3),
    (2, 1, 1, 20),
    (2, 2, 1, 2),
    (2, 3, 1, 1),
    (2, 4, 1, 2),
    (3, 1, 1, 25),
    (3, 2, 1, 2),
    (3, 3, 1, 1),
    (3, 4, 1, 3),
)
# (goods_name, goods_spec, price, goods_id, sku_id, outer_id, outer_goods_id)
CATALOGUE: tuple[tuple[str, str, str, int, int, str, str], ...] = (
    ("纯棉短袖T恤", "白色,M", "89.00", 345678901, 1234567890, "TSHIRT-WHT-M", "TSHIRT"),
    ("纯棉短袖T恤", "黑色,L", "89.00", 345678901, 1234567891, "TSHIRT-BLK-L", "TSHIRT"),
    ("船袜五双装", "均码", "90.00", 345678999, 1234567999, "SOCKS-5P", "SOCKS"),
    ("保温杯 500ml", "黑色", "59.90", 345679111, 1234569111, "CUP-500-BLK", "CUP"),
    ("手机壳 磨砂", "iPhone 15", "19.90", 345679222, 1234569222, "CASE-IP15", "CASE"),
)
# (province, province_id, city, city_id, town, town_id)
ADDRESSES: tuple[tuple[str, int, str, int, str, int], ...] = (
    ("浙江省", 12, "杭州市", 140, "余杭区", 1323),
    ("上海", 2, "上海市", 38, "浦东新区", 4216),
    ("广东省", 6, "深圳市", 77, "南山区", 709),
    ("四川省", 23, "成都市", 286, "武侯区", 2401),
)
SURNAMES = "张王李赵刘陈杨黄周吴"
CARRIERS: tuple[tuple[int, str], ...] = ((44, "SF"), (115, "YT"), (121, "ZTO"))  # (logistics_id, prefix)
CENT = Decimal("0.01")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _yuan(value: Decimal) -> float:
    """A yuan amount as PDD writes it (a JSON number), exact to the fen."""
    return float(value.quantize(CENT))


def _cipher(rng: random.Random, mark: str = "~") -> str:
    return f"{mark}AgAAAA{''.join(rng.choice(B64) for _ in range(38))}={mark}0{mark}"


def generate_orders(
    n: int, *, seed: int, start: datetime, end: datetime | None = None, same_second_share: float = 0.1
) -> list[dict[str, Any]]:
    """``n`` deterministic PDD orders (the ``order_sn_list`` element shape of the golden
    fixtures) updated within ``[start, end)``: every order/refund/confirm status combination,
    deposit (定金) orders with ``step_order_info``, lottery orders, encrypted + masked receiver."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    end = end or start + timedelta(hours=6)
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    rng = random.Random(seed)
    combos = [c[:3] for c in COMBOS]
    weights = [c[3] for c in COMBOS]
    span = (end - start).total_seconds()
    used: set[str] = set()
    orders: list[dict[str, Any]] = []
    previous: datetime | None = None
    for _ in range(n):
        if previous is not None and rng.random() < same_second_share:
            updated = previous
        else:
            updated = start + timedelta(seconds=int(rng.random() * span))
        previous = updated
        order_status, refund_status, confirm_status = rng.choices(combos, weights)[0]
        t = updated
        receive_time = shipping_time = ""
        if order_status == 3:
            receive_time = to_pdd_time(t)
            t -= timedelta(seconds=rng.randint(3600, 3 * 86400))
        if order_status >= 2:
            shipping_time = to_pdd_time(t)
            t -= timedelta(seconds=rng.randint(600, 2 * 86400))
        paid = t - timedelta(seconds=rng.randint(5, 1800))
        created = paid - timedelta(seconds=rng.randint(5, 600))
        while True:
            sn = created.astimezone(CHINA_TZ).strftime("%y%m%d") + f"-{rng.randrange(10**15):015d}"
            if sn not in used:
                used.add(sn)
                break
        lines = rng.sample(CATALOGUE, rng.choices((1, 2, 3), (70, 22, 8))[0])
        items = []
        goods = Decimal(0)
        for name, spec, price, goods_id, sku_id, outer_id, outer_goods_id in lines:
            count = rng.choices((1, 2, 3), (80, 15, 5))[0]
            goods += Decimal(price) * count
            items.append(
                {
                    "goods_id": goods_id,
                    "goods_name": name,
                    "goods_spec": spec,
                    "sku_id": sku_id,
                    "outer_id": outer_id,
                    "outer_goods_id": outer_goods_id,
                    "goods_price": _yuan(Decimal(price)),
                    "goods_count": count,
                    "goods_img": f"https://img.pddpic.com/gaudit-image/2026-11-01/{outer_goods_id.lower()}.jpeg",
                }
            )
        platform_discount = Decimal(rng.choice((0, 0, 2, 5))) if goods > 10 else Decimal(0)
        seller_discount = Decimal(rng.choice((0, 0, 3, 6))) if goods > 20 else Decimal(0)
        postage = Decimal(rng.choice((0, 0, 0, 5)))
        pay = goods - platform_discount - seller_discount + postage
        deposit = confirm_status == 1 and order_status == 1 and rng.random() < 0.15
        step_info: dict[str, Any] | None = None
        if deposit:
            paid_part = (pay * Decimal("0.2")).quantize(CENT)
            step_info = {
                "advanced_paid_fee": _yuan(paid_part),
                "step_paid_fee": _yuan(paid_part),
                "step_discount_amount": _yuan(Decimal(10)),
                "step_trade_status": rng.choice((0, 1, 2)),
            }
        province, province_id, city, city_id, town, town_id = rng.choice(ADDRESSES)
        logistics_id, tracking = 0, ""
        if order_status >= 2:
            logistics_id, prefix = rng.choice(CARRIERS)
            tracking = prefix + "".join(rng.choice("0123456789") for _ in range(12))
        mobile_head = rng.choice(("138", "139", "186", "150"))
        lucky = 2 if rng.random() < 0.03 else 1
        orders.append(
            {
                "order_sn": sn,
                "confirm_status": confirm_status,
                "group_status": 0 if confirm_status == 0 else 1,
                "order_status": order_status,
                "refund_status": refund_status,
                "after_sales_status": 0 if refund_status == 1 else rng.choice((5, 6, 10)),
                "trade_type": 1 if deposit else 0,
                "step_order_info": step_info,
                "is_lucky_flag": lucky,
                "is_pre_sale": 1 if deposit else 0,
                "pre_sale_time": to_pdd_time(updated + timedelta(days=9)) if deposit else "",
                "created_time": to_pdd_time(created),
                "confirm_time": to_pdd_time(paid) if confirm_status == 1 else "",
                "pay_time": to_pdd_time(paid) if confirm_status != 0 else "",
                "updated_at": to_pdd_time(updated),
                "last_ship_time": to_pdd_time(paid + timedelta(days=2)),
                "shipping_time": shipping_time,
                "receive_time": receive_time,
                "pay_amount": _yuan(pay),
                "goods_amount": _yuan(goods),
                "discount_amount": _yuan(platform_discount + seller_discount),
                "platform_discount": _yuan(platform_discount),
                "seller_discount": _yuan(seller_discount),
                "capital_free_discount": 0.0,
                "postage": _yuan(postage),
                "pay_type": rng.choice(("WEIXIN", "ALIPAY", "PDDPAY")),
                "pay_no": f"42000022342026{rng.randrange(10**14):014d}",
                "country": "中国",
                "country_id": 0,
                "province": province,
                "province_id": province_id,
                "city": city,
                "city_id": city_id,
                "town": town,
                "town_id": town_id,
                "address": _cipher(rng),
                "address_mask": f"{province}{city}{town}****",
                "receiver_address": _cipher(rng),
                "receiver_address_mask": "****",
                "receiver_name": _cipher(rng),
                "receiver_name_mask": f"{rng.choice(SURNAMES)}**",
                "receiver_phone": f"${mobile_head}$AgAAAA{''.join(rng.choice(B64) for _ in range(38))}=$0$",
                "receiver_phone_mask": f"{mobile_head}****{rng.randrange(10000):04d}",
                "tracking_number": tracking,
                "logistics_id": logistics_id,
                "item_list": items,
                "remark": "",
                "buyer_memo": "",
                "invoice_status": 0,
                "free_sf": 0,
                "self_contained": 0,
                "risk_control_status": 0,
                "shipping_type": 0,
                "stock_out_handle_status": -1,
                "is_stock_out": 0,
                "home_delivery_type": 0,
                "return_freight_payer": 0,
                "support_nationwide_warranty": 0,
                "only_support_replace": 0,
                "cat_id_1": 20,
                "cat_id_2": 8434,
                "cat_id_3": 8439,
                "cat_id_4": 0,
                "card_info_list": [],
                "inner_transaction_id": "",
            }
        )
    return orders


def advance(order: Mapping[str, Any], moment: datetime, rng: random.Random) -> dict[str, Any]:
    """The changes the next seller/buyer action makes (ship, sign, a refund, or a note)."""
    status, refund, confirm = order.get("order_status"), order.get("refund_status"), order.get("confirm_status")
    if confirm == 1 and status == 1 and refund == 1:
        logistics_id, prefix = rng.choice(CARRIERS)
        tracking = prefix + "".join(rng.choice("0123456789") for _ in range(12))
        return {
            "order_status": 2,
            "shipping_time": to_pdd_time(moment),
            "tracking_number": tracking,
            "logistics_id": logistics_id,
        }
    if confirm == 1 and status == 2 and refund == 1:
        return {"order_status": 3, "receive_time": to_pdd_time(moment)}
    if confirm == 1 and refund == 1:
        return {"refund_status": 2, "after_sales_status": 5}
    return {"remark": f"备注{rng.randrange(1000)}"}


# --- the gateway -------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted on every gateway call (1-based); 0 = off."""

    rate_limit_every: int = 0  # 70031 调用过于频繁
    http_429_every: int = 0
    error_500_every: int = 0
    internal_error_every: int = 0  # 50000 系统内部错误
    slow_every: int = 0
    slow_seconds: float = 0.0
    duplicate_every: int = 0  # a list page repeats one of its records
    modify_every: int = 0  # before answering, update an order of the query not on this page
    max_modifications: int = 0  # 0 = unlimited


class PddError(Exception):
    def __init__(self, code: int, msg: str, sub_msg: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.sub_msg = code, msg, sub_msg


def _json(doc: Mapping[str, Any]) -> web.Response:
    return web.Response(
        body=json.dumps(doc, ensure_ascii=False).encode("utf-8"), content_type="application/json", charset="utf-8"
    )


@dataclass
class PddSimulator:
    """The gateway's state: credentials, orders, faults, and counters of what it answered."""

    client_id: str
    client_secret: str
    access_token: str
    store: OrderStore = field(default_factory=OrderStore)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], datetime] = utc_now
    seed: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    modified_keys: list[str] = field(default_factory=list)
    before_list: Callable[[PddSimulator, int], None] | None = None  # test hook: (simulator, page)
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.pdd.scenario)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> PddSimulator:
        return cls(
            client_id=settings.pdd_client_id,
            client_secret=settings.pdd_client_secret.get_secret_value(),
            access_token=settings.pdd_access_token.get_secret_value(),
            **kw,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", GATEWAY_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Read the request first: a client that times out on a slow answer must not break it.
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        self.stats["calls"] += 1
        n = self.stats["calls"]
        request_id = f"{n:017d}"
        if self.scenario is not None and self.scenario.gate() is not None:
            # The platform is down: PDD's 50000 "系统内部错误" envelope (retried by the client).
            self.stats["outage"] += 1
            return self._error(PddError(50000, "系统内部错误"), request_id)
        f = self.faults
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self.stats["rate_limited"] += 1
            return self._error(PddError(70031, "调用过于频繁，请调整调用频率"), request_id)
        if f.http_429_every and n % f.http_429_every == 0:
            self.stats["http_429"] += 1
            return web.Response(status=429, text="Too Many Requests")
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            return web.Response(
                status=500, text="<html><body>500 Internal Server Error</body></html>", content_type="text/html"
            )
        if f.internal_error_every and n % f.internal_error_every == 0:
            self.stats["internal_error"] += 1
            return self._error(PddError(50000, "系统内部错误"), request_id)
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        try:
            self._check_common(params)
            body = self._increment_get(params, request_id)
        except PddError as exc:
            self.stats["pdd_error"] += 1
            self.stats[f"pdd_error_{exc.code}"] += 1
            return self._error(exc, request_id)
        self.stats["ok"] += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _error(self, exc: PddError, request_id: str) -> web.Response:
        return _json(
            {
                "error_response": {
                    "error_msg": exc.msg,
                    "sub_msg": exc.sub_msg,
                    "sub_code": str(exc.code) if exc.sub_msg else None,
                    "error_code": exc.code,
                    "request_id": request_id,
                }
            }
        )

    def _check_common(self, p: Mapping[str, str]) -> None:
        for name in ("type", "client_id", "timestamp", "sign"):
            if not p.get(name):
                raise PddError(10001, f"公共参数错误:{name}")
        if p["client_id"] != self.client_id:
            raise PddError(10016, "client下线或者clientId不正确")
        try:
            sent = datetime.fromtimestamp(int(p["timestamp"]), UTC)
        except (ValueError, OverflowError, OSError):
            raise PddError(10001, "公共参数错误:timestamp") from None
        if abs(sent - self.clock()) > TIMESTAMP_TOLERANCE:
            raise PddError(10001, "公共参数错误:timestamp", "timestamp与服务器时间差值超过10分钟")
        if p.get("data_type", "JSON") != "JSON":
            raise PddError(10001, "公共参数错误:data_type", "this simulator answers JSON only")
        if not signing.verify(p, self.client_secret):
            raise PddError(20004, "签名sign校验失败")
        if p["type"] != TYPE_INCREMENT_GET:
            raise PddError(10017, "type不正确")
        if p.get("access_token") != self.access_token:
            raise PddError(20032, "access_token或client_id错误")

    def _increment_get(self, p: Mapping[str, str], request_id: str) -> bytes:
        required = ("start_updated_at", "end_updated_at", "is_lucky_flag", "order_status", "refund_status")
        for name in required:
            if not p.get(name):
                raise PddError(10000, "参数错误", f"{name}不能为空")
        try:
            start = datetime.fromtimestamp(int(p["start_updated_at"]), UTC)
            end = datetime.fromtimestamp(int(p["end_updated_at"]), UTC)
            page = int(p.get("page", "1"))
            page_size = int(p.get("page_size", str(MAX_PAGE_SIZE)))
            order_status, refund_status, lucky = (
                int(p["order_status"]),
                int(p["refund_status"]),
                int(p["is_lucky_flag"]),
            )
            trade_type = int(p["trade_type"]) if p.get("trade_type") else None
        except (ValueError, OverflowError, OSError):
            raise PddError(10000, "参数错误", "时间、页码与状态须为整数") from None
        if end < start:
            raise PddError(10000, "参数错误", "end_updated_at不能早于start_updated_at")
        if end - start > MAX_WINDOW:
            raise PddError(10000, "参数错误", "end_updated_at - start_updated_at 不能超过30分钟")
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise PddError(10000, "参数错误", f"page从1开始，page_size最大{MAX_PAGE_SIZE}")
        if self.before_list is not None:
            self.before_list(self, page)

        def query() -> list[StoredOrder]:
            return self.store.query(
                start, end, order_status=order_status, refund_status=refund_status, lucky=lucky, trade_type=trade_type
            )

        hits = query()
        offset = (page - 1) * page_size
        self.stats["list_calls"] += 1
        if self.faults.modify_every and self.stats["list_calls"] % self.faults.modify_every == 0:
            others = [h for i, h in enumerate(hits) if not offset <= i < offset + page_size]
            self._modify_one(others or hits)
            hits = query()
        chosen = [o.raw for o in hits[offset : offset + page_size]]
        if chosen and self.faults.duplicate_every and self.stats["list_calls"] % self.faults.duplicate_every == 0:
            self.stats["duplicated"] += 1
            chosen.append(chosen[-1])
        parts = [b'"' + LIST_KEY.encode() + b'":[' + b",".join(chosen) + b"]"]
        if p.get("use_has_next", "false").lower() == "true":
            parts.append(b'"has_next":' + (b"true" if offset + page_size < len(hits) else b"false"))
        else:
            parts.append(b'"total_count":' + str(len(hits)).encode())
        parts.append(b'"request_id":"' + request_id.encode() + b'"')
        return b'{"' + RESPONSE_KEY.encode() + b'":{' + b",".join(parts) + b"}}"

    def modify(self, key: str, moment: datetime | None = None) -> StoredOrder:
        """Update one order now (its ``updated_at`` becomes ``moment``, default the clock)."""
        target = self.store.get(key)
        if target is None:
            raise KeyError(key)
        when = max(moment or self.clock(), target.updated + timedelta(seconds=1))
        stored = self.store.update(key, advance(json.loads(target.raw), when, self._rng), updated=when)
        self.modified_keys.append(key)
        self.stats["modified"] += 1
        return stored

    def _modify_one(self, candidates: list[StoredOrder]) -> None:
        limit = self.faults.max_modifications
        if candidates and not (limit and len(self.modified_keys) >= limit):
            self.modify(self._rng.choice(candidates).key)


# --- running it --------------------------------------------------------------------------


@dataclass
class RunningSimulator:
    """A simulator served by aiohttp in this process."""

    simulator: PddSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{GATEWAY_PATH}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: PddSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start serving ``simulator`` (port 0 = an ephemeral port); close() the result to stop."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("pdd simulator on http://%s:%s%s (%d orders)", host, bound, GATEWAY_PATH, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
