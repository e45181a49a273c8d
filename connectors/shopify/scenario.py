"""Shopify playing its share of a generated scenario (``make run``): order webhooks at each
version's time, and the Admin REST ``orders.json`` reconciliation API.

Each record is one version of a Shopify ``Order`` (the object ``orders.json`` returns and the
normaliser accepts). When the scenario clock reaches its ``at`` (or the end of an outage of
``shopify`` covering it) the version is listed by ``orders.json`` (:mod:`connectors.scenario_store`,
latest version per order, by ``updated_at``) and delivered as webhooks to the receiver
(``target``), signed like Shopify (``X-Shopify-Hmac-Sha256``) by the store's delivery loop
(:class:`connectors.webhook_sender.PushSender`, retrying failed deliveries).

Topics follow what changed since the order's previous version (Shopify's ``orders/*`` topics,
https://shopify.dev/docs/api/webhooks?reference=toml#list-of-topics): the first version is
``orders/create``; then ``orders/cancelled``, ``orders/fulfilled``,
``orders/partially_fulfilled`` or ``orders/paid`` for those changes, else ``orders/updated``.
A change with its own topic also fires ``orders/updated`` (a second delivery of the same
body, another webhook id, the same event id), as Shopify does for any order update.
During an outage every ``orders.json`` call answers 503.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from connectors.shopify.client import SOURCE, order_key, order_updated
from connectors.shopify.push import (
    API_VERSION_HEADER,
    EVENT_ID_HEADER,
    SHOP_DOMAIN_HEADER,
    TOPIC_HEADER,
    TRIGGERED_AT_HEADER,
    WEBHOOK_ID_HEADER,
)
from connectors.shopify.simulator import SHOP_DOMAIN, ShopifySimulator, generate_histories, serve, shop_time
from connectors.webhook_sender import Push, SenderFaults
from ordertwin.settings import Settings

CREATE, UPDATED = "orders/create", "orders/updated"


def identify(order: Any) -> tuple[bytes | None, datetime | None]:
    return order_key(order), order_updated(order)


def version_topic(before: Mapping[str, Any] | None, order: Mapping[str, Any]) -> str:
    """The ``orders/*`` topic of a version, from what changed since the previous one."""
    if before is None:
        return CREATE
    if order.get("cancelled_at") and not before.get("cancelled_at"):
        return "orders/cancelled"
    fulfilled = order.get("fulfillment_status")
    if fulfilled != before.get("fulfillment_status"):
        if fulfilled == "fulfilled":
            return "orders/fulfilled"
        if fulfilled == "partial":
            return "orders/partially_fulfilled"
    if order.get("financial_status") == "paid" and before.get("financial_status") != "paid":
        return "orders/paid"
    return UPDATED


def topics(records: Sequence[ScenarioRecord]) -> dict[ScenarioRecord, str]:
    """Each record's topic, comparing it with the previous version of its order."""
    previous: dict[bytes, dict[str, Any]] = {}
    out: dict[ScenarioRecord, str] = {}
    for record in sorted(records, key=lambda r: r.at):
        order = json.loads(record.value)
        out[record] = version_topic(previous.get(record.key), order)
        previous[record.key] = order
    return out


def make_pushes(record: ScenarioRecord, topic: str, *, api_version: str) -> list[Push]:
    """The deliveries of one version: its topic (and ``orders/updated`` for a named change)."""
    order = json.loads(record.value)
    rng = random.Random(f"shopify/{record.key.decode()}/{record.at.isoformat()}")
    event_id = str(rng.getrandbits(63))
    out = []
    for name in (topic,) if topic in (CREATE, UPDATED) else (topic, UPDATED):
        webhook_id = f"{rng.getrandbits(128):032x}"
        headers = {
            TOPIC_HEADER: name,
            SHOP_DOMAIN_HEADER: SHOP_DOMAIN,
            API_VERSION_HEADER: api_version,
            WEBHOOK_ID_HEADER: webhook_id,
            EVENT_ID_HEADER: event_id,
            TRIGGERED_AT_HEADER: str(order["updated_at"]),
        }
        out.append(Push(event_id=webhook_id, order_id=record.key.decode(), body=record.value, headers=headers))
    return out


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
    """Serve ``records`` (Shopify ``Order`` versions) on ``orders.json`` as time passes and, with
    a ``target``, push each version there as Shopify webhooks at its time."""
    simulator = ShopifySimulator.from_settings(settings)
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
        topic = topics(feed.records)
        pusher = ScenarioPusher(
            feed,
            target=target,
            to_pushes=lambda r: make_pushes(r, topic[r], api_version=simulator.api_version),
            sign=simulator.sign,
            faults=sender_faults,
            sleep=sleep,
        )
        pusher.start()
        scenario.pusher = pusher
    return scenario


def sample_records(n_orders: int, *, seed: int, start: datetime, span_s: int = 5) -> list[ScenarioRecord]:
    """Scenario records from the simulator's own order histories (1-3 versions: created, paid,
    fulfilled, cancelled...), re-timed to distinct whole seconds in ``[start, start + span_s)``;
    for tests and single-channel demos."""
    if span_s < 3:
        raise ValueError("span_s must be >= 3 (orders have up to 3 versions)")
    rng = random.Random(seed)
    out: list[ScenarioRecord] = []
    for history in generate_histories(n_orders, seed=seed, start=start - timedelta(hours=6), end=start):
        times = version_times(len(history.versions), start=start, span_s=span_s, rng=rng)
        for version, at in zip(history.versions, times, strict=True):
            doc = json.loads(json.dumps(version.order))
            doc["created_at"] = doc["processed_at"] = shop_time(times[0])
            doc["updated_at"] = shop_time(at)
            for name in ("cancelled_at", "closed_at"):
                if doc.get(name) is not None:
                    doc[name] = shop_time(at)
            for fulfillment in doc["fulfillments"]:
                fulfillment["created_at"] = fulfillment["updated_at"] = shop_time(at)
            out.append(record_of(SOURCE, doc, identify))
    return sorted(out, key=lambda r: r.at)
