"""An in-process JOS gateway for the POP order search, for tests and demos.

Faithful where the connector depends on it: form (or query) system parameters, the MD5
signature with JOS's error 12 "Invalid Signature", app key / access_token / version checks,
``timestamp`` within JOS's 6 minutes, ``360buy_param_json`` business parameters, orders
filtered by ``modified`` (``dateType=0``) or ``orderStartTime`` (``dateType=1``) in
``[start_date, end_date]`` (Beijing time) and by ``order_state`` (required), sorted by that
time (``sortType=1`` descending, else ascending), ``page``/``page_size`` (1..100),
``orderTotal``, the one-month window limit, and the envelopes: ``{"<method>_responce":
{"code": "0", "searchorderinfo_result": {"apiResult": ..., "orderInfoList": [...],
"orderTotal": n}}}`` and ``{"error_response": {"code", "zh_desc", "en_desc"}}``.

Business-parameter failures (window too long, bad page size) come back as
``apiResult.success = false`` with a Chinese/English message, as the order service answers;
gateway codes other than the documented 2/8/12/14/15 are this simulator's choice.

Simplifications: ``optional_fields`` is required but not used to project (an order's bytes
are the same in every answer); JSON only.

Fault knobs (all off by default, counted per gateway call): JOS "App Call Limited", HTTP 429,
HTTP 500, slow answers; on order-search calls, duplicated records and orders modified while
the client pages (their ``modified`` jumps to now, as on the platform).
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

from connectors.jd import signing
from connectors.jd.client import (
    METHODS,
    RESULT_KEY,
    from_jos_time,
    order_key,
    order_modified,
    response_key,
    to_jos_time,
)
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

GATEWAY_PATH = "/routerjson"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
TIMESTAMP_TOLERANCE = timedelta(minutes=6)  # JOS: "允许客户端请求时间误差为6分钟"


def utc_now() -> datetime:
    return datetime.now(UTC)


def serialise(order: Mapping[str, Any]) -> bytes:
    """How the simulator writes an order: compact UTF-8 JSON, key order kept."""
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def one_month_after(moment: datetime) -> datetime:
    """The same wall-clock time one calendar month later (clamped to the month's end)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


# --- the order store ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoredOrder:
    key: str
    modified: datetime
    created: datetime
    state: str
    raw: bytes


class OrderStore:
    """Current version of each order (by ``orderId``), plus every version ever served."""

    def __init__(self) -> None:
        self._orders: dict[str, StoredOrder] = {}
        self.versions: dict[str, list[bytes]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[StoredOrder]:
        return iter(self._orders.values())

    def add(self, order: Mapping[str, Any], *, raw: bytes | None = None) -> StoredOrder:
        """Store (or replace, by ``orderId``) an order; it needs an orderId and a modified time.

        ``raw``: the order's exact bytes, served as given (default: serialised here)."""
        key = order_key(order)
        modified = order_modified(order)
        if key is None or modified is None:
            raise ValueError("order needs a readable orderId and modified")
        start = order.get("orderStartTime")
        created = from_jos_time(start) if isinstance(start, str) else modified
        state = order.get("orderState")
        stored = StoredOrder(key.decode(), modified, created, str(state), serialise(order) if raw is None else raw)
        self._orders[stored.key] = stored
        self.versions.setdefault(stored.key, []).append(stored.raw)
        return stored

    def add_many(self, orders: Iterable[Mapping[str, Any]]) -> None:
        for order in orders:
            self.add(order)

    def add_raw(self, raw: bytes) -> StoredOrder:
        """Store an order given as its exact JSON bytes (a scenario record's value)."""
        return self.add(json.loads(raw), raw=raw)

    def update(self, key: str, changes: Mapping[str, Any], *, modified: datetime) -> StoredOrder:
        """Apply ``changes`` and bump ``modified``, as the platform does on every change."""
        order = json.loads(self._orders[key].raw)
        order.update(changes)
        order["modified"] = to_jos_time(modified)
        return self.add(order)

    def get(self, key: str) -> StoredOrder | None:
        return self._orders.get(key)

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: o.raw for k, o in self._orders.items()}

    def query(
        self, start: datetime, end: datetime, states: Iterable[str], *, by_created: bool, descending: bool
    ) -> list[StoredOrder]:
        wanted = set(states)

        def when(o: StoredOrder) -> datetime:
            return o.created if by_created else o.modified

        hits = [o for o in self._orders.values() if start <= when(o) <= end and o.state in wanted]
        hits.sort(key=lambda o: (when(o), o.key), reverse=descending)
        return hits


# --- realistic generated orders ----------------------------------------------------------

# (orderState, orderStateRemark, weight) - JOS OrderSearchInfo.orderState values.
STATES: tuple[tuple[str, str, int], ...] = (
    ("WAIT_SELLER_STOCK_OUT", "等待出库", 25),
    ("WAIT_SELLER_DELIVERY", "等待发货", 2),
    ("PAUSE", "暂停", 2),
    ("POP_ORDER_PAUSE", "POP业务暂停", 1),
    ("LOCKED", "已锁定", 3),
    ("WAIT_SEND_CODE", "等待发码", 1),
    ("WAIT_GOODS_RECEIVE_CONFIRM", "等待确认收货", 25),
    ("FINISHED_L", "完成", 25),
    ("TRADE_CANCELED", "取消", 8),
    ("DELIVERY_RETURN", "配送退货", 2),
)
REMARKS = {state: remark for state, remark, _ in STATES}
SHIPPED = {"WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L", "DELIVERY_RETURN"}
ENDED = {"FINISHED_L", "TRADE_CANCELED", "DELIVERY_RETURN"}
NO_END = "0001-01-01 00:00:00"  # JOS's orderEndTime for orders not ended

# (skuName, jdPrice, wareId, skuId, outerSkuId, productNo)
CATALOGUE: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("纯棉短袖T恤 白色 M", "89.00", "100009876543", "100012345678", "TSHIRT-WHT-M", "TSHIRT"),
    ("纯棉短袖T恤 黑色 L", "89.00", "100009876543", "100012345679", "TSHIRT-BLK-L", "TSHIRT"),
    ("船袜五双装", "90.00", "100009876599", "100012349999", "SOCKS-5P", "SOCKS"),
    ("保温杯 500ml", "129.00", "100009871111", "100012341111", "CUP-500-BLK", "CUP"),
    ("蓝牙耳机 降噪", "299.00", "100009872222", "100012342222", "EAR-ANC-01", "EAR"),
    ("机械键盘 87键 红轴", "459.00", "100009873333", "100012343333", "KB-87-RED", "KB"),
)
# (province, city, county, town, provinceId, cityId, countyId, townId)
ADDRESSES: tuple[tuple[str, str, str, str, str, str, str, str], ...] = (
    ("浙江", "杭州市", "余杭区", "五常街道", "15", "1213", "3411", "58124"),
    ("北京", "北京市", "朝阳区", "三环到四环之间", "1", "72", "2799", "0"),
    ("广东", "深圳市", "南山区", "粤海街道", "19", "1607", "3155", "51678"),
    ("江苏", "南京市", "鼓楼区", "宁海路街道", "12", "904", "3373", "52011"),
)
SURNAMES = "张王李赵刘陈杨黄周吴"
# (logisticsId, waybill prefix, digits)
CARRIERS: tuple[tuple[str, str, int], ...] = (("467", "SF", 12), ("2087", "JDVA", 11), ("463", "YT", 13))
CENT = Decimal("0.01")
OPEN_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def generate_orders(
    n: int,
    *,
    seed: int,
    start: datetime,
    end: datetime | None = None,
    vender_id: str = "10086123",
    same_second_share: float = 0.1,
) -> list[dict[str, Any]]:
    """``n`` deterministic JOS ``OrderSearchInfo`` objects modified within ``[start, end)``.

    Shaped like the golden fixtures (tests/fixtures/jd): every documented state, 1-3 lines,
    consignee masked as JOS masks it, a waybill on shipped orders, and a share of orders
    modified in the same second as the previous one (bulk updates).
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    end = end or start + timedelta(hours=6)
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    rng = random.Random(seed)
    states = [s for s, _, _ in STATES]
    weights = [w for _, _, w in STATES]
    span = (end - start).total_seconds()
    used: set[str] = set()
    orders: list[dict[str, Any]] = []
    previous: datetime | None = None
    for _ in range(n):
        if previous is not None and rng.random() < same_second_share:
            modified = previous
        else:
            modified = start + timedelta(seconds=int(rng.random() * span))
        previous = modified
        state = rng.choices(states, weights)[0]
        while True:
            oid = str(300_000_000_000 + rng.randrange(10**11))
            if oid not in used:
                used.add(oid)
                break
        t = modified
        end_time = NO_END
        if state in ENDED:
            end_time = to_jos_time(t)
            t -= timedelta(seconds=rng.randint(0, 2 * 86400))
        if state in SHIPPED:
            t -= timedelta(seconds=rng.randint(600, 2 * 86400))
        paid = t - timedelta(seconds=rng.randint(5, 1800))
        created = paid - timedelta(seconds=rng.randint(5, 600))
        n_lines = rng.choices((1, 2, 3), (70, 22, 8))[0]
        items = []
        total = Decimal(0)
        for name, price, ware_id, sku_id, outer, product_no in rng.sample(CATALOGUE, n_lines):
            qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
            total += Decimal(price) * qty
            items.append(
                {
                    "skuId": sku_id,
                    "outerSkuId": outer,
                    "skuName": name,
                    "jdPrice": price,
                    "giftPoint": "0",
                    "wareId": ware_id,
                    "itemTotal": str(qty),
                    "productNo": product_no,
                    "serviceName": "",
                    "newStoreId": "0",
                }
            )
        discount = Decimal(rng.choice((0, 0, 5, 10, 11))) if total > 20 else Decimal(0)
        freight = Decimal(rng.choice((0, 0, 0, 6)))
        seller_price = total - discount
        province, city, county, town, pid, cid, coid, tid = rng.choice(ADDRESSES)
        waybill, logistics = "", ""
        if state in SHIPPED:
            logistics, prefix, digits = rng.choice(CARRIERS)
            waybill = prefix + "".join(rng.choice("0123456789") for _ in range(digits))
        coupons = (
            [{"orderId": oid, "skuId": "", "couponType": "100-店铺优惠", "couponPrice": _money(discount)}]
            if discount
            else []
        )
        orders.append(
            {
                "orderId": oid,
                "venderId": vender_id,
                "orderType": "22",
                "payType": "4-在线支付",
                "orderTotalPrice": _money(total),
                "orderSellerPrice": _money(seller_price),
                "orderPayment": _money(seller_price + freight),
                "freightPrice": _money(freight),
                "sellerDiscount": _money(discount),
                "orderState": state,
                "orderStateRemark": REMARKS[state],
                "deliveryType": "任意时间",
                "invoiceInfo": "不需要开具发票",
                "invoiceCode": "",
                "orderRemark": "",
                "orderStartTime": to_jos_time(created),
                "orderEndTime": end_time,
                "consigneeInfo": {
                    "fullname": f"{rng.choice(SURNAMES)}*",
                    "telephone": "",
                    "mobile": f"1{rng.choice('3589')}{rng.randrange(10)}****{rng.randrange(10000):04d}",
                    "fullAddress": f"{province}{city}{county}{town}***",
                    "province": province,
                    "city": city,
                    "county": county,
                    "town": town,
                    "provinceId": pid,
                    "cityId": cid,
                    "countyId": coid,
                    "townId": tid,
                },
                "itemInfoList": items,
                "couponDetailList": coupons,
                "venderRemark": "",
                "balanceUsed": "0.00",
                "pin": "",
                "open_id_buyer": "o*AA" + "".join(rng.choice(OPEN_ID_ALPHABET) for _ in range(40)),
                "xid_buyer": "",
                "returnOrder": "0",
                "paymentConfirmTime": to_jos_time(paid),
                "waybill": waybill,
                "logisticsId": logistics,
                "modified": to_jos_time(modified),
                "directParentOrderId": "",
                "parentOrderId": "0",
                "orderSource": rng.choice(("移动端订单", "PC端订单", "微信订单")),
                "storeOrder": "",
                "idSopShipmenttype": 70,
                "storeId": "0",
            }
        )
    return orders


def advance(order: Mapping[str, Any], moment: datetime, rng: random.Random) -> dict[str, Any]:
    """The changes a seller/buyer action makes next (ship, confirm, cancel, or a note)."""
    state = order.get("orderState")
    if state == "WAIT_SELLER_STOCK_OUT":
        logistics, prefix, digits = rng.choice(CARRIERS)
        waybill = prefix + "".join(rng.choice("0123456789") for _ in range(digits))
        return {
            "orderState": "WAIT_GOODS_RECEIVE_CONFIRM",
            "orderStateRemark": REMARKS["WAIT_GOODS_RECEIVE_CONFIRM"],
            "waybill": waybill,
            "logisticsId": logistics,
        }
    if state == "WAIT_GOODS_RECEIVE_CONFIRM":
        return {
            "orderState": "FINISHED_L",
            "orderStateRemark": REMARKS["FINISHED_L"],
            "orderEndTime": to_jos_time(moment),
        }
    if state == "LOCKED":
        return {
            "orderState": "TRADE_CANCELED",
            "orderStateRemark": REMARKS["TRADE_CANCELED"],
            "orderEndTime": to_jos_time(moment),
        }
    return {"venderRemark": f"备注{rng.randrange(1000)}"}


# --- the gateway -------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted on every gateway call (1-based); 0 = off."""

    rate_limit_every: int = 0  # JOS code 2 "App Call Limited"
    http_429_every: int = 0
    error_500_every: int = 0
    slow_every: int = 0  # delay the answer by slow_seconds
    slow_seconds: float = 0.0
    duplicate_every: int = 0  # an order-search page repeats one of its records
    modify_every: int = 0  # before answering, modify an order of the query not on this page
    max_modifications: int = 0  # 0 = unlimited


class JosError(Exception):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


class ApiResultError(Exception):
    def __init__(self, number: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.number, self.zh, self.en = number, zh, en


def _json(doc: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
    )


def outage_response() -> web.Response:
    """What the gateway answers while the platform is down: HTTP 503 from its front proxy.
    (No JOS error code for a platform outage was confirmed; the client retries any 5xx.)"""
    return web.Response(
        status=503, text="<html><body>503 Service Temporarily Unavailable</body></html>", content_type="text/html"
    )


@dataclass
class JdSimulator:
    """The gateway's state: credentials, orders, faults, and counters of what it answered."""

    app_key: str
    app_secret: str
    access_token: str
    store: OrderStore = field(default_factory=OrderStore)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], datetime] = utc_now
    seed: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    modified_keys: list[str] = field(default_factory=list)
    before_search: Callable[[JdSimulator, Mapping[str, Any]], None] | None = None  # test hook
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.jd.scenario)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.in_flight = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> JdSimulator:
        return cls(
            app_key=settings.jd_app_key,
            app_secret=settings.jd_app_secret.get_secret_value(),
            access_token=settings.jd_access_token.get_secret_value(),
            **kw,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", GATEWAY_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1  # requests being answered right now (a test kills clients mid-call)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.scenario is not None and self.scenario.gate() is not None:
            self.stats["outage"] += 1
            return outage_response()
        # Read the request first: a client that times out on a slow answer must not break it.
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        self.stats["calls"] += 1
        n = self.stats["calls"]
        f = self.faults
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self.stats["rate_limited"] += 1
            return _json(
                {"error_response": {"code": "2", "zh_desc": "限制时间内调用失败次数", "en_desc": "App Call Limited"}}
            )
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
            self._check_system(params)
            body = self._order_search(params)
        except JosError as exc:
            self.stats["jos_error"] += 1
            self.stats[f"jos_error_{exc.code}"] += 1
            return _json({"error_response": {"code": exc.code, "zh_desc": exc.zh, "en_desc": exc.en}})
        except ApiResultError as exc:
            self.stats["api_error"] += 1
            result = {"success": False, "englishErrCode": exc.en, "chineseErrCode": exc.zh, "numberCode": exc.number}
            key = response_key(params["method"])
            return _json({key: {"code": "0", RESULT_KEY: {"apiResult": result, "orderInfoList": [], "orderTotal": 0}}})
        self.stats["ok"] += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _check_system(self, p: Mapping[str, str]) -> None:
        if not p.get("method"):
            raise JosError("14", "缺少方法名参数", "Missing Method")
        if not p.get("app_key"):
            raise JosError("16", "缺少AppKey参数", "Missing App Key")
        if p["app_key"] != self.app_key:
            raise JosError("17", "无效的AppKey参数", "Invalid App Key")
        if not p.get("timestamp"):
            raise JosError("7", "缺少时间戳参数", "Missing Timestamp")
        try:
            sent = from_jos_time(p["timestamp"])
        except ValueError:
            raise JosError("8", "非法的时间戳参数", "Invalid Timestamp") from None
        if abs(sent - self.clock()) > TIMESTAMP_TOLERANCE:
            raise JosError("8", "非法的时间戳参数", "Invalid Timestamp")
        if not p.get("v"):
            raise JosError("4", "缺少版本参数", "Missing Version")
        if p["v"] != "2.0":
            raise JosError("5", "不支持的版本号", "Unsupported Version")
        if not p.get("sign"):
            raise JosError("11", "缺少签名参数", "Missing Signature")
        if not signing.verify(p, self.app_secret):
            raise JosError("12", "无效签名", "Invalid Signature")
        if not p.get("access_token"):
            raise JosError("18", "缺少access_token参数", "Missing access_token")
        if p["access_token"] != self.access_token:
            raise JosError("19", "无效access_token", "Invalid access_token")
        if p["method"] not in METHODS:
            raise JosError("15", "不存在的方法名", "Invalid Method")

    def _order_search(self, p: Mapping[str, str]) -> bytes:
        try:
            business = json.loads(p.get("360buy_param_json") or "{}")
        except ValueError:
            raise JosError("61", "360buy_param_json 不是合法的JSON", "Invalid 360buy_param_json") from None
        if not isinstance(business, dict):
            raise JosError("61", "360buy_param_json 不是合法的JSON", "Invalid 360buy_param_json")
        for name in ("start_date", "end_date", "order_state", "optional_fields"):
            if not str(business.get(name) or "").strip():
                raise ApiResultError(10100, f"{name}不能为空", f"{name} is required")
        try:
            start = from_jos_time(str(business["start_date"]))
            end = from_jos_time(str(business["end_date"]))
            page = int(business.get("page", 1))
            page_size = int(business.get("page_size", DEFAULT_PAGE_SIZE))
            date_type = int(business.get("dateType", 0) or 0)
            sort_type = int(business.get("sortType", 0) or 0)
        except (TypeError, ValueError):
            raise ApiResultError(10101, "参数格式错误", "invalid parameter format") from None
        if end < start:
            raise ApiResultError(10102, "结束时间不能早于开始时间", "end_date is before start_date")
        if end > one_month_after(start):
            raise ApiResultError(10103, "开始时间和结束时间，不得相差超过1个月", "time span exceeds one month")
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ApiResultError(10104, f"page从1开始, page_size最大{MAX_PAGE_SIZE}", "invalid page or page_size")
        if self.before_search is not None:
            self.before_search(self, business)
        states = [s.strip() for s in str(business["order_state"]).split(",") if s.strip()]
        by_created, descending = date_type == 1, sort_type == 1
        hits = self.store.query(start, end, states, by_created=by_created, descending=descending)
        offset = (page - 1) * page_size
        if self._should(self.faults.modify_every, "search_calls"):
            others = [h for i, h in enumerate(hits) if not offset <= i < offset + page_size]
            self._modify_one(others or hits)
            hits = self.store.query(start, end, states, by_created=by_created, descending=descending)
        chosen = [o.raw for o in hits[offset : offset + page_size]]
        if chosen and self.faults.duplicate_every and self.stats["search_calls"] % self.faults.duplicate_every == 0:
            self.stats["duplicated"] += 1
            chosen.append(chosen[0])
        key = response_key(p["method"])
        return (
            b'{"' + key.encode() + b'":{"code":"0","' + RESULT_KEY.encode() + b'":{'
            b'"apiResult":{"success":true,"englishErrCode":"","chineseErrCode":"","numberCode":0},'
            b'"orderInfoList":[' + b",".join(chosen) + b'],"orderTotal":' + str(len(hits)).encode() + b"}}}"
        )

    def _should(self, every: int, counter: str) -> bool:
        self.stats[counter] += 1
        return bool(every) and self.stats[counter] % every == 0

    def _modify_one(self, candidates: list[StoredOrder]) -> None:
        limit = self.faults.max_modifications
        if not candidates or (limit and len(self.modified_keys) >= limit):
            return
        target = self._rng.choice(candidates)
        moment = max(self.clock(), target.modified + timedelta(seconds=1))
        order = json.loads(target.raw)
        self.store.update(target.key, advance(order, moment, self._rng), modified=moment)
        self.modified_keys.append(target.key)
        self.stats["modified"] += 1


# --- running it --------------------------------------------------------------------------


@dataclass
class RunningSimulator:
    """A simulator served by aiohttp in this process."""

    simulator: JdSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{GATEWAY_PATH}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: JdSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start serving ``simulator`` (port 0 = an ephemeral port); close() the result to stop."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("jd simulator on http://%s:%s%s (%d orders)", host, bound, GATEWAY_PATH, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
