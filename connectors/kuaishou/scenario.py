"""Kuaishou shop playing its share of a generated scenario (``make run``), pulled by the real
connector.

The open API simulator (:mod:`connectors.kuaishou.simulator`) serves the scenario's order
versions from its own store, each released when the scenario clock reaches its time
(:mod:`connectors.scenario_store`): ``data.orderList`` carries every record's bytes as given,
and ``open.order.cursor.list`` shows the latest version of each order by
``orderBaseInfo.updateTime`` (ms; = the record's ``at``), paged with the platform's cursor.
During an outage of ``kuaishou`` every call answers HTTP 503.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.kuaishou.client import SOURCE, order_key, order_updated, to_millis
from connectors.kuaishou.simulator import KuaishouSimulator, advance, apply_changes, generate_orders, serve
from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario_store import (
    RunningScenario,
    record_of,
    serve_pull_scenario,
    utc_now,
    version_times,
)
from ordertwin.settings import Settings


def identify(order: Any) -> tuple[bytes | None, datetime | None]:
    return order_key(order), order_updated(order)


async def start_scenario_simulator(
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    outages: Sequence[Outage] = (),
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    target: str | None = None,
    **_: Any,
) -> RunningScenario:
    """Serve ``records`` (``orderList`` elements) on the Kuaishou open API as time passes."""
    return await serve_pull_scenario(
        SOURCE,
        KuaishouSimulator.from_settings(settings),
        serve,
        settings,
        records,
        identify=identify,
        outages=outages,
        host=host,
        port=port,
        clock=clock,
    )


def sample_records(n_orders: int, *, seed: int, start: datetime, span_s: int = 5) -> list[ScenarioRecord]:
    """Scenario records from the simulator's own generator: 1-3 versions per order (the next
    one made by :func:`~connectors.kuaishou.simulator.advance`), at distinct whole seconds in
    ``[start, start + span_s)``; for tests and single-channel demos."""
    rng = random.Random(seed)
    out: list[ScenarioRecord] = []
    for order in generate_orders(n_orders, seed=seed, start=start - timedelta(hours=6), end=start):
        doc = copy.deepcopy(order)
        for i, at in enumerate(version_times(rng.randint(1, min(3, span_s)), start=start, span_s=span_s, rng=rng)):
            doc = copy.deepcopy(doc)
            apply_changes(doc, advance(doc, to_millis(at), rng) if i else {}, updated=at)
            out.append(record_of(SOURCE, doc, identify))
    return sorted(out, key=lambda r: r.at)
