"""An in-process Shopee Open Platform v2 for tests and demos: the order APIs and status pushes.

API side, faithful where the connector depends on it: the common parameters (``partner_id``,
``timestamp`` within 5 minutes, ``access_token``, ``shop_id``) and the HMAC-SHA256 ``sign``
of ``partner_id + path + timestamp + access_token + shop_id``, refused with Shopee's envelope
``{"error": ..., "message": ..., "request_id": ...}`` (HTTP 403); ``get_order_list`` with
``time_range_field`` (``create_time`` | ``update_time``), ``time_from`` / ``time_to`` inclusive
and at most 15 days apart, ``page_size`` 1..100, an opaque ``cursor`` with ``more`` /
``next_cursor`` and ``response_optional_fields=order_status``; ``get_order_detail`` with at
most 50 ``order_sn_list`` entries, returning the basic fields plus only the optional fields
named in ``response_optional_fields`` (so a client that forgets ``item_list`` gets orders the
normaliser rejects, as on Shopee). Faults: ``error_too_many_request`` (HTTP 429),
``error_server`` (HTTP 500) and slow answers every N calls.

Simplifications: the list is in ``create_time`` order, newest first, and the cursor is a
position in it (Shopee documents neither); error codes for bad credentials are approximations
of Shopee's (``error_sign``, ``error_auth``, ``error_param``).

Push side: every status change of an order is one code-3 push, signed like Shopee
(``Authorization`` = HMAC-SHA256(partner key, URL|body)); delivered by
:mod:`connectors.webhook_sender`, whose default for Shopee is *few* retries - the docs do
describe retries of failed pushes, and pushes missed while a subscription is disabled are
never redelivered; tests also drop pushes outright.
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
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.shopee.client import (
    MAX_DETAIL_BATCH,
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    OPTIONAL_FIELDS,
    PATH_ORDER_DETAIL,
    PATH_ORDER_LIST,
    order_updated,
)
from connectors.shopee.push import ORDER_STATUS_PUSH
from connectors.shopee.signing import AUTHORIZATION_HEADER, push_sign, verify_api_sign
from connectors.webhook_sender import Push, PushSender, SenderFaults, SendReport
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

TIMESTAMP_TOLERANCE_S = 300  # "Each API request needs to be requested within 5 minutes of a timestamp"
SHOPEE_RETRIES = SenderFaults(retry_delays_s=(0.2, 0.5))


def serialise(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- orders ----------------------------------------------------------------------------------

REGIONS: tuple[tuple[str, str, Decimal, int], ...] = (  # region, currency, rate vs SGD, decimals
    ("SG", "SGD", Decimal(1), 2),
    ("MY", "MYR", Decimal("3.5"), 2),
    ("PH", "PHP", Decimal(42), 2),
    ("TH", "THB", Decimal(27), 2),
    ("ID", "IDR", Decimal(11500), 0),
    ("VN", "VND", Decimal(18500), 0),
)
CATALOGUE: tuple[tuple[str, str, str, int, int, Decimal], ...] = (
    ("Cotton T-Shirt", "TSHIRT", "TSHIRT-WHT-M", 1234567890, 98765432101, Decimal("12.90")),
    ("Cotton T-Shirt", "TSHIRT", "TSHIRT-BLK-L", 1234567890, 98765432102, Decimal("12.90")),
    ("Ankle Socks 5 Pairs", "SOCKS", "SOCKS-5P", 1234567999, 98765432199, Decimal("10.00")),
    ("Canvas Tote", "TOTE", "TOTE-NAT", 1234568111, 98765432201, Decimal("18.50")),
    ("Phone Case", "CASE", "CASE-CLR-15", 1234568222, 98765432301, Decimal("7.90")),
)
# Status paths through Shopee's OrderStatus values (weights, statuses).
PATHS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (25, ("UNPAID", "READY_TO_SHIP", "PROCESSED", "SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED")),
    (20, ("READY_TO_SHIP", "PROCESSED", "SHIPPED")),
    (15, ("UNPAID", "READY_TO_SHIP")),
    (10, ("UNPAID", "CANCELLED")),
    (8, ("READY_TO_SHIP", "IN_CANCEL", "CANCELLED")),
    (7, ("READY_TO_SHIP", "PROCESSED", "RETRY_SHIP", "SHIPPED", "TO_CONFIRM_RECEIVE")),
    (5, ("UNPAID",)),
    (5, ("PENDING", "READY_TO_SHIP", "PROCESSED")),
    (5, ("READY_TO_SHIP", "SHIPPED", "TO_CONFIRM_RECEIVE", "TO_RETURN")),
)
BASIC_FIELDS = frozenset(
    {
        "order_sn",
        "region",
        "currency",
        "cod",
        "order_status",
        "create_time",
        "update_time",
        "days_to_ship",
        "ship_by_date",
        "message_to_seller",
        "pending_terms",
        "booking_sn",
        "advance_package",
        "checkout_shipping_carrier",
        "reverse_shipping_fee",
    }
)


def _amount(value: Decimal, decimals: int) -> float:
    return float(value.quantize(Decimal(1) if decimals == 0 else Decimal("0.01")))


@dataclass(frozen=True)
class OrderHistory:
    order_sn: str
    versions: tuple[dict[str, Any], ...]  # order detail objects, oldest first

    @property
    def current(self) -> dict[str, Any]:
        return self.versions[-1]


def generate_histories(n: int, *, seed: int, start: datetime, end: datetime) -> list[OrderHistory]:
    """``n`` orders with 1-6 status versions each, ``update_time`` in ``[start, end]``."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("need an aware window with start < end")
    rng = random.Random(seed)
    lo, hi = int(start.timestamp()), int(end.timestamp())
    weights = [w for w, _ in PATHS]
    out: list[OrderHistory] = []
    used: set[str] = set()
    for i in range(n):
        statuses = rng.choices([p for _, p in PATHS], weights)[0]
        times = sorted(rng.randint(lo, hi) for _ in statuses)
        created = times[0] - rng.randint(0, 300)
        day = datetime.fromtimestamp(created, UTC).strftime("%y%m%d")
        sn = f"{day}{rng.choice('ABCDEFGHJKMNPQRSTUVWXYZ')}{i:05d}{rng.randrange(1000):03d}"[:14]
        while sn in used:
            sn = sn[:-3] + f"{rng.randrange(1000):03d}"
        used.add(sn)
        region, currency, rate, decimals = rng.choice(REGIONS)
        products = rng.sample(CATALOGUE, rng.choices((1, 2, 3), (65, 25, 10))[0])
        items = []
        total = Decimal(0)
        for name, item_sku, model_sku, item_id, model_id, sgd in products:
            qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
            price = (sgd * rate).quantize(Decimal(1) if decimals == 0 else Decimal("0.01"))
            original = (price * Decimal("1.15")).quantize(Decimal(1) if decimals == 0 else Decimal("0.01"))
            total += price * qty
            items.append(
                {
                    "item_id": item_id,
                    "item_name": name,
                    "item_sku": item_sku,
                    "model_id": model_id,
                    "model_name": model_sku.split("-", 1)[1],
                    "model_sku": model_sku,
                    "model_quantity_purchased": qty,
                    "model_original_price": _amount(original, decimals),
                    "model_discounted_price": _amount(price, decimals),
                    "wholesale": False,
                    "weight": 0.2,
                    "add_on_deal": False,
                    "main_item": False,
                    "add_on_deal_id": 0,
                    "promotion_type": "",
                    "promotion_id": 0,
                    "order_item_id": item_id,
                    "promotion_group_id": 0,
                    "is_prescription_item": False,
                    "is_b2c_owned_item": False,
                }
            )
        versions = []
        for status, when in zip(statuses, times, strict=True):
            shipped = status in ("SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED", "TO_RETURN")
            order: dict[str, Any] = {
                "order_sn": sn,
                "region": region,
                "currency": currency,
                "cod": False,
                "total_amount": _amount(total, decimals),
                "pending_terms": [],
                "order_status": status,
                "shipping_carrier": "Standard Delivery",
                "payment_method": "Credit Card/Debit Card",
                "estimated_shipping_fee": 0.0,
                "message_to_seller": "",
                "create_time": created,
                "update_time": when,
                "days_to_ship": 3,
                "ship_by_date": created + 3 * 86400,
                "buyer_user_id": 100_000_000 + i,
                "buyer_username": f"b****{i % 10}",
                "recipient_address": {
                    "name": "S****m",
                    "phone": "******89",
                    "town": "",
                    "district": "",
                    "city": "",
                    "state": "",
                    "region": region,
                    "zipcode": "******",
                    "full_address": "****",
                },
                "actual_shipping_fee": 0,
                "goods_to_declare": False,
                "note": "",
                "note_update_time": 0,
                "item_list": items,
                "pay_time": created + 60 if status not in ("UNPAID",) else 0,
                "dropshipper": "",
                "dropshipper_phone": "",
                "split_up": False,
                "buyer_cancel_reason": "",
                "cancel_by": "buyer" if status == "CANCELLED" else "",
                "cancel_reason": "Change of mind" if status == "CANCELLED" else "",
                "actual_shipping_fee_confirmed": False,
                "buyer_cpf_id": "",
                "fulfillment_flag": "fulfilled_by_local_seller",
                "pickup_done_time": when if shipped else 0,
                "package_list": [
                    {
                        "package_number": f"OFG{sn}",
                        "logistics_status": "LOGISTICS_PICKUP_DONE" if shipped else "LOGISTICS_NOT_START",
                        "shipping_carrier": "Standard Delivery",
                        "item_list": [
                            {
                                "item_id": it["item_id"],
                                "model_id": it["model_id"],
                                "model_quantity": it["model_quantity_purchased"],
                            }
                            for it in items
                        ],
                    }
                ],
                "invoice_data": None,
                "checkout_shipping_carrier": None,
                "reverse_shipping_fee": 0,
                "order_chargeable_weight_gram": 200 * len(items),
                "booking_sn": "",
                "advance_package": False,
                "return_request_due_date": 0,
            }
            versions.append(order)
        out.append(OrderHistory(sn, tuple(versions)))
    return out


def project(order: Mapping[str, Any], optional: Iterable[str]) -> dict[str, Any]:
    """What get_order_detail returns of ``order``: basic fields plus the requested optional ones."""
    wanted = BASIC_FIELDS | set(optional)
    return {k: v for k, v in order.items() if k in wanted}


@dataclass
class StoredOrder:
    order_sn: str
    order: dict[str, Any]
    create_time: int
    update_time: int
    raw: bytes | None = None  # the exact bytes given (a scenario record), served when unprojected

    def detail(self, optional: Iterable[str]) -> bytes:
        """What get_order_detail returns of this order: the given bytes when the projection
        keeps every field they have, else the projection serialised."""
        fields = list(optional)
        if self.raw is not None and set(self.order) <= BASIC_FIELDS | set(fields):
            return self.raw
        return serialise(project(self.order, fields))


class OrderStore:
    def __init__(self) -> None:
        self._orders: dict[str, StoredOrder] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order: Mapping[str, Any], *, raw: bytes | None = None) -> None:
        """Store (or replace, by ``order_sn``) an order; ``raw``: its exact bytes, if given."""
        updated = order_updated(order)
        if updated is None:
            raise ValueError("order has no update_time")
        sn = str(order["order_sn"])
        self._orders[sn] = StoredOrder(sn, dict(order), int(order["create_time"]), int(updated.timestamp()), raw)

    def add_raw(self, raw: bytes) -> None:
        """Store an order detail given as its exact JSON bytes (a scenario record's value)."""
        self.add(json.loads(raw), raw=raw)

    def get(self, sn: str) -> StoredOrder | None:
        return self._orders.get(sn)

    def raw_by_key(self, optional: Iterable[str] = OPTIONAL_FIELDS) -> dict[str, bytes]:
        fields = list(optional)
        return {sn: o.detail(fields) for sn, o in self._orders.items()}

    def query(self, field_name: str, lo: int, hi: int) -> list[StoredOrder]:
        def when(o: StoredOrder) -> int:
            return o.update_time if field_name == "update_time" else o.create_time

        hits = [o for o in self._orders.values() if lo <= when(o) <= hi]
        return sorted(hits, key=lambda o: (o.create_time, o.order_sn), reverse=True)


# --- the API ----------------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected faults, counted on every API call (1-based); 0 = off."""

    rate_limit_every: int = 0  # error_too_many_request, HTTP 429
    error_500_every: int = 0  # error_server, HTTP 500
    slow_every: int = 0
    slow_seconds: float = 0.0


class ShopeeError(Exception):
    def __init__(self, error: str, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.error, self.message, self.status = error, message, status


@dataclass
class ShopeeSimulator:
    partner_id: int
    partner_key: str
    shop_id: int
    access_token: str
    store: OrderStore = field(default_factory=OrderStore)
    histories: list[OrderHistory] = field(default_factory=list)
    faults: FaultConfig = field(default_factory=FaultConfig)
    stats: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], datetime] = utc_now
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.shopee.scenario)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> ShopeeSimulator:
        return cls(
            partner_id=settings.shopee_partner_id,
            partner_key=settings.shopee_partner_key.get_secret_value(),
            shop_id=settings.shopee_shop_id,
            access_token=settings.shopee_access_token.get_secret_value(),
            **kw,
        )

    def load(self, histories: Iterable[OrderHistory]) -> None:
        for history in histories:
            self.histories.append(history)
            self.store.add(history.current)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH_ORDER_LIST, self.handle)
        app.router.add_get(PATH_ORDER_DETAIL, self.handle)
        return app

    def _envelope(self, request_id: str, response: Any = None, error: str = "", message: str = "") -> bytes:
        doc: dict[str, Any] = {"error": error, "message": message}
        if response is not None:
            doc["response"] = response
        doc["request_id"] = request_id
        return serialise(doc)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["calls"] += 1
        n = self.stats["calls"]
        request_id = f"{n:032x}"
        if self.scenario is not None and self.scenario.gate() is not None:
            self.stats["outage"] += 1  # the platform is down: Shopee's error_server envelope, HTTP 500
            body = self._envelope(request_id, error="error_server", message="Internal error, please retry.")
            return web.Response(status=500, body=body, content_type="application/json")
        f = self.faults
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            self.stats["rate_limited"] += 1
            body = self._envelope(request_id, error="error_too_many_request", message="Too many requests.")
            return web.Response(status=429, body=body, content_type="application/json")
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            body = self._envelope(request_id, error="error_server", message="Internal error, please retry.")
            return web.Response(status=500, body=body, content_type="application/json")
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        q = request.query
        try:
            self._check_common(request.path, q)
            if request.path == PATH_ORDER_LIST:
                response = self._order_list(q)
                self.stats["order_list"] += 1
                return web.Response(body=self._envelope(request_id, response), content_type="application/json")
            raw = self._order_detail(q)
            self.stats["order_detail"] += 1
            body = (
                b'{"error":"","message":"","response":{"order_list":['
                + b",".join(raw)
                + b']},"request_id":"'
                + request_id.encode()
                + b'"}'
            )
            return web.Response(body=body, content_type="application/json")
        except ShopeeError as exc:
            self.stats[f"error_{exc.error}"] += 1
            return web.Response(
                status=exc.status,
                body=self._envelope(request_id, error=exc.error, message=exc.message),
                content_type="application/json",
            )

    def _check_common(self, path: str, q: Mapping[str, str]) -> None:
        for name in ("partner_id", "timestamp", "sign", "access_token", "shop_id"):
            if not q.get(name):
                raise ShopeeError("error_param", f"Missing required parameter: {name}", 400)
        try:
            partner_id, timestamp, shop_id = int(q["partner_id"]), int(q["timestamp"]), int(q["shop_id"])
        except ValueError:
            raise ShopeeError("error_param", "partner_id, timestamp and shop_id must be integers", 400) from None
        if partner_id != self.partner_id:
            raise ShopeeError("error_auth", "Invalid partner_id.", 403)
        if abs(timestamp - int(self.clock().timestamp())) > TIMESTAMP_TOLERANCE_S:
            raise ShopeeError("error_param", "Invalid timestamp.", 403)
        if not verify_api_sign(self.partner_key, q["sign"], partner_id, path, timestamp, q["access_token"], shop_id):
            raise ShopeeError("error_sign", "Wrong sign.", 403)
        if q["access_token"] != self.access_token:
            raise ShopeeError("error_auth", "Invalid access_token.", 403)
        if shop_id != self.shop_id:
            raise ShopeeError("error_auth", "Shop is not authorized to this partner.", 403)

    def _order_list(self, q: Mapping[str, str]) -> dict[str, Any]:
        field_name = q.get("time_range_field", "")
        if field_name not in ("create_time", "update_time"):
            raise ShopeeError("error_param", "time_range_field must be create_time or update_time")
        try:
            lo, hi = int(q["time_from"]), int(q["time_to"])
            page_size = int(q.get("page_size", "20"))
            offset = int(q.get("cursor") or "0")
        except (KeyError, ValueError):
            raise ShopeeError("error_param", "time_from, time_to, page_size and cursor must be integers") from None
        if hi < lo:
            raise ShopeeError("error_param", "time_to must be later than time_from")
        if hi - lo > int(MAX_WINDOW.total_seconds()):
            raise ShopeeError("error_param", "The time range between time_from and time_to cannot exceed 15 days.")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ShopeeError("error_param", f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
        hits = self.store.query(field_name, lo, hi)
        page = hits[offset : offset + page_size]
        with_status = "order_status" in q.get("response_optional_fields", "").split(",")
        entries: list[dict[str, Any]] = []
        for o in page:
            entry: dict[str, Any] = {"order_sn": o.order_sn}
            if with_status:
                entry["order_status"] = o.order["order_status"]
            entries.append(entry)
        more = offset + page_size < len(hits)
        return {"more": more, "next_cursor": str(offset + page_size) if more else "", "order_list": entries}

    def _order_detail(self, q: Mapping[str, str]) -> list[bytes]:
        sns = [s for s in q.get("order_sn_list", "").split(",") if s]
        if not sns:
            raise ShopeeError("error_param", "order_sn_list is required.")
        if len(sns) > MAX_DETAIL_BATCH:
            raise ShopeeError("error_param", f"order_sn_list can contain at most {MAX_DETAIL_BATCH} orders.")
        optional = [s for s in q.get("response_optional_fields", "").split(",") if s]
        out = []
        for sn in sns:
            found = self.store.get(sn)
            if found is not None:
                out.append(found.detail(optional))
        return out

    # -- pushes -------------------------------------------------------------------------
    def pushes(self, *, seed: int = 0) -> list[Push]:
        """One code-3 push per status version, sent a few seconds after the change."""
        rng = random.Random(seed)
        out = []
        for history in self.histories:
            for version in history.versions:
                body = {
                    "data": {
                        "ordersn": history.order_sn,
                        "status": version["order_status"],
                        "completed_scenario": "",
                        "update_time": version["update_time"],
                    },
                    "shop_id": self.shop_id,
                    "code": ORDER_STATUS_PUSH,
                    "timestamp": version["update_time"] + rng.randint(0, 5),
                }
                event = f"{self.shop_id}:{ORDER_STATUS_PUSH}:{history.order_sn}:{version['order_status']}"
                out.append(Push(f"{event}:{version['update_time']}", history.order_sn, serialise(body)))
        return out

    def sign(self, url: str, body: bytes) -> dict[str, str]:
        return {AUTHORIZATION_HEADER: push_sign(self.partner_key, url, body)}

    async def send_pushes(
        self, url: str, faults: SenderFaults | None = None, *, seed: int = 0, pushes: list[Push] | None = None
    ) -> SendReport:
        """Deliver the pushes to a receiver at ``url`` the way Shopee would (2xx + empty body)."""
        sender = PushSender(
            pushes if pushes is not None else self.pushes(seed=seed),
            url=url,
            sign=self.sign,
            faults=faults or SHOPEE_RETRIES,
            seed=seed,
            is_success=lambda status, body: 200 <= status < 300 and not body,
        )
        return await sender.run()


@dataclass
class RunningSimulator:
    simulator: ShopeeSimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """The API host (``settings.shopee_base_url``)."""
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: ShopeeSimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("shopee simulator on http://%s:%s (%d orders)", host, bound, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
