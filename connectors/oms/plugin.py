"""OMS: 旺店通旗舰版 ``sales.TradeQuery.queryWithDetail`` ERP orders, pulled by modified time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from connectors.oms.client import OmsClient
from connectors.oms.simulator import (
    FaultConfig,
    OmsSimulator,
    RunningSimulator,
    generate_trades,
    serve,
    serve_scenario,
    utc_now,
)
from connectors.oms.source import OmsTradeSource
from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from connectors.scenario.model import Outage, ScenarioRecord
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return OmsTradeSource(OmsClient.from_settings(http, settings), page_size=settings.oms_page_size)


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
    **_: Any,
) -> RunningSimulator:
    start, end = default_window(settings, start, end)
    simulator = OmsSimulator.from_settings(settings, faults=faults or FaultConfig(), seed=seed)
    simulator.store.add_many(generate_trades(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.oms_simulator_port if port is None else port,
    )


async def start_scenario_simulator(
    settings: Settings,
    records: Sequence[ScenarioRecord],
    *,
    outages: Sequence[Outage] = (),
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    target: str | None = None,  # push simulators only
    **_: Any,
) -> RunningSimulator:
    return await serve_scenario(settings, records, outages=outages, host=host, port=port, clock=clock)


PLUGIN = SourcePlugin(
    name="oms",
    mode="pull",
    doc="旺店通旗舰版 sales.TradeQuery.queryWithDetail (MD5 signed sid/key/salt, time_type=1 modified-time "
    "cursor, order_type=1 newest first, 60-minute windows)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
