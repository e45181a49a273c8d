"""Taobao / Tmall playing its share of a generated scenario (``make run``), pulled by the real
connector.

The TOP gateway simulator (:mod:`connectors.taobao.simulator`) serves the scenario's trade
versions (:func:`connectors.scenario.payloads.taobao_trade`) from its own store, each released
when the scenario clock reaches its time (:mod:`connectors.scenario_store`):
``trades.trade`` carries every record's bytes as given, and ``taobao.trades.sold.increment.get``
shows the latest version of each trade by its ``modified`` time (= the record's ``at``).
During an outage of ``taobao`` every call answers TOP's platform error 10 "Service Currently
Unavailable" (服务不可用, in TOP's system error table), which the client retries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from connectors.scenario.model import Outage, ScenarioRecord
from connectors.scenario_store import RunningScenario, serve_pull_scenario, utc_now
from connectors.taobao.client import SOURCE, trade_key, trade_modified
from connectors.taobao.simulator import TaobaoSimulator, serve
from ordertwin.settings import Settings


def identify(trade: Any) -> tuple[bytes | None, datetime | None]:
    return trade_key(trade), trade_modified(trade)


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
    """Serve ``records`` (TOP ``Trade`` objects) on the TOP gateway as time passes."""
    return await serve_pull_scenario(
        SOURCE,
        TaobaoSimulator.from_settings(settings),
        serve,
        settings,
        records,
        identify=identify,
        outages=outages,
        host=host,
        port=port,
        clock=clock,
    )
