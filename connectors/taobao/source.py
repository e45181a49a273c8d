"""Adapts :class:`TaobaoClient` to the generic pull engine (:class:`connectors.pull.PageSource`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.pull import Page, RawItem
from connectors.taobao.client import SOURCE, TaobaoClient, trade_key, trade_modified

# TOP: "end_modified - start_modified <= 1 day"; times have whole-second precision.
TOP_MAX_WINDOW = timedelta(days=1)
TOP_RESOLUTION = timedelta(seconds=1)


class TaobaoTradeSource:
    """``taobao.trades.sold.increment.get`` as pages of raw trades keyed by ``tid``."""

    name = SOURCE
    max_window = TOP_MAX_WINDOW
    resolution = TOP_RESOLUTION
    order = "newest_first"  # TOP: "以订单的修改时间倒序排列"
    end_after_start = True  # TOP: end_modified "必须大于修改开始时间"

    def __init__(self, client: TaobaoClient, *, page_size: int = 50) -> None:
        self.client = client
        self.page_size = page_size

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        page = await self.client.trades_sold_increment_get(start, end, page_no, self.page_size)
        items = [
            RawItem(key=trade_key(trade), value=raw, modified=trade_modified(trade))
            for trade, raw in zip(page.trades, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.has_next)
