"""An in-process 抖店开放平台 for tests and demos: ``order.searchList``, ``order.orderDetail`` and
message pushes.

API side, faithful where the connector depends on it: POST ``/order/searchList`` and
``/order/orderDetail`` with the system parameters in the query (``app_key``, ``method`` matching
the path, ``access_token``, ``timestamp`` in Unix seconds within 10 minutes, ``v=2``,
``sign_method`` md5 | hmac-sha256) and ``sign`` checked over the body exactly as received;
answers in the SDKs' envelope ``{"code": 10000, "msg": "success", "sub_code", "sub_msg",
"log_id", "data"}``. ``searchList``: ``update_time_start`` / ``update_time_end`` (inclusive),
``page`` from 0, ``size`` 1..100, ``order_by`` update_time | create_time, ``order_asc``;
``data.total`` lets the client know whether more pages follow. Faults: throttling, HTTP 500
and slow answers every N calls.

Approximations (the platform's error table was not available here): failures use code 30001
(authorisation), 40004 (signature/parameters), 50002 (business, e.g. unknown order) and, for
throttling, code 20000 with ``sub_code`` ``isp.access-limited`` and a 限流 message.

Push side: each order version is one message (tag per change: 100 created, 101 paid, 110 paid
pending, 108 part shipped, 102 shipped, 103 completed, 106 cancelled, 206 refunded) naming the
order (``p_id``); a push body is a JSON array of messages signed with ``event-sign``. Delivered
by :mod:`connectors.webhook_sender`; success means HTTP 2xx with ``{"code": 0}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.douyin import signing
from connectors.douyin.client import MAX_SIZE, METHOD_SEARCH_LIST, SUCCESS, order_updated
from connectors.webhook_sender import Push, PushSender, SenderFaults, SendReport
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

TIMESTAMP_TOLERANCE_S = 600


def serialise(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- orders ----------------------------------------------------------------------------------

CATALOGUE: tuple[tuple[str, str, int, int, int], ...] = (  # name, code, product_id, sku_id, price (fen)
    ("白色 M", "TSHIRT-WHT-M", 3660207428038974464, 3410716076201730, 8900),
    ("黑色 L", "TSHIRT-BLK-L", 3660207428038974464, 3410716076201731, 8900),
    ("船袜五双装", "SOCKS-5P", 3660207428038974465, 3410716076201799, 9000),
    ("帆布袋", "TOTE-NAT", 3660207428038974466, 3410716076201800, 12900),
    ("保温杯 500ml", "CUP-500", 3660207428038974467, 3410716076201801, 6900),
)
REGIONS: tuple[tuple[tuple[str, str], tuple[str, str], tuple[str, str], tuple[str, str]], ...] = (
    (("浙江省", "33"), ("杭州市", "330100"), ("余杭区", "330110"), ("五常街道", "330110005")),
    (("广东省", "44"), ("深圳市", "440300"), ("南山区", "440305"), ("粤海街道", "440305007")),
    (("北京市", "11"), ("北京市", "110100"), ("朝阳区", "110105"), ("建外街道", "110105001")),
    (("上海市", "31"), ("上海市", "310100"), ("浦东新区", "310115"), ("花木街道", "310115010")),
)
# (order_status, main_status, message tag) per version, with a weight.
PATHS: tuple[tuple[int, tuple[tuple[int, int, str], ...]], ...] = (
    (25, ((1, 1, "100"), (105, 105, "101"), (2, 2, "110"), (3, 3, "102"), (5, 5, "103"))),
    (20, ((105, 105, "100"), (2, 2, "110"), (3, 3, "102"))),
    (15, ((1, 1, "100"), (105, 105, "101"))),
    (10, ((1, 1, "100"), (4, 4, "106"))),
    (8, ((105, 105, "100"), (2, 2, "110"), (4, 21, "206"))),
    (7, ((2, 2, "100"), (101, 101, "108"), (3, 3, "102"))),
    (5, ((1, 1, "100"),)),
    (5, ((2, 2, "100"), (3, 3, "102"), (4, 22, "206"))),
    (5, ((3, 3, "100"), (5, 5, "103"), (4, 39, "206"))),
)
STATUS_DESC = {1: "待支付", 105: "已支付", 2: "备货中", 101: "部分发货", 3: "已发货", 4: "已取消", 5: "已完成"}


@dataclass(frozen=True)
class OrderVersion:
    tag: str
    order: dict[str, Any]


@dataclass(frozen=True)
class OrderHistory:
    order_id: str
    versions: tuple[OrderVersion, ...]

    @property
    def current(self) -> dict[str, Any]:
        return self.versions[-1].order


def generate_histories(
    n: int, *, seed: int, start: datetime, end: datetime, shop_id: int = 7784061
) -> list[OrderHistory]:
    """``n`` shop orders with 1-5 versions each, ``update_time`` in ``[start, end]``."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("need an aware window with start < end")
    rng = random.Random(seed)
    lo, hi = int(start.timestamp()), int(end.timestamp())
    weights = [w for w, _ in PATHS]
    base = 6_936_476_692_437_000_000 + (seed % 1000) * 100_000
    out: list[OrderHistory] = []
    for i in range(n):
        order_id = str(base + i * 7)
        path = rng.choices([p for _, p in PATHS], weights)[0]
        times = sorted(rng.randint(lo, hi) for _ in path)
        created = times[0] - rng.randint(0, 300)
        province, city, town, street = rng.choice(REGIONS)
        products = rng.sample(CATALOGUE, rng.choices((1, 2, 3), (65, 25, 10))[0])
        lines_base = []
        total = 0
        for j, (name, code, product_id, sku_id, price) in enumerate(products):
            qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
            total += price * qty
            lines_base.append((f"{int(order_id) + 1 + j}", name, code, product_id, sku_id, price, qty))
        addr = {
            "province": {"name": province[0], "id": province[1]},
            "city": {"name": city[0], "id": city[1]},
            "town": {"name": town[0], "id": town[1]},
            "street": {"name": street[0], "id": street[1]},
        }
        tracking = f"SF{rng.randrange(10**12):012d}"
        versions = []
        for (status, main_status, tag), when in zip(path, times, strict=True):
            paid = status != 1
            shipped = status in (3, 5, 101) or main_status in (22, 39)
            skus = []
            for k, (sid, name, code, product_id, sku_id, price, qty) in enumerate(lines_base):
                line_status = status if status != 101 else (3 if k == 0 else 2)
                skus.append(
                    {
                        "order_id": sid,
                        "parent_order_id": order_id,
                        "order_level": 3,
                        "order_status": line_status,
                        "main_status": main_status,
                        "pay_time": created + 30 if paid else 0,
                        "create_time": created,
                        "update_time": when,
                        "product_id": product_id,
                        "product_name": name,
                        "sku_id": sku_id,
                        "code": code,
                        "out_sku_id": "0",
                        "item_num": qty,
                        "origin_amount": price,
                        "sum_amount": price * qty,
                        "pay_amount": price * qty,
                        "spec": [{"name": "规格", "value": name}],
                        "after_sale_info": {
                            "after_sale_status": 12 if main_status in (21, 22, 39) else 0,
                            "after_sale_type": 2 if main_status == 21 else 0,
                            "refund_status": 3 if main_status in (21, 22, 39) else 0,
                        },
                    }
                )
            order = {
                "shop_id": shop_id,
                "shop_name": "模拟旗舰店",
                "order_id": order_id,
                "order_level": 2,
                "biz": 2,
                "order_type": 0,
                "order_status": status,
                "order_status_desc": STATUS_DESC[status],
                "main_status": main_status,
                "pay_time": created + 30 if paid else 0,
                "create_time": created,
                "update_time": when,
                "finish_time": when if status == 5 else 0,
                "cancel_reason": "买家取消" if status == 4 else "",
                "pay_type": 1,
                "order_amount": total,
                "pay_amount": total,
                "post_amount": 0,
                "mask_post_receiver": "张**",
                "mask_post_tel": "1*******234",
                "post_addr": {**addr, "encrypt_detail": "##sim-encrypted##"},
                "mask_post_addr": {**addr, "detail": "模拟路***号"},
                "ship_time": when if shipped else 0,
                "logistics_info": [{"tracking_no": tracking, "company": "shunfeng", "company_name": "顺丰速运"}]
                if shipped
                else [],
                "sku_order_list": skus,
            }
            versions.append(OrderVersion(tag, order))
        out.append(OrderHistory(order_id, tuple(versions)))
    return out


class OrderStore:
    def __init__(self) -> None:
        self._orders: dict[str, tuple[int, int, bytes]] = {}  # id -> (update_time, create_time, raw)

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order: Mapping[str, Any], *, raw: bytes | None = None) -> None:
        """Store (or replace, by ``order_id``) a shop order; ``raw`` is its exact bytes, served
        as given (default: serialised here)."""
        updated = order_updated(order)
        if updated is None:
            raise ValueError("order has no update_time")
        value = serialise(order) if raw is None else raw
        self._orders[str(order["order_id"])] = (int(updated.timestamp()), int(order["create_time"]), value)

    def add_raw(self, raw: bytes) -> None:
        """Store a shop order given as its exact JSON bytes (a scenario record's value)."""
        self.add(json.loads(raw), raw=raw)

    def get(self, order_id: str) -> bytes | None:
        found = self._orders.get(order_id)
        return None if found is None else found[2]

    def raw_by_key(self) -> dict[str, bytes]:
        return {k: v[2] for k, v in self._orders.items()}

    def query(self, field_name: str, lo: int, hi: int, *, ascending: bool) -> list[bytes]:
        def when(v: tuple[int, int, bytes]) -> int:
            return v[0] if field_name == "update_time" else v[1]

        hits = [(when(v), k, v[2]) for k, v in self._orders.items() if lo <= when(v) <= hi]
        hits.sort(reverse=not ascending)
        return [raw for _, _, raw in hits]


# --- the API ----------------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted per API method (1-based); 0 = off."""

    rate_limit_every: int = 0
    error_500_every: int = 0
    slow_every: int = 0
    slow_seconds: float = 0.0


class DouyinError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


@dataclass
class DouyinSimulator:
    app_key: str
    app_secret: str
    access_token: str
    store: OrderStore = field(default_factory=OrderStore)
    histories: list[OrderHistory] = field(default_factory=list)
    faults: FaultConfig = field(default_factory=FaultConfig)
    stats: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], datetime] = utc_now
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.douyin.scenario)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> DouyinSimulator:
        return cls(
            app_key=settings.douyin_app_key,
            app_secret=settings.douyin_app_secret.get_secret_value(),
            access_token=settings.douyin_access_token.get_secret_value(),
            **kw,
        )

    def load(self, histories: Iterable[OrderHistory]) -> None:
        for history in histories:
            self.histories.append(history)
            self.store.add(history.current)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/order/searchList", self.handle)
        app.router.add_post("/order/orderDetail", self.handle)
        return app

    def _reply(self, log_id: str, data: bytes | None = None, error: DouyinError | None = None) -> bytes:
        if error is not None:
            head = {"code": error.code, "msg": error.msg, "sub_code": error.sub_code, "sub_msg": error.sub_msg}
            return serialise({**head, "log_id": log_id, "data": None})
        head_bytes = serialise({"code": SUCCESS, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": log_id})
        return head_bytes[:-1] + b',"data":' + (data or b"null") + b"}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["calls"] += 1
        log_id = f"2026{self.stats['calls']:016d}"
        method = request.path.strip("/").replace("/", ".")
        if self.scenario is not None and self.scenario.gate() is not None:
            # The platform is down: code 20000 服务不可用 (the client's SERVICE_UNAVAILABLE); the
            # sub_code/sub_msg wording is this simulator's.
            self.stats["outage"] += 1
            error = DouyinError(20000, "服务不可用", "isp.service-unavailable", "服务暂不可用，请稍后重试")
            return web.Response(body=self._reply(log_id, error=error), content_type="application/json")
        # Faults count per API method: the push path's orderDetail calls do not hide the
        # reconciliation pull's searchList calls from them (and vice versa).
        self.stats[f"calls {method}"] += 1
        n = self.stats[f"calls {method}"]
        f = self.faults
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            return web.Response(status=500, text="Internal Server Error")
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self.stats["rate_limited"] += 1
            error = DouyinError(20000, "服务不可用", "isp.access-limited", "当前访问量过大，已被限流，请稍后重试")
            return web.Response(body=self._reply(log_id, error=error), content_type="application/json")
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        body = (await request.read()).decode("utf-8", "replace")
        try:
            self._check_system(request.query, method, body)
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                raise DouyinError(40004, "参数错误", "isv.parameter-invalid", "param_json is not JSON") from None
            if not isinstance(params, dict):
                raise DouyinError(40004, "参数错误", "isv.parameter-invalid", "param_json is not an object")
            data = self._search_list(params) if method == METHOD_SEARCH_LIST else self._order_detail(params)
        except DouyinError as exc:
            self.stats[f"error_{exc.code}"] += 1
            return web.Response(body=self._reply(log_id, error=exc), content_type="application/json")
        self.stats["ok"] += 1
        return web.Response(body=self._reply(log_id, data), content_type="application/json")

    def _check_system(self, q: Mapping[str, str], method: str, body: str) -> None:
        for name in ("app_key", "method", "timestamp", "sign", "access_token", "v"):
            if not q.get(name):
                raise DouyinError(40004, "参数错误", "isv.missing-parameter", f"缺少参数 {name}")
        if q["app_key"] != self.app_key:
            raise DouyinError(30001, "app_key不存在", "isv.app-key-invalid")
        if q["method"] != method:
            raise DouyinError(40004, "参数错误", "isv.method-mismatch", f"method {q['method']} does not match the path")
        try:
            timestamp = int(q["timestamp"])
        except ValueError:
            raise DouyinError(40004, "参数错误", "isv.timestamp-invalid", "timestamp") from None
        if abs(timestamp - int(self.clock().timestamp())) > TIMESTAMP_TOLERANCE_S:
            raise DouyinError(40004, "参数错误", "isv.timestamp-invalid", "timestamp 与服务器时间相差过大")
        sign_method = q.get("sign_method", "md5")
        if not signing.verify_api_sign(
            q["sign"], self.app_key, self.app_secret, method, body, timestamp, v=q["v"], sign_method=sign_method
        ):
            raise DouyinError(40004, "签名校验失败", "isv.signature-invalid", "sign 不正确")
        if q["access_token"] != self.access_token:
            raise DouyinError(30002, "access_token已过期或无效", "isv.access-token-invalid")

    def _search_list(self, p: Mapping[str, Any]) -> bytes:
        by = str(p.get("order_by") or "create_time")
        if by not in ("update_time", "create_time"):
            raise DouyinError(40004, "参数错误", "isv.parameter-invalid", "order_by")
        prefix = "update_time" if "update_time_start" in p or "update_time_end" in p else "create_time"
        try:
            lo = int(p.get(f"{prefix}_start", 0))
            hi = int(p.get(f"{prefix}_end", 2**62))
            page = int(p.get("page", 0))
            size = int(p.get("size", 10))
        except (TypeError, ValueError):
            raise DouyinError(40004, "参数错误", "isv.parameter-invalid", "时间、page、size 须为整数") from None
        if page < 0 or not 1 <= size <= MAX_SIZE:
            raise DouyinError(40004, "参数错误", "isv.parameter-invalid", f"page>=0, 1<=size<={MAX_SIZE}")
        hits = self.store.query(prefix, lo, hi, ascending=bool(p.get("order_asc", False)))
        if by != prefix:  # sorting by the other time: re-sort (rarely used)
            hits = self.store.query(by, 0, 2**62, ascending=bool(p.get("order_asc", False)))
            keep = set(self.store.query(prefix, lo, hi, ascending=True))
            hits = [h for h in hits if h in keep]
        chunk = hits[page * size : (page + 1) * size]
        return (
            b'{"page":'
            + str(page).encode()
            + b',"size":'
            + str(size).encode()
            + b',"total":'
            + str(len(hits)).encode()
            + b',"shop_order_list":['
            + b",".join(chunk)
            + b"]}"
        )

    def _order_detail(self, p: Mapping[str, Any]) -> bytes:
        order_id = str(p.get("shop_order_id") or "")
        if not order_id:
            raise DouyinError(40004, "参数错误", "isv.missing-parameter", "shop_order_id")
        raw = self.store.get(order_id)
        if raw is None:
            raise DouyinError(50002, "业务处理失败", "isv.business-failed:order-not-found", "订单不存在")
        return b'{"shop_order_detail":' + raw + b"}"

    # -- pushes -------------------------------------------------------------------------
    def pushes(self, *, seed: int = 0) -> list[Push]:
        """One message per order version, one message per push."""
        rng = random.Random(seed)
        out: list[Push] = []
        for history in self.histories:
            for version in history.versions:
                order = version.order
                data = {
                    "biz": 2,
                    "order_status": order["order_status"],
                    "order_type": 0,
                    "p_id": int(history.order_id),
                    "s_ids": [int(s["order_id"]) for s in order["sku_order_list"]],
                    "shop_id": order["shop_id"],
                    "update_time": order["update_time"],
                }
                msg_id = f"{rng.getrandbits(63)}"
                message = {"tag": version.tag, "msg_id": msg_id, "data": json.dumps(data, separators=(",", ":"))}
                out.append(Push(msg_id, history.order_id, serialise([message]), {signing.APP_ID_HEADER: self.app_key}))
        return out

    def sign(self, _url: str, body: bytes) -> dict[str, str]:
        return {signing.EVENT_SIGN_HEADER: signing.push_sign(self.app_key, self.app_secret, body)}

    async def send_pushes(
        self, url: str, faults: SenderFaults | None = None, *, seed: int = 0, pushes: list[Push] | None = None
    ) -> SendReport:
        def success(status: int, body: bytes) -> bool:
            try:
                return 200 <= status < 300 and json.loads(body).get("code") == 0
            except (ValueError, AttributeError):
                return False

        sender = PushSender(
            pushes if pushes is not None else self.pushes(seed=seed),
            url=url,
            sign=self.sign,
            faults=faults,
            seed=seed,
            is_success=success,
        )
        return await sender.run()


@dataclass
class RunningSimulator:
    simulator: DouyinSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """The API host (``settings.douyin_base_url``)."""
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: DouyinSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("douyin simulator on http://%s:%s (%d orders)", host, bound, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
