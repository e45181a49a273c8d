"""An in-process WMS that reports to the ERP through 奇门 (Qimen), for tests and demos.

Two parts, as in production:

- the **WMS** generates realistic Qimen calls (:func:`generate_calls`): per delivery order
  ``orderprocess.report`` ACCEPT, PICK, PACKAGE (with the waybill), ``deliveryorder.confirm``
  DELIVERED, the outbound ``stockchange.report`` (JYCK), and on some orders SIGN, a return
  (``returnorder.confirm`` THRK and its stock receipt), a cancellation (CANCELED, or
  TMSCANCELED when the parcel is intercepted), a failed cancellation (CANCELEDFAIL); plus
  purchase receipts (CGRK) and stocktakes (``inventory.report``). Payloads come from
  :mod:`connectors.scenario.payloads`, so they are the shapes the normaliser is tested on.
- the **Qimen gateway** (:class:`QimenGateway`): the WMS calls it as a Qimen client (system
  parameters in the query string, signed with the WMS's own secret); it checks that
  signature, then, as Qimen does ("奇门转发之前再做一次签名 ... 其他信息不变", see
  :mod:`connectors.wms.signing`), signs the call again with the ERP app's secret, leaving
  every other parameter (``app_key`` included) unchanged, forwards it to the receiver and
  relays the ``{"response": {"flag": ...}}`` answer.

Delivery is :class:`QimenSender`, a :class:`connectors.webhook_sender.PushSender` whose
attempts are Qimen requests: a call is redelivered until it is answered 2xx with ``flag``
success (Qimen redelivers failed calls; its schedule is not published, so
:data:`QIMEN_RETRIES` is a generous budget), with the sender's duplicates, shuffling and
late deliveries as faults. Gateway faults make the ERP side see 5xx: a 502 before forwarding
(the receiver never saw the call), a 504 after forwarding (the receiver published the call
but its answer was lost: the redelivery must be deduplicated).

The scenario hook (:func:`start_scenario_simulator`) pushes each scenario record of source
``wms`` when its time comes (or at the end of an outage covering it). A scenario's
``deliveryorder.query`` responses (the generator's way of saying which address the
warehouse holds) are pushed as the equivalent ``deliveryorder.confirm`` (same
``deliveryOrder``, status ACCEPT, and ``orderLines``): a push-only connector never polls,
and the normaliser maps both methods to the same event. Calls carry the configured
``wms_app_key``/``wms_customer_id`` and reach the receiver signed with ``wms_app_secret``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from connectors.registry import default_window
from connectors.scenario import payloads as p
from connectors.scenario.model import Outage, ScenarioRecord
from connectors.webhook_sender import Push, PushSender, SenderFaults, SendReport
from connectors.wms import signing
from connectors.wms.push import ERROR_BODY, SOURCE, event_id_of, qimen_time, render_envelope, short_method
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

GATEWAY_PATH = "/router/qimen/service"  # Qimen's gateway path (qimen.api.taobao.com/router/qimen/service)
WMS_SECRET = "wms-sim-own-secret"  # the WMS's own Qimen secret (WMS -> gateway leg; simulator only)
QIMEN_RETRIES = SenderFaults(
    retry_delays_s=(0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 60.0, 60.0, 60.0, 60.0),
    concurrency=8,
    timeout_s=10.0,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def qimen_success(status: int, body: bytes) -> bool:
    """Qimen counts a call delivered on a 2xx whose ``response.flag`` is success."""
    if not 200 <= status < 300:
        return False
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    response = doc.get("response") if isinstance(doc, dict) else None
    return isinstance(response, dict) and response.get("flag") == "success"


# --- the calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One Qimen call the WMS makes: method, its ``timestamp``, the business body."""

    method: str  # full name, taobao.qimen.*
    at: datetime  # the call's timestamp (aware)
    body: bytes  # business body, compact JSON
    ref: str  # the ERP document it is about (delivery order code...)
    format: str = "json"
    v: str = "2.0"
    sign_method: str = "md5"

    @property
    def event_id(self) -> str:
        """The id the receiver deduplicates on (:func:`connectors.wms.push.event_id_of`)."""
        return event_id_of(self.method, self.body)

    def params(self, app_key: str, customer_id: str) -> dict[str, str]:
        return {
            "method": self.method,
            "timestamp": p.china(self.at),
            "format": self.format,
            "v": self.v,
            "customerId": customer_id,
            "app_key": app_key,
            "sign_method": self.sign_method,
        }

    def envelope(self, app_key: str, customer_id: str) -> bytes:
        """What the receiver must publish for this call."""
        return render_envelope(self.params(app_key, customer_id), self.body)

    def push(self) -> Push:
        return Push(self.event_id, self.ref, self.body)


def _call(envelope: Mapping[str, Any], ref: str) -> Call:
    """A call from a payloads envelope (``_qimen``: system parameters + ``request``)."""
    return Call(
        method=str(envelope["method"]),
        at=qimen_time(str(envelope["timestamp"])),
        body=p.dumps(envelope["request"]),
        ref=ref,
        format=str(envelope.get("format", "json")),
        v=str(envelope.get("v", "2.0")),
        sign_method=str(envelope.get("sign_method", "md5")),
    )


def _extend(o: p.OrderIdentity) -> dict[str, str]:
    return {"sourcePlatformCode": o.platform_code, "sourceOrderCode": str(o.tid)}


def _stock_call(o: p.OrderIdentity, at: datetime, order_type: str, code: str, sign: int, seq: int) -> Call:
    """``stockchange.report`` of an order-linked document (JYCK outbound, THRK return)."""
    items = [
        {
            "ownerCode": "OWNER01",
            "warehouseCode": o.warehouse.code,
            "orderCode": code,
            "orderType": order_type,
            "outBizCode": f"SC-{o.index + 1:06d}-{seq}",
            "itemCode": ln.product.outer_sku_id,
            "itemId": f"W{ln.product.sku_id % 100000:05d}",
            "inventoryType": "ZP",
            "quantity": str(sign * ln.num),
            "batchCode": "B2026",
            "changeTime": p.china(at),
            "extendProps": _extend(o),
        }
        for ln in o.lines
    ]
    body = {"items": {"item": items}}
    return Call("taobao.qimen.stockchange.report", at, p.dumps(body), code)


def _return_call(o: p.OrderIdentity, at: datetime) -> Call:
    """``returnorder.confirm`` THRK: the parcel came back to the warehouse."""
    body = {
        "returnOrder": {
            "returnOrderCode": f"RO{o.delivery_order_code[2:]}",
            "returnOrderId": f"WMS-RET-{o.index + 1:06d}",
            "warehouseCode": o.warehouse.code,
            "orderType": "THRK",
            "orderConfirmTime": p.china(at),
            "outBizCode": f"MSG-{o.index + 1:06d}-THRK",
            "logisticsCode": o.carrier.qimen,
            "expressCode": o.tracking_no,
            "returnReason": "7天无理由",
            "sourcePlatformCode": o.platform_code,
            "preDeliveryOrderCode": o.delivery_order_code,
            "senderInfo": {
                "name": o.receiver_name,
                "mobile": o.receiver_mobile,
                "province": o.addresses[0].state,
                "city": o.addresses[0].city,
                "area": o.addresses[0].district,
                "detailAddress": "***",
            },
        },
        "orderLines": [
            {
                "orderLineNo": str(i + 1),
                "ownerCode": "OWNER01",
                "itemCode": ln.product.outer_sku_id,
                "itemId": f"W{ln.product.sku_id % 100000:05d}",
                "inventoryType": "ZP",
                "itemName": ln.product.title,
                "planQty": str(ln.num),
                "actualQty": str(ln.num),
                "batchCode": "B2026",
                "sourceOrderCode": str(o.tid),
            }
            for i, ln in enumerate(o.lines)
        ],
        "extendProps": _extend(o),
    }
    return Call("taobao.qimen.returnorder.confirm", at, p.dumps(body), o.delivery_order_code)


# Order histories (weights): what the warehouse reports about a delivery order.
PROFILES: tuple[tuple[str, int], ...] = (
    ("shipped", 45),
    ("signed", 12),
    ("returned", 8),
    ("cancelled", 12),
    ("intercepted", 5),
    ("cancel_failed", 6),
    ("in_progress", 12),
)


def _order_calls(o: p.OrderIdentity, accepted: datetime, profile: str, rng: random.Random) -> list[Call]:
    at = accepted
    calls: list[Call] = []

    def later(lo: int, hi: int) -> datetime:
        nonlocal at
        at = at + timedelta(seconds=rng.randint(lo, hi))
        return at

    def process(status: str, *, waybill: bool = False) -> None:
        calls.append(_call(p.wms_process(o, at, status, waybill=waybill), o.delivery_order_code))

    process("ACCEPT")
    later(30, 600)
    process("PICK")
    if profile == "in_progress":
        return calls
    if profile == "cancelled":
        later(30, 900)
        process("CANCELED")
        return calls
    later(30, 900)
    process("PACKAGE", waybill=True)
    if profile == "cancel_failed":
        later(10, 300)
        process("CANCELEDFAIL", waybill=True)
    later(60, 1800)
    calls.append(_call(p.wms_delivered(o, at, address=o.addresses[0]), o.delivery_order_code))
    calls.append(_stock_call(o, later(1, 30), "JYCK", o.delivery_order_code, -1, 1))
    if profile == "intercepted":
        later(600, 3600)
        process("TMSCANCELED", waybill=True)
    elif profile in ("signed", "returned"):
        later(1800, 2 * 3600)
        process("SIGN", waybill=True)
        if profile == "returned":
            calls.append(_return_call(o, later(1800, 2 * 3600)))
            calls.append(_stock_call(o, later(1, 30), "THRK", f"RO{o.delivery_order_code[2:]}", 1, 2))
    return calls


def _receipt_call(k: int, at: datetime, rng: random.Random) -> Call:
    """A purchase receipt (CGRK): stock in, no channel order."""
    warehouse = rng.choice(p.WAREHOUSES).code
    code = f"CG{at.astimezone(p.CHINA_TZ):%Y%m%d}{k + 1:04d}"
    items = [
        {
            "ownerCode": "OWNER01",
            "warehouseCode": warehouse,
            "orderCode": code,
            "orderType": "CGRK",
            "outBizCode": f"SC-CG-{k + 1:04d}-{i}",
            "itemCode": product.outer_sku_id,
            "itemId": f"W{product.sku_id % 100000:05d}",
            "inventoryType": "ZP",
            "quantity": str(rng.choice((20, 50, 100, 200))),
            "batchCode": "B2026",
            "changeTime": p.china(at),
        }
        for i, product in enumerate(rng.sample(p.CATALOGUE, rng.randint(1, 3)))
    ]
    return Call("taobao.qimen.stockchange.report", at, p.dumps({"items": {"item": items}}), code)


def _stocktake_call(k: int, at: datetime, rng: random.Random) -> Call:
    """An ``inventory.report`` (盘点): gains and losses per SKU, never zero."""
    warehouse = rng.choice(p.WAREHOUSES).code
    code = f"PD{at.astimezone(p.CHINA_TZ):%Y%m%d}{k + 1:04d}"
    body = {
        "totalPage": 1,
        "currentPage": 1,
        "pageSize": 100,
        "warehouseCode": warehouse,
        "checkOrderCode": code,
        "checkOrderId": f"WMS-PD-{k + 1:04d}",
        "ownerCode": "OWNER01",
        "checkTime": p.china(at),
        "outBizCode": f"PD-MSG-{k + 1:04d}",
        "adjustType": "CHECK",
        "items": [
            {"itemCode": product.outer_sku_id, "inventoryType": "ZP", "quantity": rng.choice((-3, -2, -1, 1, 2))}
            for product in rng.sample(p.CATALOGUE, rng.randint(1, 3))
        ],
    }
    return Call("taobao.qimen.inventory.report", at, p.dumps(body), code)


def generate_calls(n_orders: int, *, seed: int, start: datetime, end: datetime) -> list[Call]:
    """The Qimen calls of ``n_orders`` delivery orders (plus receipts and stocktakes) with
    timestamps in ``[start, end]``, oldest first; a history still running at ``end`` is cut."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("need an aware window with start < end")
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    used: set[int] = set()
    calls: list[Call] = []
    names, weights = zip(*PROFILES, strict=True)
    for i in range(n_orders):
        order_rng = random.Random(rng.getrandbits(64))
        created = (start + timedelta(seconds=int(order_rng.uniform(0, 0.8) * span))).replace(microsecond=0)
        o = p.make_identity(i, created, order_rng, used)
        accepted = created + timedelta(seconds=order_rng.randint(30, 300))
        calls.extend(_order_calls(o, accepted, order_rng.choices(names, weights)[0], order_rng))
    for k in range(max(1, n_orders // 25)):
        calls.append(_receipt_call(k, start + timedelta(seconds=int(rng.uniform(0, span))), rng))
    for k in range(max(1, n_orders // 50)):
        calls.append(_stocktake_call(k, start + timedelta(seconds=int(rng.uniform(0, span))), rng))
    calls = sorted((c for c in calls if c.at <= end), key=lambda c: c.at)
    ids = Counter(c.event_id for c in calls)
    if ids and ids.most_common(1)[0][1] > 1:
        raise AssertionError("two generated calls have the same method and body")  # would be deduplicated
    return calls


# --- the Qimen gateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayFaults:
    """5xx the ERP side sees, counted on every call the gateway receives (1-based); 0 = off."""

    error_before_every: int = 0  # 502 without forwarding
    error_after_every: int = 0  # forwarded, then 504: the answer is lost


class QimenGateway:
    """Checks the WMS's signature, signs each call for the ERP app and forwards it to ``target``."""

    def __init__(
        self,
        *,
        target: str,
        erp_secret: str,
        wms_secret: str = WMS_SECRET,
        faults: GatewayFaults | None = None,
        timeout_s: float = 8.0,
    ) -> None:
        self.target = target
        self.erp_secret = erp_secret
        self.wms_secret = wms_secret
        self.faults = faults or GatewayFaults()
        self.timeout_s = timeout_s
        self.stats: Counter[str] = Counter()
        self.host = ""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{GATEWAY_PATH}"

    def forward_url(self, params: Mapping[str, str], body: bytes) -> URL:
        """The receiver URL of one call: its parameters unchanged, ``sign`` made with the ERP secret."""
        return URL(f"{self.target}?{signing.signed_query(params, body, self.erp_secret)}", encoded=True)

    async def start(self, host: str, port: int) -> QimenGateway:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post(GATEWAY_PATH, self.handle)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.host, self.port = host, int(self._runner.addresses[0][1]) if self._runner.addresses else port
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _failure(self, status: int, outcome: str) -> web.Response:
        self.stats[outcome] += 1
        return web.Response(status=status, body=ERROR_BODY, content_type="application/json")

    async def handle(self, request: web.Request) -> web.Response:
        self.stats["calls"] += 1
        n = self.stats["calls"]
        body = await request.read()
        try:
            params = signing.query_params(str(request.url))
        except ValueError:
            return self._failure(400, "bad_request")
        if not signing.verify(params, body, self.wms_secret, params.get(signing.SIGN)):
            return self._failure(401, "bad_sign")
        f = self.faults
        if f.error_before_every and n % f.error_before_every == 0:
            return self._failure(502, "error_before")
        assert self._http is not None
        try:
            async with self._http.post(
                self.forward_url(params, body), data=body, headers={"Content-Type": "application/json; charset=utf-8"}
            ) as resp:
                status, answer = resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("qimen gateway: %s unreachable (%s)", self.target, type(exc).__name__)
            return self._failure(502, "upstream_error")
        self.stats[f"upstream_{status}"] += 1
        if f.error_after_every and n % f.error_after_every == 0:
            return self._failure(504, "error_after")
        return web.Response(status=status, body=answer, content_type="application/json")


class QimenSender(PushSender):
    """The WMS's delivery loop: each attempt is a Qimen request to the gateway, signed by the WMS."""

    def __init__(
        self,
        calls: Sequence[Call],
        *,
        url: str,
        app_key: str,
        customer_id: str,
        secret: str = WMS_SECRET,
        faults: SenderFaults = QIMEN_RETRIES,
        seed: int = 0,
    ) -> None:
        super().__init__(
            [c.push() for c in calls], url=url, sign=_no_headers, faults=faults, seed=seed, is_success=qimen_success
        )
        self.calls = {c.event_id: c for c in calls}
        self.app_key, self.customer_id, self.secret = app_key, customer_id, secret

    def request(self, push: Push) -> tuple[str, bytes, dict[str, str]]:
        call = self.calls[push.event_id]
        query = signing.signed_query(call.params(self.app_key, self.customer_id), call.body, self.secret)
        return f"{self.url}?{query}", call.body, {"Content-Type": "application/json; charset=utf-8"}


def _no_headers(_url: str, _body: bytes) -> dict[str, str]:
    return {}  # a Qimen call is signed in its query string (QimenSender.request)


# --- the WMS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WmsFaults:
    """How unkind the delivery is: the sender's faults and the gateway's 5xx."""

    send: SenderFaults = QIMEN_RETRIES
    gateway: GatewayFaults = field(default_factory=GatewayFaults)


def receiver_url(settings: Settings) -> str:
    """Where the WMS receiver listens by default (``run_connector("wms", ...)``)."""
    return f"http://{settings.webhook_host}:{settings.wms_webhook_port}/webhooks/{SOURCE}"


@dataclass
class WmsSimulator:
    """The WMS's calls and the Qimen app they are signed for."""

    app_key: str
    customer_id: str
    secret: str  # the ERP app's: what the gateway signs with
    calls: list[Call] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, calls: Iterable[Call] = ()) -> WmsSimulator:
        return cls(
            settings.wms_app_key, settings.wms_customer_id, settings.wms_app_secret.get_secret_value(), list(calls)
        )

    def gateway(self, target: str, faults: GatewayFaults | None = None) -> QimenGateway:
        return QimenGateway(target=target, erp_secret=self.secret, faults=faults)

    def expected(self) -> dict[str, bytes]:
        """Per event id, the exact record the receiver must publish."""
        return {c.event_id: c.envelope(self.app_key, self.customer_id) for c in self.calls}

    async def send(
        self, gateway: QimenGateway, faults: SenderFaults = QIMEN_RETRIES, *, seed: int = 0, calls: Sequence[Call] = ()
    ) -> SendReport:
        """Deliver ``calls`` (default: all) through a started ``gateway`` until each is
        answered success or its retries run out."""
        sender = QimenSender(
            calls or self.calls,
            url=gateway.url,
            app_key=self.app_key,
            customer_id=self.customer_id,
            faults=faults,
            seed=seed,
        )
        return await sender.run()


@dataclass
class RunningSimulator:
    """A WMS delivering its calls in the background; ``url`` is its Qimen gateway."""

    simulator: WmsSimulator
    gateway: QimenGateway
    task: asyncio.Task[SendReport]

    @property
    def url(self) -> str:
        return self.gateway.url

    async def finished(self) -> SendReport:
        """Wait until every call was delivered or given up."""
        return await asyncio.shield(self.task)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.gateway.close()


async def start_simulator(
    settings: Settings,
    *,
    n_orders: int,
    seed: int,
    start: datetime | None = None,
    end: datetime | None = None,
    host: str | None = None,
    port: int | None = None,
    faults: WmsFaults | None = None,
    target: str | None = None,
    **_: Any,
) -> RunningSimulator:
    """Generate ``n_orders`` delivery orders and start pushing their calls to ``target``
    (default: the receiver of ``run_connector("wms")``) through a gateway on host:port."""
    start, end = default_window(settings, start, end)
    faults = faults or WmsFaults()
    simulator = WmsSimulator.from_settings(settings, generate_calls(n_orders, seed=seed, start=start, end=end))
    gateway = await simulator.gateway(target or receiver_url(settings), faults.gateway).start(
        settings.simulator_host if host is None else host, settings.wms_simulator_port if port is None else port
    )
    task = asyncio.create_task(simulator.send(gateway, faults.send, seed=seed))
    log.info("wms simulator: %d Qimen calls via %s to %s", len(simulator.calls), gateway.url, gateway.target)
    return RunningSimulator(simulator, gateway, task)


# --- the scenario hook ---------------------------------------------------------------------------


def call_from_record(record: ScenarioRecord) -> Call:
    """The Qimen call a WMS makes for a scenario record (see the module docstring)."""
    doc = json.loads(record.value)
    ref = record.key.decode("utf-8")
    if short_method(str(doc["method"])) != "deliveryorder.query":
        return _call(doc, ref)
    response = doc["response"]
    body = {"deliveryOrder": response["deliveryOrder"], "orderLines": response["orderLines"]}
    return _call({**doc, "method": "taobao.qimen.deliveryorder.confirm", "request": body}, ref)


def due_at(at: datetime, outages: Sequence[Outage]) -> datetime:
    """When a record of ``at`` is pushed: then, or at the end of a WMS outage covering it
    (back-to-back outages chain), as :meth:`connectors.scenario.Scenario.publish_at`."""
    moved = True
    while moved:
        moved = False
        for outage in outages:
            if outage.covers(SOURCE, at):
                at, moved = outage.end, True
    return at


def _merge(into: SendReport, report: SendReport) -> None:
    into.stats.update(report.stats)
    into.delivered |= report.delivered
    into.dropped |= report.dropped
    into.gave_up |= report.gave_up


@dataclass
class ScenarioWms:
    """Plays a scenario's WMS records as Qimen calls at their due times."""

    simulator: WmsSimulator
    gateway: QimenGateway
    schedule: list[tuple[datetime, Call]]  # (due, call), in due order
    clock: Callable[[], datetime] = utc_now
    faults: SenderFaults = QIMEN_RETRIES
    report: SendReport = field(default_factory=SendReport)
    pushed: int = 0
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _sending: set[asyncio.Task[SendReport]] = field(default_factory=set, init=False)

    @property
    def url(self) -> str:
        return self.gateway.url

    def start(self) -> ScenarioWms:
        self._task = asyncio.create_task(self._play())
        return self

    async def _play(self) -> None:
        i = 0
        while i < len(self.schedule):
            wait = (self.schedule[i][0] - self.clock()).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, 0.25))
                continue
            now = self.clock()
            batch = []
            while i < len(self.schedule) and self.schedule[i][0] <= now:
                batch.append(self.schedule[i][1])
                i += 1
            self.pushed += len(batch)
            task = asyncio.create_task(self.simulator.send(self.gateway, self.faults, seed=i, calls=batch))
            self._sending.add(task)
            task.add_done_callback(self._collect)
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    def _collect(self, task: asyncio.Task[SendReport]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is None:
            _merge(self.report, task.result())

    async def finished(self) -> SendReport:
        """Wait until every record was pushed and each delivery settled."""
        assert self._task is not None
        await asyncio.shield(self._task)
        return self.report

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.gateway.close()


async def start_scenario_simulator(
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    outages: Sequence[Outage] = (),
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    target: str | None = None,
    faults: SenderFaults = QIMEN_RETRIES,
    **_: Any,
) -> ScenarioWms:
    """Push each WMS record to ``target`` at its time (contract: :mod:`connectors.registry`)."""
    mine = [r for r in records if r.source == SOURCE]
    outs = [o for o in outages if o.source == SOURCE]
    schedule = sorted(((due_at(r.at, outs), call_from_record(r)) for r in mine), key=lambda dc: dc[0])
    simulator = WmsSimulator.from_settings(settings, [c for _, c in schedule])
    gateway = await simulator.gateway(target or receiver_url(settings)).start(
        settings.simulator_host if host is None else host, settings.wms_simulator_port if port is None else port
    )
    return ScenarioWms(simulator, gateway, schedule, clock=clock, faults=faults).start()
