"""JD POP: JOS ``jingdong.pop.order.enSearch`` (or ``.search``), pulled by modified time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.jd.client import JdClient
from connectors.jd.scenario import start_scenario_simulator
from connectors.jd.simulator import FaultConfig, JdSimulator, RunningSimulator, generate_orders, serve
from connectors.jd.source import JdOrderSource
from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return JdOrderSource(JdClient.from_settings(http, settings), page_size=settings.jd_page_size)


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
    simulator = JdSimulator.from_settings(settings, faults=faults or FaultConfig(), seed=seed)
    simulator.store.add_many(generate_orders(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.jd_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="jd",
    mode="pull",
    doc="JOS jingdong.pop.order.enSearch/search (MD5 signed, dateType=0 modified-time cursor, newest first)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
