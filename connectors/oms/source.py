"""Adapts :class:`OmsClient` to the generic pull engine (:class:`connectors.pull.PageSource`).

We ask 旺店通 for ``order_type=1`` (修改时间降序: newest modified first) with ``time_type=1``
(by modified time), exactly the shape the engine's time-keyset paging is built for: it asks
for the first page only and re-queries the rest of the window, so an order modified while we
page (its ``modified`` jumps to "now", out of the window, which ends in the past) cannot shift
another one past a page boundary. (With the default ascending order the platform itself
advises paging from the last page back, "通过从后往前翻页的方式可以避免漏单问题".)

The engine counts pages from 1; 旺店通 from 0 ("标准接口page_no从0开始"): page ``n`` of the
engine is platform page ``n - 1``. A window spans at most 60 minutes ("start_time和end_time
最大跨度为60分钟"), including the one-second step the engine adds at each end while the
platform's bound semantics are unproven (``PullConfig.from_settings`` caps it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.oms.client import MAX_PAGE_SIZE, SOURCE, OmsClient, trade_key, trade_modified
from connectors.pull import Page, RawItem

WDT_MAX_WINDOW = timedelta(minutes=60)
WDT_RESOLUTION = timedelta(seconds=1)  # "YYYY-MM-DD HH:MM:SS"


class OmsTradeSource:
    """``sales.TradeQuery.queryWithDetail`` as pages of raw ERP orders keyed by ``trade_no``."""

    name = SOURCE
    max_window = WDT_MAX_WINDOW
    resolution = WDT_RESOLUTION
    order = "newest_first"  # order_type=1 (修改时间降序) with time_type=1 (修改时间)

    def __init__(self, client: OmsClient, *, page_size: int = MAX_PAGE_SIZE) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.client = client
        self.page_size = page_size

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        if page_no < 1:
            raise ValueError(f"engine pages count from 1, got {page_no}")
        page = await self.client.trade_query(start, end, page_no - 1, self.page_size)
        items = [
            RawItem(key=trade_key(trade), value=raw, modified=trade_modified(trade))
            for trade, raw in zip(page.orders, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.has_next)
