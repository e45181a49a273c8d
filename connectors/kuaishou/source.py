"""Adapts :class:`KuaishouClient`'s cursor paging to the pull engine's numbered pages.

The engine asks for ``fetch_page(start, end, page_no)`` with ``page_no`` 1, 2, 3 ... of one
window, and retries a failed call with the same ``page_no``. Kuaishou pages with an opaque
cursor instead: "" for the first page, then the ``cursor`` the previous answer returned,
until it says ``"nomore"``. The source keeps, per query ``(start, end)``, the cursor that
opens each page number: page 1 is always "", page ``k + 1`` is what page ``k`` returned, so a
retry of page ``k`` sends the same cursor again and the engine's guarantees (retry, publish,
flush, checkpoint) are untouched.

Declared ``order = "unordered"``: the engine then pages through the platform's cursor rather
than narrowing by time. Kuaishou's cursor is a keyset position (``<time>_<oid>``) in the
update-time order, not an offset, so an order updated while we page (it moves to "now", out
of the window, which ends in the past) leaves the rest of the sequence as it was, and the
next window finds it at its new time. Nothing here depends on how the platform sorts.

An empty page that still hands out a new cursor is followed at once (the engine treats an
empty page with ``has_next`` as an error); a cursor that does not move is a platform fault.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from connectors.errors import TransientError
from connectors.kuaishou.client import NO_MORE, SOURCE, CursorPage, KuaishouClient, order_key, order_updated
from connectors.pull import Page, RawItem

KS_MAX_WINDOW = timedelta(days=7)  # 300004 "SEARCH TIME RANGE EXPAND 7 DAYS"
KS_RESOLUTION = timedelta(milliseconds=1)  # beginTime / endTime / updateTime are ms
_CHAINS_KEPT = 16
_EMPTY_HOPS = 20  # empty pages with a new cursor followed in one call


class KuaishouOrderSource:
    """``open.order.cursor.list`` (by update time) as numbered pages keyed by ``oid``."""

    name = SOURCE
    max_window = KS_MAX_WINDOW
    resolution = KS_RESOLUTION
    order = "unordered"  # page through the platform's cursor (see the module docstring)

    def __init__(self, client: KuaishouClient, *, page_size: int = 100) -> None:
        self.client = client
        self.page_size = page_size
        # (start, end) -> {page_no: the cursor that opens that page}
        self._chains: OrderedDict[tuple[datetime, datetime], dict[int, str]] = OrderedDict()

    def cursors(self, start: datetime, end: datetime) -> dict[int, str]:
        """The known page -> cursor chain of a query (for tests and logs)."""
        return dict(self._chains.get((start, end), {}))

    def _chain(self, start: datetime, end: datetime, *, fresh: bool) -> dict[int, str]:
        key = (start, end)
        chain = self._chains.get(key)
        if chain is None or fresh:
            chain = {1: ""}
            self._chains[key] = chain
        self._chains.move_to_end(key)
        while len(self._chains) > _CHAINS_KEPT:
            self._chains.popitem(last=False)
        return chain

    async def _fetch(self, start: datetime, end: datetime, cursor: str) -> CursorPage:
        """One page from ``cursor``, hopping over empty pages that still point further."""
        for _ in range(_EMPTY_HOPS):
            page = await self.client.cursor_list(start, end, cursor, self.page_size)
            if page.orders or not page.has_next:
                return page
            if page.cursor == cursor:
                raise TransientError(SOURCE, f"empty page and the cursor {cursor!r:.60} did not move")
            cursor = page.cursor
        raise TransientError(SOURCE, f"{_EMPTY_HOPS} empty pages in a row from cursor {cursor!r:.60}")

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        chain = self._chain(start, end, fresh=page_no == 1)
        if page_no not in chain:
            # Not asked in order (the engine does not do that): walk from the last known page.
            known = max(k for k in chain if k < page_no)
            while known < page_no:
                walked = await self._fetch(start, end, chain[known])
                if not walked.has_next:
                    return Page(items=[], has_next=False)
                chain[known + 1] = walked.cursor
                known += 1
        page = await self._fetch(start, end, chain[page_no])
        if page.has_next:
            chain[page_no + 1] = page.cursor
        items = [
            RawItem(key=order_key(order), value=raw, modified=order_updated(order))
            for order, raw in zip(page.orders, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.cursor != NO_MORE)
