"""Adapts :class:`FinanceClient` to the generic pull engine (:class:`connectors.pull.PageSource`).

Windows are by ``posted_at``. The ledger's postings are immutable (a correction is a new
posting with its own voucher entry), so a posting is published once per window that sees it
and never changes; the engine's overlap re-reads ``[cursor - overlap, cursor]`` each window, so
a posting whose ``posted_at`` equals the cursor, or one committed a little late but dated
inside a window already pulled (within the overlap), is still found.

Bounds: the API's window is ``[posted_from, posted_to)``. The source declares the start
inclusive and the end exclusive, so the engine asks ``[start, end + 1 s)`` for a closed
window ``[start, end]``: a posting at exactly the window's end is in that window.

Paging: the engine asks ``fetch_page(start, end, page_no)`` with ``page_no`` 1, 2, ... of one
query and retries a failed call with the same ``page_no``; the API pages with an opaque keyset
``page_token``. The source keeps, per query, the token that opens each page number (page 1:
none; page ``k + 1``: what page ``k`` returned), so a retry sends the same token again.
Declared ``order = "unordered"`` so the engine pages through the API's token rather than
narrowing the window by time: the token is a keyset position in ``(posted_at, voucher_no,
entry_no)`` order, which cannot shift under postings booked while we page (the same design
as :mod:`connectors.kuaishou.source`).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from connectors.errors import TransientError
from connectors.finance.client import (
    DEFAULT_PAGE_SIZE,
    MAX_WINDOW,
    SOURCE,
    FinanceClient,
    PostingPage,
    posting_key,
    posting_time,
)
from connectors.pull import Page, RawItem

RESOLUTION = timedelta(seconds=1)  # posted_at and the query bounds are whole seconds
_CHAINS_KEPT = 16


class FinancePostingSource:
    """``GET /v1/postings`` by ``posted_at`` as numbered pages keyed by ``voucher_no/entry_no``."""

    name = SOURCE
    max_window = MAX_WINDOW
    resolution = RESOLUTION
    order = "unordered"  # page through the API's keyset token (see the module docstring)
    start_inclusive = True  # posted_from <= posted_at
    end_inclusive = False  # posted_at < posted_to

    def __init__(self, client: FinanceClient, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.client = client
        self.page_size = page_size
        # (start, end) -> {page_no: the token that opens that page (None for page 1)}
        self._chains: OrderedDict[tuple[datetime, datetime], dict[int, str | None]] = OrderedDict()

    def tokens(self, start: datetime, end: datetime) -> dict[int, str | None]:
        """The known page -> token chain of a query (for tests and logs)."""
        return dict(self._chains.get((start, end), {}))

    def _chain(self, start: datetime, end: datetime, *, fresh: bool) -> dict[int, str | None]:
        key = (start, end)
        chain = self._chains.get(key)
        if chain is None or fresh:
            chain = {1: None}
            self._chains[key] = chain
        self._chains.move_to_end(key)
        while len(self._chains) > _CHAINS_KEPT:
            self._chains.popitem(last=False)
        return chain

    async def _fetch(self, start: datetime, end: datetime, token: str | None) -> PostingPage:
        page = await self.client.postings(start, end, page_size=self.page_size, page_token=token)
        if page.next_page_token is not None and page.next_page_token == token:
            raise TransientError(SOURCE, f"page token {token!r:.60} did not move")
        return page

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        chain = self._chain(start, end, fresh=page_no == 1)
        if page_no not in chain:
            # Not asked in order (the engine does not do that): walk from the last known page.
            known = max(k for k in chain if k < page_no)
            while known < page_no:
                walked = await self._fetch(start, end, chain[known])
                if not walked.has_next:
                    return Page(items=[], has_next=False)
                chain[known + 1] = walked.next_page_token
                known += 1
        page = await self._fetch(start, end, chain[page_no])
        if page.has_next:
            chain[page_no + 1] = page.next_page_token
        items = [
            RawItem(key=posting_key(posting), value=raw, modified=posting_time(posting))
            for posting, raw in zip(page.postings, page.raw, strict=True)
        ]
        return Page(items=items, has_next=page.has_next)
