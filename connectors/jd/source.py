"""Adapts :class:`JdClient` to the generic pull engine (:class:`connectors.pull.PageSource`).

JOS pages by page number over a list sorted by modified time (``sortType=1``: newest first),
exactly the shape the engine's time-keyset paging is built for: it asks for page 1 only and
re-queries the rest of the window, so an order modified while we page (it jumps to "now",
out of the window) cannot shift another one past a page boundary.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.jd.client import SOURCE, JdClient, order_key, order_modified
from connectors.pull import Page, RawItem

# JOS: start_date/end_date "不得相差超过1个月". A calendar month is at least 28 days, so a
# 28-day span is accepted whatever the month; times have whole-second precision.
JOS_MAX_WINDOW = timedelta(days=28)
JOS_RESOLUTION = timedelta(seconds=1)


class JdOrderSource:
    """The JOS POP order search as pages of raw ``OrderSearchInfo`` keyed by ``orderId``."""

    name = SOURCE
    max_window = JOS_MAX_WINDOW
    resolution = JOS_RESOLUTION
    order = "newest_first"  # we ask sortType=1 (descending) with dateType=0 (modified time)

    def __init__(self, client: JdClient, *, page_size: int = 100) -> None:
        self.client = client
        self.page_size = page_size

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        page = await self.client.order_search(start, end, page_no, self.page_size)
        items = [
            RawItem(key=order_key(order), value=raw, modified=order_modified(order))
            for order, raw in zip(page.orders, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.has_next)
