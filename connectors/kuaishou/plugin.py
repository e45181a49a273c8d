"""Kuaishou shop: ``open.order.cursor.list`` by update time, paged with the platform's cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.kuaishou.client import KuaishouClient
from connectors.kuaishou.scenario import start_scenario_simulator
from connectors.kuaishou.simulator import FaultConfig, KuaishouSimulator, RunningSimulator, generate_orders, serve
from connectors.kuaishou.source import KuaishouOrderSource
from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return KuaishouOrderSource(KuaishouClient.from_settings(http, settings), page_size=settings.kuaishou_page_size)


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
    simulator = KuaishouSimulator.from_settings(settings, faults=faults or FaultConfig(), seed=seed)
    simulator.store.add_many(generate_orders(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.kuaishou_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="kuaishou",
    mode="pull",
    doc="Kuaishou open.order.cursor.list (HMAC_SHA256/MD5 signed, updateTime windows, platform cursor until nomore)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
