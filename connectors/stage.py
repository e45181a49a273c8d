"""Stage a generated scenario on the platform simulators, for the real connectors to collect.

Where :mod:`connectors.feed` writes a scenario straight into ``raw.*`` (the divergence tests
isolate the twin that way), the stage plays it the way production sees it: every source's
simulator serves (pull) or pushes (webhook) its share of the scenario in real time, and the
real connectors - signing, paging, cursors, receivers, backoff - bring it to Kafka. ``make
run`` (``ordertwin dev``) and the end-to-end dev-stack test use it.

Each source plugin provides ``start_scenario_simulator`` (contract in
:mod:`connectors.registry`); a push simulator is aimed at the receiver URL of its source
(``settings.webhook_host``, ``settings.<source>_webhook_port`` and the spec's route).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from connectors.errors import UnknownSourceError
from connectors.registry import plugin
from connectors.scenario import FAULT_KINDS, Scenario, ScenarioRecord, generate
from ordertwin.dev import DEMO_CHANNELS
from ordertwin.settings import Settings
from ordertwin.topics import SOURCES

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def records_by_source(scenario: Scenario) -> dict[str, list[ScenarioRecord]]:
    """The scenario's records per source, each list in event-time order."""
    out: dict[str, list[ScenarioRecord]] = defaultdict(list)
    for record in scenario.records:
        out[record.source].append(record)
    return {source: out[source] for source in SOURCES if source in out}


async def receiver_url(source: str, settings: Settings) -> str:
    """Where ``source``'s webhook receiver listens (what its simulator pushes to)."""
    from connectors.webhook import webhook_spec

    found = plugin(source)
    port = getattr(settings, f"{source}_webhook_port", None)
    if found.webhook is None or not isinstance(port, int):
        raise UnknownSourceError(f"source {source!r} does not push")
    async with aiohttp.ClientSession() as http:
        spec = webhook_spec(source, found.webhook, settings, http)
    return f"http://{settings.webhook_host}:{port}{spec.route}"


@dataclass
class Stage:
    """The running scenario simulators; :meth:`close` stops them all."""

    scenario: Scenario
    simulators: dict[str, Any] = field(default_factory=dict)

    def urls(self) -> dict[str, str]:
        return {source: str(sim.url) for source, sim in self.simulators.items()}

    async def close(self) -> None:
        for source, sim in list(self.simulators.items()):
            try:
                await sim.close()
            except Exception:  # keep closing the others
                log.exception("closing the %s scenario simulator failed", source)
        self.simulators.clear()


def missing_hooks(sources: Sequence[str]) -> list[str]:
    """Sources that cannot play a scenario (no ``start_scenario_simulator``)."""
    return [s for s in sources if plugin(s).start_scenario_simulator is None]


async def start_stage(
    settings: Settings,
    scenario: Scenario,
    *,
    clock: Callable[[], datetime] = utc_now,
    sources: Sequence[str] | None = None,
) -> Stage:
    """Start a scenario simulator for every source in ``sources`` (default: those with
    records in ``scenario``); a source without records gets an empty simulator, so its
    connector has a platform to talk to."""
    per_source = records_by_source(scenario)
    wanted = list(sources) if sources is not None else list(per_source)
    lacking = missing_hooks(wanted)
    if lacking:
        raise UnknownSourceError(f"no scenario simulator for: {', '.join(lacking)}")
    stage = Stage(scenario)
    try:
        for source in wanted:
            records = per_source.get(source, [])
            found = plugin(source)
            assert found.start_scenario_simulator is not None
            target = await receiver_url(source, settings) if "webhook" in found.mode else None
            stage.simulators[source] = await found.start_scenario_simulator(
                settings, records, outages=list(scenario.outages), clock=clock, target=target
            )
            log.info("%s scenario simulator: %d record(s) at %s", source, len(records), stage.simulators[source].url)
    except BaseException:
        await stage.close()
        raise
    return stage


def demo_scenario(
    *,
    seed: int,
    n_orders: int,
    span: timedelta,
    threshold: timedelta,
    fault_rate: float,
    start: datetime,
    channels: Sequence[str] = DEMO_CHANNELS,
    outage: tuple[str, timedelta, timedelta] | None = None,
    per_kind: int = 0,
) -> Scenario:
    """The ``make run`` scenario: orders on every channel, a low fault rate, one outage
    (``per_kind`` adds exactly that many faults of every kind, for tests)."""
    kwargs: dict[str, Any] = {}
    if per_kind:
        kwargs["fault_counts"] = {kind: per_kind for kind in FAULT_KINDS}
    if tuple(channels) != ("taobao",):
        kwargs["channels"] = tuple(channels)
    return generate(
        seed=seed,
        n_orders=n_orders,
        start=start,
        span=span,
        threshold=threshold,
        fault_rate=fault_rate,
        outages=[outage] if outage else [],
        **kwargs,
    )
