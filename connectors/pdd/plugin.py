"""Pinduoduo: ``pdd.order.number.list.increment.get``, pulled by update time, paged backwards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.pdd.client import PddClient
from connectors.pdd.scenario import start_scenario_simulator
from connectors.pdd.simulator import FaultConfig, PddSimulator, RunningSimulator, generate_orders, serve
from connectors.pdd.source import PddOrderSource
from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return PddOrderSource(
        PddClient.from_settings(http, settings),
        page_size=settings.pdd_page_size,
        min_safety_lag_s=settings.pdd_min_safety_lag_s,
    )


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
    simulator = PddSimulator.from_settings(settings, faults=faults or FaultConfig(), seed=seed)
    simulator.store.add_many(generate_orders(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.pdd_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="pdd",
    mode="pull",
    doc="PDD pdd.order.number.list.increment.get (MD5 signed, updated_at cursor, 30-min windows paged last-first)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
