"""抖店 playing its share of a generated scenario (``make run``): order messages pushed at each
version's time, resolved by ``order.orderDetail``, and the ``order.searchList`` reconciliation.

Each record is one version of a shop order (the ``shop_order_detail`` / ``shop_order_list``
element the normaliser accepts). When the scenario clock reaches its ``at`` (or the end of an
outage of ``douyin`` covering it) the version is what ``order.orderDetail`` and
``order.searchList`` return (:mod:`connectors.scenario_store`: latest version per order, by
``update_time``, the record's bytes as given), and one order message naming it is pushed to
the receiver (``target``): a JSON array ``[{"tag", "msg_id", "data"}]`` signed with
``event-sign`` (see :mod:`connectors.douyin.signing`), delivered by
:class:`connectors.webhook_sender.PushSender` (success = 2xx with ``{"code": 0}``); the
receiver resolves it through ``order.orderDetail``.

Tags (抖店 trade messages, op.jinritemai.com message docs): the first version is 100 订单创建;
then by the new ``order_status``: 105 -> 101 支付, 2 -> 110 已支付待处理, 101 -> 108 部分发货,
3 -> 102 发货, 5 -> 103 完成, 4 -> 106 取消 (or 206 退款成功 when ``main_status`` says refunded);
a version whose status did not change is sent as 105 收货信息变更 (this simulator's choice: the
change is not named by the record). During an outage every API call answers code 20000 服务不可用.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.douyin import signing
from connectors.douyin.client import SOURCE, order_key, order_updated
from connectors.douyin.simulator import DouyinSimulator, generate_histories, serve
from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario_store import (
    RunningScenario,
    ScenarioPusher,
    dumps,
    record_of,
    serve_pull_scenario,
    utc_now,
    version_times,
)
from connectors.webhook_sender import Push, SenderFaults
from ordertwin.settings import Settings

CREATED, ADDRESS_CHANGED = "100", "105"
STATUS_TAGS = {105: "101", 2: "110", 101: "108", 3: "102", 5: "103", 4: "106"}
REFUNDED = frozenset({21, 22, 39})  # main_status of an order closed by a refund


def identify(order: Any) -> tuple[bytes | None, datetime | None]:
    return order_key(order), order_updated(order)


def version_tag(before: Mapping[str, Any] | None, order: Mapping[str, Any]) -> str:
    """The message tag of a version, from its status change (see the module docstring)."""
    if before is None:
        return CREATED
    status = order.get("order_status")
    if status == before.get("order_status"):
        return ADDRESS_CHANGED
    if status == 4 and order.get("main_status") in REFUNDED:
        return "206"
    return STATUS_TAGS.get(status, ADDRESS_CHANGED) if isinstance(status, int) else ADDRESS_CHANGED


def tags(records: Sequence[ScenarioRecord]) -> dict[ScenarioRecord, str]:
    """Each record's tag, comparing it with the previous version of its order."""
    previous: dict[bytes, dict[str, Any]] = {}
    out: dict[ScenarioRecord, str] = {}
    for record in sorted(records, key=lambda r: r.at):
        order = json.loads(record.value)
        out[record] = version_tag(previous.get(record.key), order)
        previous[record.key] = order
    return out


def make_push(record: ScenarioRecord, tag: str, *, app_key: str) -> Push:
    """One push carrying one order message that names the version's shop order."""
    order = json.loads(record.value)
    data = {
        "biz": order.get("biz", 2),
        "order_status": order["order_status"],
        "order_type": order.get("order_type", 0),
        "p_id": int(order["order_id"]),
        "s_ids": [int(s["order_id"]) for s in order.get("sku_order_list", [])],
        "shop_id": order.get("shop_id"),
        "update_time": order["update_time"],
    }
    msg_id = str(random.Random(f"douyin/{record.key.decode()}/{record.at.isoformat()}").getrandbits(63))
    message = {"tag": tag, "msg_id": msg_id, "data": json.dumps(data, separators=(",", ":"))}
    return Push(msg_id, record.key.decode(), dumps([message]), {signing.APP_ID_HEADER: app_key})


def push_acknowledged(status: int, body: bytes) -> bool:
    try:
        return 200 <= status < 300 and json.loads(body).get("code") == 0
    except (ValueError, AttributeError):
        return False


async def start_scenario_simulator(
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    outages: Sequence[Outage] = (),
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    target: str | None = None,
    sender_faults: SenderFaults | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    **_: Any,
) -> RunningScenario:
    """Serve ``records`` (shop orders) on the order APIs as time passes and, with a ``target``,
    push an order message for each version there at its time."""
    simulator = DouyinSimulator.from_settings(settings)
    scenario = await serve_pull_scenario(
        SOURCE,
        simulator,
        serve,
        settings,
        records,
        identify=identify,
        outages=outages,
        host=host,
        port=port,
        clock=clock,
    )
    feed = scenario.feed
    if target is not None:
        tag = tags(feed.records)
        pusher = ScenarioPusher(
            feed,
            target=target,
            to_pushes=lambda r: [make_push(r, tag[r], app_key=simulator.app_key)],
            sign=simulator.sign,
            is_success=push_acknowledged,
            faults=sender_faults,
            sleep=sleep,
        )
        pusher.start()
        scenario.pusher = pusher
    return scenario


def sample_records(n_orders: int, *, seed: int, start: datetime, span_s: int = 6) -> list[ScenarioRecord]:
    """Scenario records from the simulator's own order histories (1-5 versions: created, paid,
    shipped, completed, cancelled, refunded...), re-timed to distinct whole seconds in
    ``[start, start + span_s)``; for tests and single-channel demos."""
    if span_s < 5:
        raise ValueError("span_s must be >= 5 (orders have up to 5 versions)")
    rng = random.Random(seed)
    out: list[ScenarioRecord] = []
    for history in generate_histories(n_orders, seed=seed, start=start - timedelta(hours=6), end=start):
        times = version_times(len(history.versions), start=start, span_s=span_s, rng=rng)
        created = int(times[0].timestamp()) - 60
        for version, at in zip(history.versions, times, strict=True):
            doc = json.loads(json.dumps(version.order))
            when = int(at.timestamp())
            for part in (doc, *doc["sku_order_list"]):
                part["create_time"] = created
                part["pay_time"] = created + 30 if part["pay_time"] else 0
                part["update_time"] = when
            doc["finish_time"] = when if doc["finish_time"] else 0
            doc["ship_time"] = when if doc["ship_time"] else 0
            out.append(record_of(SOURCE, doc, identify))
    return sorted(out, key=lambda r: r.at)
