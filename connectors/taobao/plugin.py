"""Taobao / Tmall: TOP ``taobao.trades.sold.increment.get``, pulled by modified time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from connectors.taobao.client import TaobaoClient
from connectors.taobao.scenario import start_scenario_simulator
from connectors.taobao.simulator import FaultConfig, RunningSimulator, TaobaoSimulator, generate_trades, serve
from connectors.taobao.source import TaobaoTradeSource
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return TaobaoTradeSource(TaobaoClient.from_settings(http, settings), page_size=settings.taobao_page_size)


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
    simulator = TaobaoSimulator.from_settings(settings, faults=faults or FaultConfig())
    simulator.store.add_many(generate_trades(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.taobao_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="taobao",
    mode="pull",
    doc="TOP taobao.trades.sold.increment.get (md5/hmac signed, modified-time cursor, newest first)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
