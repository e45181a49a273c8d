"""Shopee: order status pushes, repaired by the Open Platform v2 reconciliation pull."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from connectors.shopee.client import ShopeeClient
from connectors.shopee.push import make_spec
from connectors.shopee.scenario import start_scenario_simulator
from connectors.shopee.simulator import FaultConfig, RunningSimulator, ShopeeSimulator, generate_histories, serve
from connectors.shopee.source import ShopeeOrderSource
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return ShopeeOrderSource(ShopeeClient.from_settings(http, settings), page_size=settings.shopee_page_size)


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
    simulator = ShopeeSimulator.from_settings(settings, faults=faults or FaultConfig())
    simulator.load(generate_histories(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.shopee_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="shopee",
    mode="webhook+pull",
    doc="Shopee v2 order status push (code 3, HMAC-SHA256 of url|body) + get_order_list/get_order_detail "
    "reconciliation (update_time window, cursor, signed query)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
    webhook=make_spec,
)
