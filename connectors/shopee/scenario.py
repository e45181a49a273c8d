"""Shopee playing its share of a generated scenario (``make run``): order status pushes (code 3)
at each version's time, and the ``get_order_list`` / ``get_order_detail`` reconciliation API.

Each record is one version of an order detail (the object ``get_order_detail`` returns with
the connector's ``response_optional_fields``, which the normaliser accepts). When the
scenario clock reaches its ``at`` (or the end of an outage of ``shopee`` covering it) the
version is listed (:mod:`connectors.scenario_store`, latest version per order, by
``update_time``; ``get_order_detail`` returns the record's bytes as given) and one Order
Status Update Push is sent to the receiver (``target``): ``{"data": {"ordersn", "status",
"completed_scenario", "update_time"}, "shop_id", "code": 3, "timestamp"}``, signed with
``Authorization`` = HMAC-SHA256(partner key, URL|body) (Shopee Open Platform "Push Mechanism"),
``timestamp`` being when it is sent. Delivered by :class:`connectors.webhook_sender.PushSender`
with Shopee's few retries: a push still failing is lost, and the reconciliation pull repairs it.
During an outage every API call answers Shopee's ``error_server`` envelope with HTTP 500.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario_store import (
    RunningScenario,
    ScenarioPusher,
    record_of,
    serve_pull_scenario,
    utc_now,
    version_times,
)
from connectors.shopee.client import OPTIONAL_FIELDS, SOURCE, order_key, order_updated
from connectors.shopee.push import ORDER_STATUS_PUSH
from connectors.shopee.simulator import SHOPEE_RETRIES, ShopeeSimulator, generate_histories, project, serve
from connectors.webhook_sender import Push, SenderFaults
from ordertwin.settings import Settings

SHIPPED = frozenset({"SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED", "TO_RETURN"})


def identify(order: Any) -> tuple[bytes | None, datetime | None]:
    return order_key(order), order_updated(order)


def make_push(record: ScenarioRecord, *, shop_id: int, sent_at: datetime) -> Push:
    """The code-3 push of one version; its dedup id is its content, as the receiver computes it."""
    order = json.loads(record.value)
    sn, status, updated = order["order_sn"], order["order_status"], order["update_time"]
    body = {
        "data": {"ordersn": sn, "status": status, "completed_scenario": "", "update_time": updated},
        "shop_id": shop_id,
        "code": ORDER_STATUS_PUSH,
        "timestamp": int(sent_at.timestamp()),
    }
    event_id = f"{shop_id}:{ORDER_STATUS_PUSH}:{sn}:{status}:{updated}"
    return Push(event_id, sn, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


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
    """Serve ``records`` (order details) on the order APIs as time passes and, with a
    ``target``, push each version's status there at its time."""
    simulator = ShopeeSimulator.from_settings(settings)
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
        pusher = ScenarioPusher(
            feed,
            target=target,
            to_pushes=lambda r: [make_push(r, shop_id=simulator.shop_id, sent_at=feed.clock())],
            sign=simulator.sign,
            is_success=lambda status, body: 200 <= status < 300 and not body,  # Shopee: 2xx, empty body
            faults=sender_faults or SHOPEE_RETRIES,
            sleep=sleep,
        )
        pusher.start()
        scenario.pusher = pusher
    return scenario


def sample_records(n_orders: int, *, seed: int, start: datetime, span_s: int = 8) -> list[ScenarioRecord]:
    """Scenario records from the simulator's own order histories (1-6 status versions),
    re-timed to distinct whole seconds in ``[start, start + span_s)`` and projected to what
    ``get_order_detail`` returns the connector; for tests and single-channel demos."""
    if span_s < 6:
        raise ValueError("span_s must be >= 6 (orders have up to 6 versions)")
    rng = random.Random(seed)
    out: list[ScenarioRecord] = []
    for history in generate_histories(n_orders, seed=seed, start=start - timedelta(hours=6), end=start):
        times = version_times(len(history.versions), start=start, span_s=span_s, rng=rng)
        created = int(times[0].timestamp()) - 60
        for version, at in zip(history.versions, times, strict=True):
            doc = project(json.loads(json.dumps(version)), OPTIONAL_FIELDS)
            status = doc["order_status"]
            doc.update(create_time=created, update_time=int(at.timestamp()), ship_by_date=created + 3 * 86400)
            doc["pay_time"] = created + 60 if status != "UNPAID" else 0
            doc["pickup_done_time"] = int(at.timestamp()) if status in SHIPPED else 0
            out.append(record_of(SOURCE, doc, identify))
    return sorted(out, key=lambda r: r.at)
