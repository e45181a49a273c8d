"""Adapts :class:`PddClient` to the pull engine, paging each window from the LAST page back.

Why backwards: PDD's increment list is ordered by update time, oldest first. An order updated
while we page leaves its place (its ``updated_at`` jumps to "now", beyond the window, which
ends in the past) and every later order moves up one place. Paging forwards, the order that
moves from the top of the next page onto the page just read is never seen: a lost order.
Paging backwards, only orders already read move, one place towards the unread pages: they are
read twice (a duplicate the engine skips), and the unread pages keep every order they had.
PDD documents it: "必须采用倒序的分页方式（从最后一页往回取）才能避免漏单问题".

How it maps onto the engine: the source declares ``order = "unordered"``, so the engine asks
for logical pages 1, 2, 3 ... of a window (no time-keyset narrowing) and retries a failed
call with the same logical page. Logical page 1 first asks platform page 1 for
``total_count`` (its records are dropped: they are read again at the end), then answers
with the last platform page ``L = ceil(total / page_size)``; logical page ``k`` is platform
page ``L - k + 1``; ``has_next`` is false on platform page 1. If the tail empties meanwhile
(orders left the window), the source steps down to the next non-empty page itself.

The window also ends >= ``min_safety_lag_s`` (default 180 s) before now: PDD's "结束时间不小于
拼多多系统时间前3min" (the engine reads it through ``PullConfig.from_settings``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from connectors.pdd.client import SOURCE, PddClient, order_key, order_updated
from connectors.pull import Page, RawItem

PDD_MAX_WINDOW = timedelta(minutes=30)  # "end_updated_at - start_updated_at <= 30min"
PDD_RESOLUTION = timedelta(seconds=1)  # unix seconds
PDD_MIN_SAFETY_LAG_S = 180.0
_PLANS_KEPT = 16  # queries whose page plan is remembered (the engine pages one at a time)
PROBE_REUSE_S = 60.0  # a probe's total_count is trusted this long for retries of page 1


class PddOrderSource:
    """``pdd.order.number.list.increment.get`` as backward pages of raw orders keyed by ``order_sn``."""

    name = SOURCE
    max_window = PDD_MAX_WINDOW
    resolution = PDD_RESOLUTION
    order = "unordered"  # pages are served last-first: the engine must page by number, not by time

    def __init__(
        self,
        client: PddClient,
        *,
        page_size: int = 100,
        min_safety_lag_s: float = PDD_MIN_SAFETY_LAG_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.min_safety_lag_s = min_safety_lag_s
        self._clock = clock
        # (start, end) -> {logical page: platform page}, and when its total_count was probed
        self._plans: OrderedDict[tuple[datetime, datetime], dict[int, int]] = OrderedDict()
        self._probed: dict[tuple[datetime, datetime], float] = {}

    def platform_pages(self, start: datetime, end: datetime) -> dict[int, int]:
        """The logical -> platform page plan of a query (for tests and logs)."""
        return dict(self._plans.get((start, end), {}))

    async def _plan(self, start: datetime, end: datetime) -> tuple[dict[int, int], Page | None]:
        """Probe page 1 for ``total_count``; a single-page answer is returned as it is."""
        probe = await self.client.increment_get(start, end, 1, self.page_size)
        last = max(1, math.ceil(probe.total / self.page_size))
        plan = {1: last}
        self._plans[(start, end)] = plan
        self._probed[(start, end)] = self._clock()
        self._plans.move_to_end((start, end))
        while len(self._plans) > _PLANS_KEPT:
            dropped, _ = self._plans.popitem(last=False)
            self._probed.pop(dropped, None)
        if last == 1:
            return plan, self._page(probe.orders, probe.raw, has_next=False)
        return plan, None

    def _page(self, orders: list[object], raw: list[bytes], *, has_next: bool) -> Page:
        items = [
            RawItem(key=order_key(order), value=value, modified=order_updated(order))
            for order, value in zip(orders, raw, strict=True)
        ]
        return Page(items=items, has_next=has_next)

    async def fetch_page(self, start: datetime, end: datetime, page_no: int) -> Page:
        plan = self._plans.get((start, end))
        # A retry of logical page 1 reuses a fresh probe whose last page was not served yet
        # (2 not in plan), so a flaky call does not cost the probe again; any other page 1 is a
        # new pass over the window and probes afresh.
        reuse = (
            plan is not None and 2 not in plan and self._clock() - self._probed.get((start, end), 0.0) < PROBE_REUSE_S
        )
        if plan is None or (page_no == 1 and not reuse):
            plan, single = await self._plan(start, end)
            if single is not None and page_no == 1:
                return single
        platform = plan.get(page_no)
        if platform is None:  # not planned page by page (should not happen): count from the end
            platform = max(1, plan[1] - (page_no - 1))
        while True:
            got = await self.client.increment_get(start, end, platform, self.page_size)
            if got.orders or platform == 1:
                break
            platform -= 1  # the tail emptied while we paged: orders left the window
        plan[page_no] = platform
        if platform > 1:
            plan[page_no + 1] = platform - 1
        return self._page(got.orders, got.raw, has_next=platform > 1)
