"""Pinduoduo playing its share of a generated scenario (``make run``), pulled by the real
connector.

The PDD gateway simulator (:mod:`connectors.pdd.simulator`) serves the scenario's order
versions from its own store, each released when the scenario clock reaches its time
(:mod:`connectors.scenario_store`): ``order_sn_list`` carries every record's bytes as given,
and ``pdd.order.number.list.increment.get`` shows the latest version of each order by its
``updated_at`` (= the record's ``at``), oldest first, paged by ``page``. During an outage of
``pdd`` every call answers PDD's ``error_response`` 50000 "系统内部错误", which the client
retries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.pdd.client import SOURCE, order_key, order_updated, to_pdd_time
from connectors.pdd.simulator import PddSimulator, advance, generate_orders, serve
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
    """Serve ``records`` (PDD ``order_sn_list`` elements) on the PDD gateway as time passes."""
    return await serve_pull_scenario(
        SOURCE,
        PddSimulator.from_settings(settings),
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
    one made by :func:`~connectors.pdd.simulator.advance`), at distinct whole seconds in
    ``[start, start + span_s)``; for tests and single-channel demos."""
    rng = random.Random(seed)
    out: list[ScenarioRecord] = []
    for order in generate_orders(n_orders, seed=seed, start=start - timedelta(hours=6), end=start):
        doc = dict(order)
        for i, at in enumerate(version_times(rng.randint(1, min(3, span_s)), start=start, span_s=span_s, rng=rng)):
            if i:
                doc = {**doc, **advance(doc, at, rng)}
            doc["updated_at"] = to_pdd_time(at)
            out.append(record_of(SOURCE, doc, identify))
    return sorted(out, key=lambda r: r.at)
