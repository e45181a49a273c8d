"""Shopify: order webhooks, repaired by the Admin REST ``orders.json`` reconciliation pull."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from connectors.shopify.client import ShopifyClient
from connectors.shopify.push import make_spec
from connectors.shopify.scenario import start_scenario_simulator
from connectors.shopify.simulator import FaultConfig, RunningSimulator, ShopifySimulator, generate_histories, serve
from connectors.shopify.source import ShopifyOrderSource
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return ShopifyOrderSource(ShopifyClient.from_settings(http, settings), page_size=settings.shopify_page_size)


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
    simulator = ShopifySimulator.from_settings(settings, faults=faults or FaultConfig())
    simulator.load(generate_histories(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.shopify_simulator_port if port is None else port,
    )


PLUGIN = SourcePlugin(
    name="shopify",
    mode="webhook+pull",
    doc="Shopify orders/* webhooks (HMAC-SHA256, X-Shopify-Webhook-Id dedup) + Admin REST orders.json "
    "reconciliation (updated_at window, Link page_info cursor)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
    webhook=make_spec,
)
