"""抖店 (Douyin shop): message pushes, repaired by the ``order.searchList`` reconciliation pull."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.douyin.client import DouyinClient
from connectors.douyin.push import make_spec
from connectors.douyin.scenario import start_scenario_simulator
from connectors.douyin.simulator import DouyinSimulator, FaultConfig, RunningSimulator, generate_histories, serve
from connectors.douyin.source import DouyinOrderSource
from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return DouyinOrderSource(DouyinClient.from_settings(http, settings), page_size=settings.douyin_page_size)


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
    simulator = DouyinSimulator.from_settings(settings, faults=faults or FaultConfig())
    simulator.load(generate_histories(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.douyin_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="douyin",
    mode="webhook+pull",
    doc="抖店 message push (event-sign md5, msg_id dedup, resolved by order.orderDetail) + order.searchList "
    "reconciliation (update_time window, newest first, md5/hmac-sha256 signed)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
    webhook=make_spec,
)
