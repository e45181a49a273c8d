"""Finance ledger: ordertwin's ``GET /v1/postings`` (HMAC-SHA256), pulled by ``posted_at``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from connectors.finance.client import FinanceClient
from connectors.finance.simulator import (
    FaultConfig,
    FinanceSimulator,
    RunningSimulator,
    generate_postings,
    serve,
    serve_scenario,
    utc_now,
)
from connectors.finance.source import FinancePostingSource
from connectors.pull import PageSource
from connectors.registry import SourcePlugin, default_window
from connectors.scenario.model import Outage, ScenarioRecord
from ordertwin.settings import Settings


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    return FinancePostingSource(FinanceClient.from_settings(http, settings), page_size=settings.finance_page_size)


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
    """A ledger holding ``n_orders`` postings (one record per posting, as the contract test counts)."""
    start, end = default_window(settings, start, end)
    simulator = FinanceSimulator.from_settings(settings, faults=faults or FaultConfig(), seed=seed)
    simulator.store.add_many(generate_postings(n_orders, seed=seed, start=start, end=end))
    return await serve(
        simulator,
        settings.simulator_host if host is None else host,
        settings.finance_simulator_port if port is None else port,
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
    name="finance",
    mode="pull",
    doc="ordertwin ledger query API GET /v1/postings (HMAC-SHA256 signed, posted_at window [from, to) "
    "<= 31 days, keyset page_token, oldest first; modelled on alipay.data.bill.accountlog.query)",
    page_source=page_source,
    start_simulator=start_simulator,
    start_scenario_simulator=start_scenario_simulator,
)
