"""Adapts :class:`DouyinClient` to the generic pull engine (:class:`connectors.pull.PageSource`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.douyin.client import MAX_SIZE, SOURCE, DouyinClient, order_key, order_updated
from connectors.pull import Page, RawItem


class DouyinOrderSource:
    """``order.searchList`` by update time, newest first, as pages of shop orders keyed by
    ``order_id``. Newest-first order lets the engine page by time (keyset), not by page number."""

    name = SOURCE
    max_window = timedelta(days=1)  # undocumented here; one day keeps a query's result small
    resolution = timedelta(seconds=1)  # Unix seconds
    order = "newest_first"  # order_by=update_time, order_asc=false

    def __init__(self, client: DouyinClient, *, page_size: int = MAX_SIZE) -> None:
        self.client = client
        self.page_size = page_size

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        page = await self.client.search_list(start, end, page=page_no - 1, size=self.page_size)
        items = [
            RawItem(key=order_key(order), value=raw, modified=order_updated(order))
            for order, raw in zip(page.orders, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.has_next)
