"""Taobao / Tmall: TOP ``taobao.trades.sold.increment.get``, pulled by modified time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from connectors.pull import Page, PageSource
from connectors.registry import SourcePlugin, default_window
from connectors.taobao.client import TaobaoClient
from connectors.taobao.scenario import start_scenario_simulator
from connectors.taobao.simulator import FaultConfig, RunningSimulator, TaobaoSimulator, generate_trades, serve
from connectors.taobao.source import TaobaoTradeSource
from ordertwin.settings import Settings


class OneSecondQueries:
    """Lists a one-second window ``[t, t]``, which TOP refuses, as ``[t - 1 s, t]``.

    TOP: end_modified "必须大于修改开始时间" (must be later than start_modified). The pull
    engine asks for ``[t, t]`` once it has seen TOP include both bounds of its queries and
    narrows a window down to one second (more trades than a page around a window edge, e.g.
    the backlog after an outage); TOP's error would stop the connector. Newest first, the
    trades of ``t`` lead ``[t - 1 s, t]``: pages are cut at the first older trade (those are
    the next query's). A workaround until ``connectors.pull`` widens such queries itself.
    """

    def __init__(self, inner: TaobaoTradeSource) -> None:
        self.inner = inner
        self.name, self.max_window, self.resolution, self.order = (
            inner.name,
            inner.max_window,
            inner.resolution,
            inner.order,
        )

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        if end > start:
            return await self.inner.fetch_page(start, end, page_no)
        page = await self.inner.fetch_page(start - self.resolution, end, page_no)
        items = [i for i in page.items if i.modified is None or i.modified >= start]
        return Page(items=items, has_next=page.has_next and len(items) == len(page.items))


def page_source(http: aiohttp.ClientSession, settings: Settings) -> PageSource:
    source = TaobaoTradeSource(TaobaoClient.from_settings(http, settings), page_size=settings.taobao_page_size)
    return OneSecondQueries(source)


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
