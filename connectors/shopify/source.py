"""Adapts :class:`ShopifyClient` to the generic pull engine (:class:`connectors.pull.PageSource`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.errors import TransientError
from connectors.pull import Page, RawItem
from connectors.shopify.client import MAX_LIMIT, SOURCE, ShopifyClient, order_key, order_updated


class ShopifyOrderSource:
    """``orders.json?status=any&updated_at_min..max`` as pages of raw orders keyed by ``id``.

    Shopify pages with opaque cursors, not page numbers: the ``page_info`` of page n+1 is kept
    from page n of the same query. The cursor is a position in a stable order (not an offset),
    so an order modified while we page does not shift the others; it leaves the window and a
    later window finds it.
    """

    name = SOURCE
    max_window = timedelta(days=7)  # no platform limit; keeps one query's result bounded
    resolution = timedelta(seconds=1)  # updated_at_min/max are sent with whole seconds
    order = "unordered"  # ordered by id (creation), not by updated_at: page through with cursors

    def __init__(self, client: ShopifyClient, *, page_size: int = MAX_LIMIT) -> None:
        self.client = client
        self.page_size = page_size
        self._cursors: dict[tuple[datetime, datetime, int], str] = {}

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        if page_no == 1:
            self._cursors.clear()  # a new query: cursors of the previous one are useless
            page_info = None
        else:
            page_info = self._cursors.get((start, end, page_no))
            if page_info is None:
                raise TransientError(SOURCE, f"no page_info for page {page_no} of {start}..{end}")
        page = await self.client.get_orders(start, end, limit=self.page_size, page_info=page_info)
        if page.next_page_info:
            self._cursors[(start, end, page_no + 1)] = page.next_page_info
        items = [
            RawItem(key=order_key(order), value=raw, modified=order_updated(order))
            for order, raw in zip(page.orders, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.next_page_info is not None)
