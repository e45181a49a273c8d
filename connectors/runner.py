"""Entry points the CLI calls: run a connector, run a platform simulator.

Everything is built here from the one :class:`Settings` object; nothing connects at import.
Sources are plugins (``connectors/<source>/plugin.py``, see :mod:`connectors.registry`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, start_http_server

from connectors.backoff import Backoff
from connectors.errors import UnknownSourceError
from connectors.metrics import ConnectorMetrics
from connectors.publish import RawPublisher
from connectors.pull import PullConfig, PullEngine, PullSummary
from connectors.registry import SourcePlugin, plugin
from connectors.state import CursorStore
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue

log = logging.getLogger(__name__)


def _check_source(source: str) -> SourcePlugin:
    found = plugin(source)
    if found.page_source is None:
        raise UnknownSourceError(f"source {source!r} has no pull connector (mode {found.mode})")
    return found


@asynccontextmanager
async def open_connector(
    source: str,
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[PullEngine]:
    """A ready :class:`PullEngine` for ``source``; its HTTP session and Kafka clients are
    closed on exit. ``sleep``/``rng`` make backoff waits and jitter injectable."""
    found = _check_source(source)
    assert found.page_source is not None
    metrics = ConnectorMetrics(registry if registry is not None else CollectorRegistry())
    topic = Catalogue.from_settings(settings).raw(source).name
    publisher = RawPublisher(settings, source=source)
    store = CursorStore(settings)
    try:
        async with aiohttp.ClientSession() as http:
            page_source = found.page_source(http, settings)
            yield PullEngine(
                page_source,
                publisher,
                store,
                topic=topic,
                config=PullConfig.from_settings(settings, page_source),
                metrics=metrics,
                backoff=Backoff(settings.backoff_s, rng=rng),
                instance=settings.connector_instance,
                stop=stop,
                sleep=sleep,
            )
    finally:
        publisher.close()
        store.close()


async def run_connector(
    source: str,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    from_start: bool = False,
    registry: CollectorRegistry | None = None,
    until_caught_up: bool = False,
) -> PullSummary | None:
    """Run the ``source`` connector until ``stop`` is set (or, with ``until_caught_up``, until
    it has caught up to now - safety lag, returning what it did). A push-only source (mode
    ``webhook``) serves its receiver, vouching for the source, until ``stop``.

    ``from_start`` ignores the stored cursor and starts at ``settings.pull_start`` (or 24 h
    ago). Serves Prometheus metrics on ``settings.connector_metrics_port`` when > 0.
    A push source (mode ``webhook+pull``) also serves its webhook receiver on
    ``settings.webhook_host``:``settings.<source>_webhook_port`` while the pull runs
    (``until_caught_up`` runs the reconciliation pull alone).
    """
    found = plugin(source)
    if found.page_source is None and until_caught_up:
        raise UnknownSourceError(f"source {source!r} only receives pushes (mode {found.mode}); nothing to catch up")
    registry = registry if registry is not None else CollectorRegistry()
    server = None
    if settings.connector_metrics_port > 0:
        server, _thread = start_http_server(
            settings.connector_metrics_port,
            addr=settings.connector_metrics_host,
            registry=registry,
        )
        log.info(
            "connector metrics on http://%s:%d/metrics",
            settings.connector_metrics_host,
            settings.connector_metrics_port,
        )
    try:
        if found.page_source is None:
            # Push-only source: the receiver publishes the pushes and vouches for the source.
            from connectors.webhook import open_receiver

            async with open_receiver(source, settings, registry=registry, vouch=True):
                await (stop or asyncio.Event()).wait()
            return None
        async with open_connector(source, settings, registry=registry, stop=stop) as engine:
            if until_caught_up:
                summary = await engine.run_once(from_start=from_start)
                log.info(
                    "%s caught up: %d window(s), %d record(s), cursor %s",
                    source,
                    summary.windows,
                    summary.published,
                    summary.cursor.isoformat(),
                )
                return summary
            if "webhook" in found.mode:
                # Push source: serve the receiver while the reconciliation pull repairs missed
                # pushes and writes the watermarks (a receiver cannot know completeness).
                from connectors.webhook import open_receiver

                async with open_receiver(source, settings, registry=registry):
                    await engine.run(from_start=from_start)
                return None
            await engine.run(from_start=from_start)
            return None
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


async def start_simulator(
    source: str,
    settings: Settings,
    *,
    n_orders: int,
    seed: int,
    start: datetime | None = None,
    end: datetime | None = None,
    faults: Any = None,
    host: str | None = None,
    port: int | None = None,
) -> Any:
    """Fill and serve ``source``'s simulator in this process; the caller closes it.

    Default data window: the 6 hours before now - 2 x safety lag, so a connector started
    now sees all of it at once. ``port=0`` binds an ephemeral port (see ``.url``).
    """
    found = plugin(source)
    if found.start_simulator is None:
        raise UnknownSourceError(f"source {source!r} has no simulator")
    kwargs: dict[str, Any] = {
        "n_orders": n_orders,
        "seed": seed,
        "start": start,
        "end": end,
        "host": host,
        "port": port,
    }
    if faults is not None:
        kwargs["faults"] = faults
    return await found.start_simulator(settings, **kwargs)


async def run_simulator(
    source: str,
    settings: Settings,
    *,
    n_orders: int,
    seed: int,
    start: datetime | None = None,
    end: datetime | None = None,
    faults: Any = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve a simulator with ``n_orders`` generated trades on the configured host/port until
    ``stop`` is set (forever when None; cancel the task to end it)."""
    running = await start_simulator(source, settings, n_orders=n_orders, seed=seed, start=start, end=end, faults=faults)
    log.info("%s simulator serving %d trades at %s", source, n_orders, running.url)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await running.close()
