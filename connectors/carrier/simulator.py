"""A 快递100 (Kuaidi100) that pushes tracking updates, for tests and demos.

Kuaidi100 has nothing to pull from: it POSTs each waybill's whole trace to the subscriber's
``callbackurl`` whenever the trace changes (see :mod:`connectors.carrier.push`). The simulator
does the same towards a receiver URL: every waybill gets a realistic trace (揽收 -> 在途 -> 派件
-> 签收, some via a 驿站, some refused and 退回/退签, some still on the way), one push per state
change, each ``param`` carrying the trace so far, form-posted with ``sign = MD5(param + salt)`` to
``<receiver>?order_id=<channel order>`` (comma-separated for a merged parcel). Orders, carriers
and the 揽收/在途/签收 wording come from :mod:`connectors.scenario.payloads`, so a simulated push
is shaped like a scenario's.

Delivery, with duplicates, shuffling, lateness and retries, is
:class:`connectors.webhook_sender.PushSender`'s; :class:`Kuaidi100Sender` adapts it because
PushSender posts every push as JSON to one URL, where Kuaidi100 posts a form to a callback URL
per waybill. Kuaidi100 judges success by the answer body (``result`` true, ``returnCode``
"200"), not by the HTTP status. :class:`FaultyGateway` stands between the sender and the
receiver and injects 5xx: a 502 that never reaches the receiver, and a 504 that replaces the
receiver's answer after it did its work (the push was published; the retry must be
deduplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from yarl import URL

from connectors.carrier.push import ORDER_QUERY, SOURCE, make_spec, push_id
from connectors.carrier.signing import PARAM_FIELD, SIGN_FIELD, push_sign
from connectors.registry import default_window
from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario.payloads import Address, OrderIdentity, carrier_push, make_identity
from connectors.webhook_sender import Push, PushSender, SenderFaults, SendReport
from ordertwin.settings import Settings

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=UTF-8"

# 物流状态 of a signed-for parcel (签收 and its sub-states, 退签): the subscription ends.
FINAL_STATES = frozenset({"3", "301", "302", "303", "304", "4"})

# Weighted state paths of a waybill, oldest first (lastResult.state of each push).
PATHS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (45, ("1", "0", "0", "5", "3")),  # 揽收, 在途 x2, 派件, 签收
    (12, ("1", "0", "5", "3")),
    (13, ("1", "0", "5", "501", "304")),  # via a locker / 驿站, collected there
    (8, ("1", "0", "5", "14", "6", "4")),  # refused, 退回, signed back by the sender (退签)
    (7, ("1", "0", "6")),  # 退回 while in transit, on its way back
    (15, ("1", "0")),  # still on the way
)
MERGED_SHARE = 0.05  # waybills shipping two channel orders (order_id "a,b")
COURIER_SURNAMES = "王李张刘陈杨赵黄"


# --- traces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waybill:
    """One subscribed waybill: the order(s) it ships and its trace, oldest first."""

    order_ref: str  # the callback URL's order_id
    identity: OrderIdentity
    address: Address
    steps: tuple[tuple[str, datetime], ...]  # (state, time)

    @property
    def nu(self) -> str:
        return self.identity.tracking_no


def _extra_step(o: OrderIdentity, state: str, address: Address, rng: random.Random) -> dict[str, str]:
    """Trace wording for the states ``payloads.carrier_push`` does not word (it knows 1/0/3)."""
    wh = o.warehouse
    courier = f"{rng.choice(COURIER_SURNAMES)}**"
    phone = f"1{rng.choice('3578')}{rng.randrange(10)}****{rng.randrange(10000):04d}"
    context, area, status = {
        "5": (f"【{address.city}】【{address.district}】快件正在派送中，派件员：{courier}，电话：{phone}",
              address.city, "派件"),
        "501": (f"【{address.city}】快件已存放至【{address.district}菜鸟驿站】，请凭取件码及时领取",
                address.city, "派件"),
        "304": (f"【{address.city}】快件已从【{address.district}菜鸟驿站】取出，感谢使用{o.carrier.name}",
                address.city, "签收"),
        "14": (f"【{address.city}】收件人拒收，快件将退回寄件人", address.city, "拒签"),
        "6": (f"【{address.city}】快件已发往 {wh.city}，退回寄件人", address.city, "退回"),
        "4": (f"【{wh.city}】【{wh.district}】退回快件已由寄件人签收", wh.area_name, "退签"),
    }[state]  # fmt: skip
    return {"context": context, "areaCode": "", "areaName": area, "status": status}


def waybill_param(waybill: Waybill, upto: int) -> str:
    """The ``param`` text Kuaidi100 pushes once the first ``upto`` steps happened."""
    trace = list(waybill.steps[:upto])
    o = waybill.identity
    param = json.loads(carrier_push(o, trace, address=waybill.address)["param"])
    last = param["lastResult"]
    rng = random.Random(f"{o.tracking_no}:{upto}")
    for step, (state, _at) in zip(last["data"], reversed(trace), strict=True):
        if state not in ("1", "0", "3"):
            step.update(_extra_step(o, state, waybill.address, rng))
    final = trace[-1][0]
    param["status"] = "shutdown" if final in FINAL_STATES else "polling"
    last["ischeck"] = "1" if final in FINAL_STATES else "0"
    return json.dumps(param, ensure_ascii=False)


def generate_waybills(n: int, *, seed: int, start: datetime, end: datetime) -> list[Waybill]:
    """``n`` waybills whose every trace time lies in ``[start, end]`` (whole seconds)."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("need an aware window with start < end")
    rng = random.Random(seed)
    span = int((end - start).total_seconds())
    weights = [w for w, _ in PATHS]
    used_tids: set[int] = set()
    seen_nu: set[str] = set()
    out: list[Waybill] = []
    index = 0
    while len(out) < n:
        path = rng.choices([p for _, p in PATHS], weights)[0]
        seconds = sorted(rng.sample(range(span + 1), len(path))) if span + 1 >= len(path) else list(range(len(path)))
        times = [start.replace(microsecond=0) + timedelta(seconds=s) for s in seconds]
        order_rng = random.Random(seed * 1_000_003 + index)
        identity = make_identity(index, times[0] - timedelta(hours=order_rng.randint(2, 48)), order_rng, used_tids)
        index += 1
        if identity.tracking_no in seen_nu:  # one subscription per waybill, as at Kuaidi100
            continue
        seen_nu.add(identity.tracking_no)
        order_ref = identity.order_id
        if rng.random() < MERGED_SHARE:
            other = make_identity(index, identity.created, order_rng, used_tids)
            index += 1
            order_ref = f"{identity.order_id},{other.order_id}"
        address = identity.addresses[0]
        out.append(Waybill(order_ref, identity, address, tuple(zip(path, times, strict=True))))
    return out


def waybill_pushes(waybills: Iterable[Waybill]) -> list[Push]:
    """One push per state change of every waybill (``body`` = the ``param`` text)."""
    out = []
    for waybill in waybills:
        for upto in range(1, len(waybill.steps) + 1):
            param = waybill_param(waybill, upto)
            out.append(Push(event_id=push_id(param), order_id=waybill.order_ref, body=param.encode("utf-8")))
    return out


# --- sending -----------------------------------------------------------------------------------


def kuaidi100_success(status: int, body: bytes) -> bool:
    """Kuaidi100's test of an answer: 2xx and ``{"result": true, "returnCode": "200", ...}``."""
    if not 200 <= status < 300:
        return False
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("result") is True and str(doc.get("returnCode")) == "200"


def push_form(param: str, salt: str) -> bytes:
    """The form body Kuaidi100 posts: ``param`` and its ``sign``."""
    return urlencode({PARAM_FIELD: param, SIGN_FIELD: push_sign(param, salt)}).encode("ascii")


def callback_url(target: str, order_ref: str) -> URL:
    """The subscription's callback URL: the receiver with ``?order_id=`` (none when empty)."""
    url = URL(target)
    return url.update_query({ORDER_QUERY: order_ref}) if order_ref else url


class Kuaidi100Sender(PushSender):
    """:class:`PushSender` posting each push as Kuaidi100 does: a signed form, to the
    callback URL of its waybill (``Push.order_id`` is the URL's ``order_id``; ``Push.body`` the
    ``param`` text), signed at send time; success judged by the answer body."""

    def __init__(
        self,
        pushes: Sequence[Push],
        *,
        url: str,
        salt: str,
        faults: SenderFaults | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            pushes, url=url, sign=lambda _url, _body: {}, faults=faults, seed=seed, is_success=kuaidi100_success
        )
        self.salt = salt

    async def deliver(self, http: aiohttp.ClientSession, push: Push) -> None:
        """Deliver one push, retrying within the platform's budget (the report records it)."""
        await self._deliver(http, push)

    def request(self, push: Push) -> tuple[str, bytes, dict[str, str]]:
        body = push_form(push.body.decode("utf-8"), self.salt)  # signed at send time
        return str(callback_url(self.url, push.order_id)), body, {**push.headers, "Content-Type": FORM_CONTENT_TYPE}


# --- 5xx between Kuaidi100 and the receiver ------------------------------------------------------


@dataclass(frozen=True)
class GatewayFaults:
    """Counted on every request through the gateway (1-based); 0 = off."""

    error_502_every: int = 0  # answered 502, never reaches the receiver
    lost_answer_every: int = 0  # forwarded, then the receiver's answer is replaced by a 504

    @property
    def active(self) -> bool:
        return bool(self.error_502_every or self.lost_answer_every)


class FaultyGateway:
    """A reverse proxy in front of a receiver that fails some requests with 5xx."""

    def __init__(self, upstream: str, faults: GatewayFaults, *, timeout_s: float = 20.0) -> None:
        parsed = URL(upstream)
        self.upstream = parsed.origin()
        self.faults = faults
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.stats: dict[str, int] = {"requests": 0, "http_502": 0, "http_504": 0, "forwarded": 0}
        self._http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _app: web.Application) -> None:
        self._http = aiohttp.ClientSession(timeout=self.timeout)

    async def _close(self, _app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    async def handle(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        n, f = self.stats["requests"], self.faults
        if f.error_502_every and n % f.error_502_every == 0:
            self.stats["http_502"] += 1
            return web.Response(status=502, text="502 Bad Gateway")
        assert self._http is not None
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", FORM_CONTENT_TYPE)}
        url = self.upstream.join(URL(request.path_qs, encoded=True))
        try:
            async with self._http.post(url, data=body, headers=headers) as resp:
                answer, status, content_type = await resp.read(), resp.status, resp.content_type
        except (TimeoutError, aiohttp.ClientError):
            self.stats["http_502"] += 1
            return web.Response(status=502, text="502 Bad Gateway")
        self.stats["forwarded"] += 1
        if f.lost_answer_every and n % f.lost_answer_every == 0:
            self.stats["http_504"] += 1
            return web.Response(status=504, text="504 Gateway Time-out")
        return web.Response(status=status, body=answer, content_type=content_type)


@dataclass
class RunningGateway:
    gateway: FaultyGateway
    runner: web.AppRunner
    host: str
    port: int

    def url_for(self, target: str) -> str:
        """``target`` (a receiver URL) as reached through this gateway."""
        return str(URL(target).with_host(self.host).with_port(self.port))

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve_gateway(gateway: FaultyGateway, host: str = "127.0.0.1", port: int = 0) -> RunningGateway:
    runner = web.AppRunner(gateway.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return RunningGateway(gateway, runner, host, int(bound))


# --- the simulator ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultConfig:
    """How unkind the delivery is: the sender's faults, and 5xx from a gateway."""

    sender: SenderFaults = field(default_factory=SenderFaults)
    gateway: GatewayFaults = field(default_factory=GatewayFaults)


@dataclass
class CarrierSimulator:
    salt: str
    waybills: list[Waybill] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> CarrierSimulator:
        return cls(salt=settings.carrier_salt.get_secret_value())

    def load(self, waybills: Iterable[Waybill]) -> None:
        self.waybills.extend(waybills)

    def pushes(self) -> list[Push]:
        return waybill_pushes(self.waybills)

    async def send_pushes(
        self, url: str, faults: SenderFaults | None = None, *, seed: int = 0, pushes: list[Push] | None = None
    ) -> SendReport:
        """Deliver the pushes to a receiver at ``url`` the way Kuaidi100 would."""
        sender = Kuaidi100Sender(
            pushes if pushes is not None else self.pushes(), url=url, salt=self.salt, faults=faults, seed=seed
        )
        return await sender.run()


def receiver_url(settings: Settings) -> str:
    """Where the carrier receiver listens (the callback URL without its query)."""
    return f"http://{settings.webhook_host}:{settings.carrier_webhook_port}{make_spec(settings).route}"


@dataclass
class RunningSimulator:
    """A simulator pushing in the background; ``url`` is where it pushes."""

    simulator: CarrierSimulator
    url: str
    sending: asyncio.Task[SendReport]
    gateway: RunningGateway | None = None

    async def wait(self) -> SendReport:
        """The report once every push was delivered or given up on."""
        return await asyncio.shield(self.sending)

    async def close(self) -> None:
        self.sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sending
        if self.gateway is not None:
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
    faults: FaultConfig | None = None,
    target: str | None = None,
    **_: Any,
) -> RunningSimulator:
    """Generate ``n_orders`` waybills and push all their traces now to ``target`` (default: the
    configured receiver). With gateway faults, the gateway listens on ``host``:``port``
    (default ``settings.carrier_simulator_port``) and the pushes go through it."""
    start, end = default_window(settings, start, end)
    faults = faults or FaultConfig()
    simulator = CarrierSimulator.from_settings(settings)
    simulator.load(generate_waybills(n_orders, seed=seed, start=start, end=end))
    url = target or receiver_url(settings)
    gateway = None
    if faults.gateway.active:
        gateway = await serve_gateway(
            FaultyGateway(url, faults.gateway),
            settings.simulator_host if host is None else host,
            settings.carrier_simulator_port if port is None else port,
        )
        url = gateway.url_for(url)
    sending = asyncio.create_task(simulator.send_pushes(url, faults.sender, seed=seed))
    log.info("carrier simulator: %d waybills, pushing to %s", len(simulator.waybills), url)
    return RunningSimulator(simulator, url, sending, gateway)


# --- scenario --------------------------------------------------------------------------------------

# Kuaidi100 retries a failed push 3 times, 35 minutes apart; a scenario lasts minutes, so the
# budget is compressed (about 4 minutes: a receiver that restarts or a broker that blips).
SCENARIO_SENDER = SenderFaults(retry_delays_s=(1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 60.0, 60.0), concurrency=8,
                               timeout_s=20.0)  # fmt: skip


def utc_now() -> datetime:
    return datetime.now(UTC)


def push_of(record: ScenarioRecord) -> Push:
    """A scenario record (the normaliser's envelope) as the Kuaidi100 push that carries it."""
    doc = json.loads(record.value)
    query = doc.get("query") or {}
    param = doc["param"]
    text = param if isinstance(param, str) else json.dumps(param, ensure_ascii=False, separators=(",", ":"))
    return Push(event_id=push_id(text), order_id=str(query.get(ORDER_QUERY) or ""), body=text.encode("utf-8"))


def publish_at(at: datetime, outages: Iterable[Outage]) -> datetime:
    """When Kuaidi100 pushes a change of ``at``: then, or at the end of a carrier outage
    covering it (back-to-back outages chain)."""
    mine = [o for o in outages if o.source == SOURCE]
    moved = True
    while moved:
        moved = False
        for outage in mine:
            if outage.covers(SOURCE, at):
                at, moved = outage.end, True
    return at


@dataclass
class RunningScenarioSimulator:
    """Pushes a scenario's carrier records on time; ``url`` is where it pushes."""

    url: str
    sender: Kuaidi100Sender
    playing: asyncio.Task[SendReport]

    @property
    def report(self) -> SendReport:
        return self.sender.report

    async def wait(self) -> SendReport:
        return await asyncio.shield(self.playing)

    async def close(self) -> None:
        self.playing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.playing


async def _play(
    plan: Sequence[tuple[datetime, Push]],
    sender: Kuaidi100Sender,
    clock: Callable[[], datetime],
) -> SendReport:
    limit = asyncio.Semaphore(max(1, sender.faults.concurrency))
    timeout = aiohttp.ClientTimeout(total=sender.faults.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def one(push: Push) -> None:
            async with limit:
                await sender.deliver(http, push)

        tasks: list[asyncio.Task[None]] = []
        try:
            for at, push in plan:
                wait = (at - clock()).total_seconds()
                if wait > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(one(push)))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return sender.report


async def start_scenario_simulator(
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    outages: Sequence[Outage] = (),
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    target: str | None = None,
    faults: SenderFaults | None = None,
    **_: Any,
) -> RunningScenarioSimulator:
    """Push each carrier record of a scenario, signed, to ``target`` (default: the configured
    receiver) at ``record.at`` - or at the end of a carrier outage covering it - retrying as
    Kuaidi100 does (compressed, see ``SCENARIO_SENDER``). Listens nowhere: ``host``/``port``
    are not used."""
    url = target or receiver_url(settings)
    mine = [r for r in records if r.source == SOURCE]
    order = sorted(range(len(mine)), key=lambda i: (publish_at(mine[i].at, outages), i))
    plan = [(publish_at(mine[i].at, outages), push_of(mine[i])) for i in order]
    sender = Kuaidi100Sender(
        [p for _, p in plan], url=url, salt=settings.carrier_salt.get_secret_value(), faults=faults or SCENARIO_SENDER
    )
    playing = asyncio.create_task(_play(plan, sender, clock))
    return RunningScenarioSimulator(url, sender, playing)
