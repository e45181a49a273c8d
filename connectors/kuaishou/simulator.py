"""An in-process Kuaishou open API for ``open.order.cursor.list``, for tests and demos.

Faithful where the connector depends on it: the path (``/open/order/cursor/list``, the method
with ``.`` -> ``/``), query or form parameters, both signatures (MD5 and HMAC_SHA256) with a
refusal on a bad one, appkey / access_token / version / method checks, ``timestamp`` (ms), the
business JSON in ``param``, orders with ``updateTime`` (``queryType=2``) or ``createTime``
(``queryType=1``) in ``[beginTime, endTime)``, sorted by it (``sort=1`` descending, else
ascending), ``orderViewStatus``, ``pageSize`` (1..100), a keyset ``cursor`` (``<time>_<oid>``,
as the platform's look) and ``"nomore"`` after the last page, the 7-day window (300004) and
90-day history (300005) limits, ``endTime`` after ``beginTime`` (300003), and the envelopes
``{"result": 1, "data": {...}}`` / ``{"result": <code>, "error_msg": ..., ...}``.

This simulator's own choices, where the docs at hand say nothing: ``endTime`` is exclusive,
the timestamp tolerance is 10 min, a bad signature answers ``result`` 28 "验签失败" and a bad
token 24, flow control answers ``result`` 802000 with the documented "Exceed qps limit" text.

Fault knobs (all off by default, counted per call): flow control, HTTP 429, HTTP 500, slow
answers; on list calls, duplicated records, orders updated while the client pages
(``updateTime`` jumps to now, as on the platform), and empty pages that still hand out a cursor.
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
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.kuaishou import signing
from connectors.kuaishou.client import METHOD_CURSOR_LIST, NO_MORE, from_millis, order_key, order_updated, to_millis
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

PATH = "/" + METHOD_CURSOR_LIST.replace(".", "/")
MAX_PAGE_SIZE = 100
MAX_WINDOW = timedelta(days=7)
HISTORY = timedelta(days=90)
TIMESTAMP_TOLERANCE = timedelta(minutes=10)
# orderViewStatus -> orderBaseInfo.status (1 = all)
VIEW_STATUS: dict[int, set[int]] = {2: {10}, 3: {30}, 4: {40}, 5: {50}, 6: {70}, 7: {80}}


def utc_now() -> datetime:
    return datetime.now(UTC)


def serialise(order: Mapping[str, Any]) -> bytes:
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the order store ---------------------------------------------------------------------


def apply_changes(order: dict[str, Any], changes: Mapping[str, Any], *, updated: datetime) -> dict[str, Any]:
    """``order`` with ``changes`` merged per top-level part and ``updateTime`` bumped (in place)."""
    for part, values in changes.items():
        if isinstance(values, dict) and isinstance(order.get(part), dict):
            order[part].update(values)
        else:
            order[part] = values
    order["orderBaseInfo"]["updateTime"] = to_millis(updated)
    return order


@dataclass(frozen=True)
class StoredOrder:
    key: str
    oid: int
    updated_ms: int
    created_ms: int
    status: int
    raw: bytes


class OrderStore:
    """Current version of each order (by ``oid``), plus every version ever served."""

    def __init__(self) -> None:
        self._orders: dict[str, StoredOrder] = {}
        self.versions: dict[str, list[bytes]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[StoredOrder]:
        return iter(self._orders.values())

    def add(self, order: Mapping[str, Any], *, raw: bytes | None = None) -> StoredOrder:
        """Store (or replace, by ``oid``) an order; ``raw`` is its exact bytes, served as given
        (default: serialised here)."""
        key = order_key(order)
        updated = order_updated(order)
        if key is None or updated is None:
            raise ValueError("order needs orderBaseInfo.oid and a readable updateTime")
        base = order["orderBaseInfo"]
        created = base.get("createTime")
        status = base.get("status")
        stored = StoredOrder(
            key=key.decode(),
            oid=int(key.decode()) if key.isdigit() else 0,
            updated_ms=to_millis(updated),
            created_ms=created if isinstance(created, int) else to_millis(updated),
            status=status if isinstance(status, int) else 0,
            raw=serialise(order) if raw is None else raw,
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
        """Apply ``changes`` (per top-level part) and bump ``updateTime``, as the platform does."""
        return self.add(apply_changes(json.loads(self._orders[key].raw), changes, updated=updated))

    def get(self, key: str) -> StoredOrder | None:
        return self._orders.get(key)

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: o.raw for k, o in self._orders.items()}

    def query(self, begin_ms: int, end_ms: int, *, by_created: bool, statuses: set[int] | None) -> list[StoredOrder]:
        """Orders with ``begin <= time < end`` (of ``statuses``), ascending by (time, oid)."""

        def when(o: StoredOrder) -> int:
            return o.created_ms if by_created else o.updated_ms

        hits = [
            o
            for o in self._orders.values()
            if begin_ms <= when(o) < end_ms and (statuses is None or o.status in statuses)
        ]
        hits.sort(key=lambda o: (when(o), o.oid))
        return hits


# --- realistic generated orders ----------------------------------------------------------

# (status, weight): orderBaseInfo.status
STATUS_WEIGHTS: tuple[tuple[int, int], ...] = ((10, 10), (30, 25), (40, 20), (50, 10), (70, 25), (80, 10))
# refund statuses seen on orders of a status: orderRefundList[].refundStatus
REFUNDS: dict[int, tuple[int, ...]] = {
    30: (10, 50),
    40: (10, 11, 20, 21, 22, 70),
    50: (11, 21, 22, 30, 40),
    70: (11, 30, 40, 70),
    80: (60, 60, 60, 70),
}
# (itemTitle, skuDesc, price fen, itemId, skuId, skuNick, goodsCode)
CATALOGUE: tuple[tuple[str, str, int, int, int, str, str], ...] = (
    ("纯棉短袖T恤", "白色 M", 8900, 888390669925, 888390671925, "TSHIRT-WHT-M", "TSHIRT"),
    ("纯棉短袖T恤", "黑色 L", 8900, 888390669925, 888390671926, "TSHIRT-BLK-L", "TSHIRT"),
    ("船袜五双装", "均码", 9000, 888390670001, 888390672001, "SOCKS-5P", "SOCKS"),
    ("保温杯 500ml", "黑色", 12900, 888390670002, 888390672002, "CUP-500-BLK", "CUP"),
    ("蓝牙耳机 降噪", "曜石黑", 29900, 888390670003, 888390672003, "EAR-ANC-01", "EAR"),
)
# (province, provinceCode, city, cityCode, district, districtCode, town, townCode)
ADDRESSES: tuple[tuple[str, int, str, int, str, int, str, int], ...] = (
    ("浙江省", 330000, "杭州市", 330100, "余杭区", 330110, "五常街道", 330110005),
    ("广东省", 440000, "深圳市", 440300, "南山区", 440305, "粤海街道", 440305007),
    ("北京市", 110000, "北京市", 110100, "朝阳区", 110105, "望京街道", 110105026),
)
SURNAMES = "张王李赵刘陈杨黄周吴"
EXPRESS: tuple[tuple[int, str], ...] = ((4, "SF"), (6, "YT"), (8, "ZTO"))  # (expressCode, prefix)
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
HOUR_MS = 3_600_000


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(B64) for _ in range(n))


def generate_orders(
    n: int, *, seed: int, start: datetime, end: datetime | None = None, same_ms_share: float = 0.05
) -> list[dict[str, Any]]:
    """``n`` deterministic Kuaishou orders (the ``orderList`` element shape of the golden
    fixtures) updated within ``[start, end)``: every status, refunds in the states the platform
    shows them, one item per order, address encrypted + desensitised, a share updated in the
    same millisecond as the previous one (bulk updates)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    end = end or start + timedelta(hours=6)
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    rng = random.Random(seed)
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    lo, span = to_millis(start), to_millis(end) - to_millis(start)
    used: set[int] = set()
    orders: list[dict[str, Any]] = []
    previous: int | None = None
    for _ in range(n):
        updated = previous if previous is not None and rng.random() < same_ms_share else lo + rng.randrange(span)
        previous = updated
        status = rng.choices(statuses, weights)[0]
        while True:
            oid = 2_400_000_000_000_000 + rng.randrange(10**14)
            if oid not in used:
                used.add(oid)
                break
        t = updated
        recv = send = refund_time = 0
        if status in (50, 70):
            recv = t - rng.randrange(HOUR_MS, 72 * HOUR_MS) if status == 70 else t
            t = recv - rng.randrange(HOUR_MS, 48 * HOUR_MS)
        if status in (40, 50, 70):
            send = t
            t = send - rng.randrange(600_000, 48 * HOUR_MS)
        unpaid = status == 10 or (status == 80 and rng.random() < 0.4)  # 80: cancelled before paying
        pay = 0 if unpaid else t - rng.randrange(5_000, 1_800_000)
        created = (pay or t) - rng.randrange(5_000, 600_000)
        title, desc, price, item_id, sku_id, sku_nick, goods_code = rng.choice(CATALOGUE)
        num = rng.choices((1, 2, 3), (80, 15, 5))[0]
        item_discount = rng.choice((0, 0, 300, 550)) * num
        express_fee = rng.choice((0, 0, 0, 600))
        total = price * num - item_discount + express_fee
        refunds: list[dict[str, Any]] = []
        if status in REFUNDS and pay and (status == 80 or rng.random() < 0.2):
            refunds.append({"refundId": rng.randrange(10**7, 10**8), "refundStatus": rng.choice(REFUNDS[status])})
            refund_time = t + rng.randrange(1, 3_600_000)
        logistics: list[dict[str, Any]] = []
        if send:
            code, prefix = rng.choice(EXPRESS)
            logistics.append({"expressNo": prefix + str(oid)[-12:], "expressCode": code, "logisticsId": 0})
        province, pcode, city, ccode, district, dcode, town, tcode = rng.choice(ADDRESSES)
        mobile_head = rng.choice(("138", "139", "186", "150"))
        orders.append(
            {
                "orderBaseInfo": {
                    "oid": oid,
                    "payTime": pay,
                    "buyerImage": f"https://p2.a.yximgs.com/uhead/AB/2026/01/01/00/{_token(rng, 24)}.jpg",
                    "buyerOpenId": f"{rng.getrandbits(128):032x}",
                    "buyerNick": f"{rng.choice('ABCDEFGH')}**",
                    "sellerOpenId": "a56c3e8b2d0f4e1c9b7a6d5e4f3c2b1a",
                    "sellerNick": "某某旗舰店",
                    "expressFee": express_fee,
                    "discountFee": item_discount,
                    "totalFee": total,
                    "status": status,
                    "sendTime": send,
                    "refundTime": refund_time if refunds else 0,
                    "createTime": created,
                    "updateTime": updated,
                    "remark": "",
                    "theDayOfDeliverGoodsTime": 2,
                    "promiseTimeStampOfDelivery": (pay or created) + 48 * HOUR_MS,
                    "validPromiseShipmentTimeStamp": (pay or created) + 48 * HOUR_MS,
                    "activityType": 0,
                    "cpsType": rng.choice((0, 0, 1)),
                    "preSale": 0,
                    "recvTime": recv,
                    "coType": 0,
                    "commentStatus": 0,
                    "payType": rng.choice((1, 2)) if pay else 0,
                    "payChannel": rng.choice(("支付宝", "微信")) if pay else "",
                    "riskCode": 0,
                    "multiplePiecesNo": 0,
                    "priorityDelivery": False,
                    "orderSellerRoleInfo": {"roleId": 2131430925, "roleName": "商家", "roleType": 1},
                },
                "orderItemInfo": {
                    "skuId": sku_id,
                    "relSkuId": 0,
                    "skuDesc": desc,
                    "skuNick": sku_nick,
                    "itemId": item_id,
                    "relItemId": 0,
                    "itemTitle": title,
                    "itemLinkUrl": f"https://app.kwaixiaodian.com/merchant/shop/detail?id={item_id}",
                    "itemPicUrl": f"https://u1-000.ecukwai.com/ufile/adsocial/{goods_code.lower()}.jpg",
                    "num": num,
                    "originalPrice": price + 550,
                    "discountFee": item_discount,
                    "price": price,
                    "itemType": 1,
                    "goodsCode": goods_code,
                    "warehouseCode": "",
                    "orderItemId": 46_700_000_000_000 + rng.randrange(10**11),
                    "goodStoreCode": 0,
                },
                "orderAddress": {
                    "consignee": "",
                    "mobile": "",
                    "provinceCode": pcode,
                    "province": province,
                    "cityCode": ccode,
                    "city": city,
                    "districtCode": dcode,
                    "district": district,
                    "townCode": tcode,
                    "town": town,
                    "address": "",
                    "encryptedConsignee": f"#{_token(rng, 4)}#{_token(rng, 32)}",
                    "encryptedMobile": f"${mobile_head}0000${_token(rng, 32)}",
                    "encryptedAddress": f"~{town}~{_token(rng, 32)}",
                    "desensitiseConsignee": f"{rng.choice(SURNAMES)}**",
                    "desensitiseMobile": f"{mobile_head}****{rng.randrange(10000):04d}",
                    "desensitiseAddress": f"{town}***号",
                },
                "orderRefundList": refunds,
                "orderLogisticsInfo": logistics,
                "orderNote": {"orderNoteInfo": []},
                "orderCpsInfo": {
                    "distributorId": 0,
                    "distributorName": "",
                    "kwaiMoneyUserId": 0,
                    "kwaiMoneyUserNickName": "",
                    "activityUserId": 0,
                    "activityUserNickName": "",
                },
            }
        )
    return orders


def advance(order: Mapping[str, Any], moment_ms: int, rng: random.Random) -> dict[str, Any]:
    """The changes the next action makes (pay, ship, sign, complete, or a seller note)."""
    base = order.get("orderBaseInfo") or {}
    status = base.get("status")
    oid = str(base.get("oid", "0"))
    if status == 10:
        return {"orderBaseInfo": {"status": 30, "payTime": moment_ms, "payType": 1, "payChannel": "支付宝"}}
    if status == 30:
        code, prefix = rng.choice(EXPRESS)
        logistics = [{"expressNo": prefix + oid[-12:], "expressCode": code, "logisticsId": 0}]
        return {"orderBaseInfo": {"status": 40, "sendTime": moment_ms}, "orderLogisticsInfo": logistics}
    if status == 40:
        return {"orderBaseInfo": {"status": 50, "recvTime": moment_ms}}
    if status == 50:
        return {"orderBaseInfo": {"status": 70}}
    return {"orderBaseInfo": {"remark": f"备注{rng.randrange(1000)}"}}


# --- the API -----------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted on every call (1-based); 0 = off."""

    rate_limit_every: int = 0  # "Exceed qps limit" (result 802000)
    http_429_every: int = 0
    error_500_every: int = 0
    slow_every: int = 0
    slow_seconds: float = 0.0
    duplicate_every: int = 0  # a list page repeats one of its records
    modify_every: int = 0  # before answering, update an order of the query after this page
    max_modifications: int = 0  # 0 = unlimited
    empty_page_every: int = 0  # every Nth first page: no orders, but a cursor to go on with


class KsError(Exception):
    def __init__(self, result: int, msg: str) -> None:
        super().__init__(msg)
        self.result, self.msg = result, msg


def _json(doc: Mapping[str, Any], status: int = 200) -> web.Response:
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return web.Response(status=status, body=body, content_type="application/json", charset="utf-8")


def _error(exc: KsError) -> web.Response:
    code = str(exc.result)
    doc = {
        "result": exc.result,
        "error_msg": exc.msg,
        "msg": exc.msg,
        "subCode": code,
        "subMsg": exc.msg,
        "success": False,
    }
    return _json(doc)


def outage_response() -> web.Response:
    """What the open API answers while the platform is down: HTTP 503 from its front proxy.
    (No Kuaishou ``result`` code for a platform outage was confirmed; the client retries 5xx.)"""
    return web.Response(
        status=503, text="<html><body>503 Service Temporarily Unavailable</body></html>", content_type="text/html"
    )


@dataclass
class KuaishouSimulator:
    """The API's state: credentials, orders, faults, and counters of what it answered."""

    app_key: str
    sign_secret: str
    access_token: str
    store: OrderStore = field(default_factory=OrderStore)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], datetime] = utc_now
    seed: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    modified_keys: list[str] = field(default_factory=list)
    before_list: Callable[[KuaishouSimulator, str], None] | None = None  # test hook: (simulator, cursor)
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.kuaishou.scenario)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> KuaishouSimulator:
        return cls(
            app_key=settings.kuaishou_app_key,
            sign_secret=settings.kuaishou_sign_secret.get_secret_value(),
            access_token=settings.kuaishou_access_token.get_secret_value(),
            **kw,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
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
            key = f"[apiId:{METHOD_CURSOR_LIST};appkey:{self.app_key}]"
            return _error(KsError(802000, f"Exceed qps limit, KEY {key}, MAX_QPS [300.0]"))
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
            body = self._cursor_list(params)
        except KsError as exc:
            self.stats["ks_error"] += 1
            self.stats[f"ks_error_{exc.result}"] += 1
            return _error(exc)
        self.stats["ok"] += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _check_system(self, p: Mapping[str, str]) -> None:
        for name in ("appkey", "method", "access_token", "timestamp", "sign", "param"):
            if not p.get(name):
                raise KsError(21, f"缺少参数 {name}")
        if p["appkey"] != self.app_key:
            raise KsError(22, "appkey无效")
        if p["method"] != METHOD_CURSOR_LIST:
            raise KsError(25, f"method与请求路径不符: {p['method']}")
        if p.get("version", "1") != "1":
            raise KsError(26, "version无效")
        try:
            sent = from_millis(int(p["timestamp"]))
        except (ValueError, OverflowError):
            raise KsError(21, "timestamp无效") from None
        if abs(sent - self.clock()) > TIMESTAMP_TOLERANCE:
            raise KsError(21, "timestamp与服务器时间相差过大")
        if p.get("signMethod", "MD5") not in signing.SIGN_METHODS:
            raise KsError(27, "signMethod无效")
        if not signing.verify(p, self.sign_secret):
            raise KsError(28, "验签失败")
        if p["access_token"] != self.access_token:
            raise KsError(24, "access_token无效")

    def _cursor_list(self, p: Mapping[str, str]) -> bytes:
        try:
            param = json.loads(p["param"])
        except ValueError:
            raise KsError(100, "param不是合法的JSON") from None
        if not isinstance(param, dict):
            raise KsError(100, "param不是合法的JSON")
        try:
            begin, end = int(param["beginTime"]), int(param["endTime"])
            page_size = int(param.get("pageSize", 10))
            query_type = int(param.get("queryType", 1))
            sort = int(param.get("sort", 1))
            view = int(param.get("orderViewStatus", 1))
            cursor = str(param.get("cursor") or "")
        except (KeyError, TypeError, ValueError):
            raise KsError(100, "beginTime/endTime/pageSize 参数错误") from None
        now_ms = to_millis(self.clock())
        if end <= begin:
            raise KsError(300003, "ENDTIME MUST AFTER BEGINTIME")
        if end - begin > MAX_WINDOW // timedelta(milliseconds=1):
            raise KsError(300004, "SEARCH TIME RANGE EXPAND 7 DAYS")
        if begin < now_ms - HISTORY // timedelta(milliseconds=1):
            raise KsError(300005, "CAN NOT SEARCH BEFORE 90 DAYS")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise KsError(100, f"pageSize须在1到{MAX_PAGE_SIZE}之间")
        descending = sort == 1
        position: tuple[int, int] | None = None
        if cursor:
            try:
                t, o = cursor.split("_")
                position = (int(t), int(o))
            except ValueError:
                raise KsError(100, "cursor无效") from None
        if self.before_list is not None:
            self.before_list(self, cursor)
        by_created = query_type == 1
        statuses = VIEW_STATUS.get(view)

        def remaining() -> list[StoredOrder]:
            hits = self.store.query(begin, end, by_created=by_created, statuses=statuses)
            if descending:
                hits.reverse()
            if position is None:
                return hits

            def key(o: StoredOrder) -> tuple[int, int]:
                return (o.created_ms if by_created else o.updated_ms, o.oid)

            return [h for h in hits if (key(h) < position if descending else key(h) > position)]

        rest = remaining()
        self.stats["list_calls"] += 1
        calls = self.stats["list_calls"]
        f = self.faults
        if f.modify_every and calls % f.modify_every == 0:
            self._modify_one(rest[page_size:] or rest)
            rest = remaining()
        page = rest[:page_size]
        if not cursor:
            self.stats["first_pages"] += 1
        empty = f.empty_page_every and not cursor and self.stats["first_pages"] % f.empty_page_every == 0
        if empty and rest:
            self.stats["empty_pages"] += 1
            page = []  # a first page without orders, and a cursor that starts at the beginning
            next_cursor = f"{(end + 1) if descending else (begin - 1)}_0"
        elif len(rest) > len(page):
            last = page[-1]
            next_cursor = f"{last.created_ms if by_created else last.updated_ms}_{last.oid}"
        else:
            next_cursor = NO_MORE
        chosen = [o.raw for o in page]
        if chosen and f.duplicate_every and calls % f.duplicate_every == 0:
            self.stats["duplicated"] += 1
            chosen.append(chosen[0])
        data = (
            b'{"pageSize":' + str(page_size).encode() + b',"beginTime":' + str(begin).encode()
            + b',"endTime":' + str(end).encode() + b',"cursor":' + json.dumps(next_cursor).encode()
            + b',"orderList":[' + b",".join(chosen) + b"]}"
        )  # fmt: skip
        return b'{"result":1,"error_msg":"success","data":' + data + b"}"

    def modify(self, key: str, moment: datetime | None = None) -> StoredOrder:
        """Update one order now (its ``updateTime`` becomes ``moment``, default the clock)."""
        target = self.store.get(key)
        if target is None:
            raise KeyError(key)
        when_ms = max(to_millis(moment or self.clock()), target.updated_ms + 1)
        changes = advance(json.loads(target.raw), when_ms, self._rng)
        stored = self.store.update(key, changes, updated=from_millis(when_ms))
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
    """A simulator served by aiohttp in this process (``url`` is the API root)."""

    simulator: KuaishouSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: KuaishouSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start serving ``simulator`` (port 0 = an ephemeral port); close() the result to stop."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("kuaishou simulator on http://%s:%s%s (%d orders)", host, bound, PATH, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
