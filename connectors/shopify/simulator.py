"""An in-process Shopify store for tests and demos: Admin REST ``orders.json`` and order webhooks.

API side, faithful where the connector depends on it: ``X-Shopify-Access-Token`` (401 with
Shopify's "[API] Invalid API key or access token" otherwise); ``status`` (default ``open``, so a
client that forgets ``status=any`` misses cancelled orders, as on Shopify); ``updated_at_min``
/ ``updated_at_max`` inclusive, ISO-8601 with offset; ``limit`` 1..250 (default 50); cursor
paging with a ``Link: <...page_info=...>; rel="next"`` header, where a ``page_info`` request
may carry only ``limit`` (400 otherwise) and the cursor is a position in id order (stable
while orders change); a leaky bucket (40 calls, 2 per second by default) reported in
``X-Shopify-Shop-Api-Call-Limit`` and enforced with 429 + ``Retry-After``. Fault knobs add
forced 429s, HTTP 500s and slow answers every N calls.

Push side: every order has a history of versions (created, paid, fulfilled, cancelled...);
each version is one ``orders/<topic>`` webhook whose body is that version of the Order object,
signed like Shopify (``X-Shopify-Hmac-Sha256``) and carrying ``X-Shopify-Webhook-Id``,
``X-Shopify-Event-Id``, ``X-Shopify-Triggered-At`` (= the version's ``updated_at``),
``X-Shopify-Topic``, ``X-Shopify-Shop-Domain`` and ``X-Shopify-API-Version``; some changes
also fire ``orders/updated`` (another delivery of the same body), as on Shopify. Delivery,
with duplicates, shuffling, lateness, drops and retries, is :mod:`connectors.webhook_sender`'s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.shopify.client import (
    ACCESS_TOKEN_HEADER,
    CALL_LIMIT_HEADER,
    MAX_LIMIT,
    order_updated,
    parse_shopify_time,
)
from connectors.shopify.push import (
    API_VERSION_HEADER,
    EVENT_ID_HEADER,
    SHOP_DOMAIN_HEADER,
    TOPIC_HEADER,
    TRIGGERED_AT_HEADER,
    WEBHOOK_ID_HEADER,
)
from connectors.shopify.signing import HMAC_HEADER, webhook_hmac
from connectors.webhook_sender import Push, PushSender, SenderFaults, SendReport
from ordertwin.settings import Settings

if TYPE_CHECKING:
    from connectors.scenario_store import ScenarioFeed

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
SHOP_TZ = timezone(timedelta(hours=-5))
SHOP_DOMAIN = "ordertwin-sim.myshopify.com"


def serialise(order: Mapping[str, Any]) -> bytes:
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def shop_time(moment: datetime) -> str:
    return moment.astimezone(SHOP_TZ).isoformat(timespec="seconds")


# --- orders and their histories --------------------------------------------------------------

CATALOGUE: tuple[tuple[str, str, str, Decimal, int], ...] = (
    ("Cotton T-Shirt", "White / M", "TSHIRT-WHT-M", Decimal("12.90"), 7890123456789),
    ("Cotton T-Shirt", "Black / L", "TSHIRT-BLK-L", Decimal("12.90"), 7890123456789),
    ("Ankle Socks 5 Pairs", "Default Title", "SOCKS-5P", Decimal("10.00"), 7890123456790),
    ("Canvas Tote", "Natural", "TOTE-NAT", Decimal("18.50"), 7890123456791),
    ("Rain Jacket", "Navy / M", "JACKET-NVY-M", Decimal("79.00"), 7890123456792),
    ("Wool Beanie", "Grey", "BEANIE-GRY", Decimal("24.00"), 7890123456793),
)
CURRENCIES: tuple[tuple[str, Decimal, int], ...] = (  # code, rate vs USD, decimals
    ("USD", Decimal(1), 2),
    ("EUR", Decimal("0.92"), 2),
    ("GBP", Decimal("0.79"), 2),
    ("JPY", Decimal(150), 0),
)
ADDRESSES: tuple[tuple[str, str, str, str, str], ...] = (
    ("US", "IL", "Springfield", "62701", "123 Main Street"),
    ("US", "NY", "New York", "10001", "350 5th Avenue"),
    ("GB", "ENG", "London", "SW1A 1AA", "10 Downing Street"),
    ("DE", "BE", "Berlin", "10117", "Unter den Linden 1"),
    ("JP", "JP-13", "Tokyo", "100-0001", "1-1 Chiyoda"),
)

# (topic, financial_status, fulfillment_status, cancelled) per version, with a weight.
PATHS: tuple[tuple[int, tuple[tuple[str, str, str | None, bool], ...]], ...] = (
    (30, (("orders/create", "pending", None, False), ("orders/paid", "paid", None, False),
          ("orders/fulfilled", "paid", "fulfilled", False))),
    (20, (("orders/create", "paid", None, False),)),
    (15, (("orders/create", "paid", None, False), ("orders/partially_fulfilled", "paid", "partial", False))),
    (10, (("orders/create", "pending", None, False), ("orders/cancelled", "voided", None, True))),
    (8, (("orders/create", "paid", None, False), ("orders/cancelled", "refunded", None, True))),
    (7, (("orders/create", "authorized", None, False), ("orders/paid", "paid", None, False))),
    (5, (("orders/create", "pending", None, False),)),
    (5, (("orders/create", "paid", None, False), ("orders/fulfilled", "paid", "fulfilled", False),
         ("orders/updated", "partially_refunded", "fulfilled", False))),
)  # fmt: skip


@dataclass(frozen=True)
class OrderVersion:
    topic: str
    order: dict[str, Any]


@dataclass(frozen=True)
class OrderHistory:
    order_id: int
    versions: tuple[OrderVersion, ...]

    @property
    def current(self) -> dict[str, Any]:
        return self.versions[-1].order


def _money(amount: Decimal, decimals: int) -> str:
    return f"{amount:.{decimals}f}"


def generate_histories(n: int, *, seed: int, start: datetime, end: datetime) -> list[OrderHistory]:
    """``n`` orders, each with 1-3 versions whose ``updated_at`` lie in ``[start, end]``."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("need an aware window with start < end")
    rng = random.Random(seed)
    span = int((end - start).total_seconds())
    base_id = 5_600_000_000_000 + (seed % 100_000) * 100_000
    weights = [w for w, _ in PATHS]
    out: list[OrderHistory] = []
    for i in range(n):
        order_id = base_id + i
        path = rng.choices([p for _, p in PATHS], weights)[0]
        times = sorted(start + timedelta(seconds=rng.randint(0, span)) for _ in path)
        created = times[0] - timedelta(seconds=rng.randint(0, 120))
        currency, rate, decimals = rng.choice(CURRENCIES)
        country, province, city, zip_code, street = rng.choice(ADDRESSES)
        products = rng.sample(CATALOGUE, rng.choices((1, 2, 3), (65, 25, 10))[0])
        lines: list[dict[str, Any]] = []
        subtotal = Decimal(0)
        for j, (title, variant_title, sku, usd, product_id) in enumerate(products):
            qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
            price = (usd * rate).quantize(Decimal(1) if decimals == 0 else Decimal("0.01"))
            subtotal += price * qty
            lines.append(
                {
                    "id": order_id * 10 + j,
                    "admin_graphql_api_id": f"gid://shopify/LineItem/{order_id * 10 + j}",
                    "product_id": product_id,
                    "variant_id": product_id * 10 + j,
                    "title": title,
                    "variant_title": variant_title,
                    "name": f"{title} - {variant_title}",
                    "sku": sku,
                    "quantity": qty,
                    "current_quantity": qty,
                    "price": _money(price, decimals),
                    "total_discount": _money(Decimal(0), decimals),
                    "fulfillment_service": "manual",
                    "fulfillment_status": None,
                    "fulfillable_quantity": qty,
                    "requires_shipping": True,
                    "taxable": True,
                    "gift_card": False,
                    "vendor": "Ordertwin Sim",
                }
            )
        tracking = f"1Z999AA1{rng.randrange(10**10):010d}"
        versions: list[OrderVersion] = []
        for (topic, financial, fulfillment, cancelled), when in zip(path, times, strict=True):
            items: list[dict[str, Any]] = [dict(line) for line in lines]
            fulfillments: list[dict[str, Any]] = []
            if fulfillment in ("partial", "fulfilled"):
                done = items if fulfillment == "fulfilled" else items[:1]
                if fulfillment == "partial" and len(items) == 1:
                    done = []
                    items[0]["fulfillable_quantity"] = max(0, items[0]["quantity"] - 1)
                for item in done:
                    item["fulfillment_status"] = "fulfilled"
                    item["fulfillable_quantity"] = 0
                fulfillments.append(
                    {
                        "id": order_id * 100 + 1,
                        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{order_id * 100 + 1}",
                        "order_id": order_id,
                        "name": f"#{1000 + i}.1",
                        "status": "success",
                        "service": "manual",
                        "shipment_status": None,
                        "created_at": shop_time(when),
                        "updated_at": shop_time(when),
                        "tracking_company": "UPS",
                        "tracking_number": tracking,
                        "tracking_numbers": [tracking],
                        "tracking_url": f"https://www.ups.com/track?tracknum={tracking}",
                        "tracking_urls": [f"https://www.ups.com/track?tracknum={tracking}"],
                        "line_items": [{"id": it["id"], "sku": it["sku"], "quantity": it["quantity"]} for it in done]
                        or [{"id": items[0]["id"], "sku": items[0]["sku"], "quantity": 1}],
                    }
                )
            order: dict[str, Any] = {
                "id": order_id,
                "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
                "name": f"#{1000 + i}",
                "order_number": 1000 + i,
                "email": f"buyer{i}@example.com",
                "created_at": shop_time(created),
                "processed_at": shop_time(created),
                "updated_at": shop_time(when),
                "cancelled_at": shop_time(when) if cancelled else None,
                "cancel_reason": "customer" if cancelled else None,
                "closed_at": shop_time(when) if cancelled else None,
                "confirmed": True,
                "currency": currency,
                "presentment_currency": currency,
                "financial_status": financial,
                "fulfillment_status": fulfillment,
                "subtotal_price": _money(subtotal, decimals),
                "total_line_items_price": _money(subtotal, decimals),
                "total_discounts": _money(Decimal(0), decimals),
                "total_tax": _money(Decimal(0), decimals),
                "total_price": _money(subtotal, decimals),
                "taxes_included": False,
                "test": False,
                "source_name": "web",
                "tags": "",
                "line_items": items,
                "fulfillments": fulfillments,
                "refunds": [],
                "shipping_address": {
                    "first_name": "Sim",
                    "last_name": f"Buyer{i}",
                    "address1": street,
                    "address2": None,
                    "city": city,
                    "zip": zip_code,
                    "province_code": province,
                    "country_code": country,
                },
            }
            versions.append(OrderVersion(topic, order))
        out.append(OrderHistory(order_id, tuple(versions)))
    return out


# --- the store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredOrder:
    order_id: int
    updated: datetime
    cancelled: bool
    closed: bool
    raw: bytes


class OrderStore:
    """The current version of each order, by id."""

    def __init__(self) -> None:
        self._orders: dict[int, StoredOrder] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order: Mapping[str, Any], *, raw: bytes | None = None) -> StoredOrder:
        """Store (or replace, by id) an order; ``raw`` is its exact bytes, served as given
        (default: serialised here)."""
        updated = order_updated(order)
        if updated is None:
            raise ValueError("order has no readable updated_at")
        stored = StoredOrder(
            order_id=int(order["id"]),
            updated=updated,
            cancelled=order.get("cancelled_at") is not None,
            closed=order.get("closed_at") is not None,
            raw=serialise(order) if raw is None else raw,
        )
        self._orders[stored.order_id] = stored
        return stored

    def add_many(self, orders: Iterable[Mapping[str, Any]]) -> None:
        for order in orders:
            self.add(order)

    def add_raw(self, raw: bytes) -> StoredOrder:
        """Store an order given as its exact JSON bytes (a scenario record's value)."""
        return self.add(json.loads(raw), raw=raw)

    def raw_by_key(self) -> dict[str, bytes]:
        return {str(k): v.raw for k, v in self._orders.items()}

    def query(self, lo: datetime, hi: datetime, status: str, below_id: int | None) -> list[StoredOrder]:
        """Matching orders in descending id order (Shopify's default), ids < ``below_id``."""
        hits = []
        for o in self._orders.values():
            if not lo <= o.updated <= hi or (below_id is not None and o.order_id >= below_id):
                continue
            if status == "open" and (o.cancelled or o.closed):
                continue
            if status == "closed" and not o.closed:
                continue
            if status == "cancelled" and not o.cancelled:
                continue
            hits.append(o)
        return sorted(hits, key=lambda o: o.order_id, reverse=True)


# --- the API ------------------------------------------------------------------------------------


@dataclass
class FaultConfig:
    """Injected API faults, counted on every call (1-based); 0 = off."""

    rate_limit_every: int = 0  # answer 429 (as if the bucket were full)
    error_500_every: int = 0
    slow_every: int = 0
    slow_seconds: float = 0.0
    retry_after_s: float = 1.0
    bucket_size: int = 40  # leaky bucket (0 = no bucket)
    leak_per_s: float = 2.0


def _errors(status: int, errors: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"errors": errors}).encode(),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def _encode_cursor(doc: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> dict[str, Any]:
    padded = token + "=" * (-len(token) % 4)
    doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    return doc


@dataclass
class ShopifySimulator:
    access_token: str
    webhook_secret: str
    api_version: str = "2025-01"
    store: OrderStore = field(default_factory=OrderStore)
    histories: list[OrderHistory] = field(default_factory=list)
    faults: FaultConfig = field(default_factory=FaultConfig)
    stats: Counter[str] = field(default_factory=Counter)
    monotonic: Callable[[], float] = time.monotonic
    scenario: ScenarioFeed | None = None  # a scenario played in real time (connectors.shopify.scenario)
    _level: float = 0.0
    _last: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> ShopifySimulator:
        return cls(
            access_token=settings.shopify_access_token.get_secret_value(),
            webhook_secret=settings.shopify_webhook_secret.get_secret_value(),
            api_version=settings.shopify_api_version,
            **kw,
        )

    def load(self, histories: Iterable[OrderHistory]) -> None:
        for history in histories:
            self.histories.append(history)
            self.store.add(history.current)

    # -- HTTP ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/admin/api/{version}/orders.json", self.orders)
        return app

    def _bucket(self) -> tuple[bool, str]:
        """Leak, then take one call from the bucket; (allowed, call-limit header)."""
        size = self.faults.bucket_size
        if size <= 0:
            return True, "0/40"
        now = self.monotonic()
        self._level = max(0.0, self._level - (now - self._last) * self.faults.leak_per_s)
        self._last = now
        if self._level + 1 > size:
            return False, f"{size}/{size}"
        self._level += 1
        return True, f"{math.ceil(self._level)}/{size}"

    async def orders(self, request: web.Request) -> web.StreamResponse:
        self.stats["calls"] += 1
        n = self.stats["calls"]
        if self.scenario is not None and self.scenario.gate() is not None:
            # Shopify documents 503 Service Unavailable for its outages (shopify.dev, "API response
            # status and error codes"); the body's wording is this simulator's.
            self.stats["outage"] += 1
            return _errors(503, "Service Unavailable")
        f = self.faults
        if request.headers.get(ACCESS_TOKEN_HEADER) != self.access_token:
            self.stats["unauthorized"] += 1
            return _errors(401, "[API] Invalid API key or access token (unrecognized login or wrong password)")
        allowed, call_limit = self._bucket()
        throttled = {CALL_LIMIT_HEADER: call_limit, "Retry-After": f"{f.retry_after_s:.1f}"}
        if not allowed or (f.rate_limit_every and n % f.rate_limit_every == 0):
            self.stats["rate_limited"] += 1
            return _errors(
                429, "Exceeded 2 calls per second for api client. Reduce request rates to resume.", throttled
            )
        if f.error_500_every and n % f.error_500_every == 0:
            self.stats["http_500"] += 1
            return web.Response(status=500, text="Internal Server Error")
        if f.slow_every and n % f.slow_every == 0:
            self.stats["slow"] += 1
            await asyncio.sleep(f.slow_seconds)
        q = request.query
        try:
            limit = int(q.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return _errors(400, {"limit": ["is not a number"]})
        if not 1 <= limit <= MAX_LIMIT:
            return _errors(400, {"limit": [f"must be between 1 and {MAX_LIMIT}"]})
        if "page_info" in q:
            extra = set(q) - {"page_info", "limit", "fields"}
            if extra:
                return _errors(400, {"page_info": [f"cannot be combined with {', '.join(sorted(extra))}"]})
            try:
                cursor = _decode_cursor(q["page_info"])
                lo, hi = parse_shopify_time(cursor["min"]), parse_shopify_time(cursor["max"])
                status, below = str(cursor["status"]), int(cursor["last_id"])
            except (ValueError, KeyError, TypeError):
                return _errors(400, {"page_info": ["is invalid"]})
        else:
            try:
                lo = (
                    parse_shopify_time(q["updated_at_min"])
                    if "updated_at_min" in q
                    else datetime.min.replace(tzinfo=UTC)
                )
                hi = (
                    parse_shopify_time(q["updated_at_max"])
                    if "updated_at_max" in q
                    else datetime.max.replace(tzinfo=UTC)
                )
            except ValueError:
                return _errors(400, {"updated_at": ["must be an ISO-8601 time with an offset"]})
            status = q.get("status", "open")
            below = None
            if status not in ("open", "closed", "cancelled", "any"):
                return _errors(400, {"status": ["is not a valid status"]})
        hits = self.store.query(lo, hi, status, below)
        page = hits[:limit]
        headers = {CALL_LIMIT_HEADER: call_limit}
        if len(hits) > limit:
            token = _encode_cursor(
                {"min": lo.isoformat(), "max": hi.isoformat(), "status": status, "last_id": page[-1].order_id}
            )
            url = request.url.with_query({"limit": str(limit), "page_info": token})
            headers["Link"] = f'<{url}>; rel="next"'
        self.stats["ok"] += 1
        body = b'{"orders":[' + b",".join(o.raw for o in page) + b"]}"
        return web.Response(body=body, content_type="application/json", headers=headers)

    # -- webhooks -----------------------------------------------------------------------
    def pushes(self, *, seed: int = 0, updated_also: float = 0.5) -> list[Push]:
        """One delivery per order version, plus (with probability ``updated_also``) the
        ``orders/updated`` delivery Shopify also fires for the same change."""
        rng = random.Random(seed)
        out: list[Push] = []
        for history in self.histories:
            for version in history.versions:
                topics = [version.topic]
                if version.topic != "orders/updated" and rng.random() < updated_also:
                    topics.append("orders/updated")
                event_id = str(rng.getrandbits(63))
                for topic in topics:
                    webhook_id = f"{rng.getrandbits(128):032x}"
                    out.append(
                        Push(
                            event_id=webhook_id,
                            order_id=str(history.order_id),
                            body=serialise(version.order),
                            headers={
                                TOPIC_HEADER: topic,
                                SHOP_DOMAIN_HEADER: SHOP_DOMAIN,
                                API_VERSION_HEADER: self.api_version,
                                WEBHOOK_ID_HEADER: webhook_id,
                                EVENT_ID_HEADER: event_id,
                                TRIGGERED_AT_HEADER: version.order["updated_at"],
                            },
                        )
                    )
        return out

    def sign(self, _url: str, body: bytes) -> dict[str, str]:
        return {HMAC_HEADER: webhook_hmac(self.webhook_secret, body)}

    async def send_pushes(
        self, url: str, faults: SenderFaults | None = None, *, seed: int = 0, pushes: list[Push] | None = None
    ) -> SendReport:
        """Deliver the pushes to a receiver at ``url`` the way Shopify would."""
        sender = PushSender(pushes if pushes is not None else self.pushes(seed=seed), url=url, sign=self.sign,
                            faults=faults, seed=seed)  # fmt: skip
        return await sender.run()


@dataclass
class RunningSimulator:
    simulator: ShopifySimulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """The store's base URL (``settings.shopify_base_url``)."""
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(simulator: ShopifySimulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("shopify simulator on http://%s:%s (%d orders)", host, bound, len(simulator.store))
    return RunningSimulator(simulator, runner, host, int(bound))
