"""Source plugins: each ``connectors/<source>/plugin.py`` declares one ``PLUGIN``.

Adding a source is a package with an HTTP client, a page source (pull) and/or a webhook
verifier, a simulator, and this declaration; the runner and the CLI find it by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from connectors.errors import UnknownSourceError
from connectors.pull import PageSource
from ordertwin.settings import Settings
from ordertwin.topics import SOURCES


class RunningSimulatorLike(Protocol):
    """What every in-process simulator returns from its start function."""

    @property
    def url(self) -> str: ...

    async def close(self) -> None: ...


# start_simulator(settings, *, n_orders, seed, start, end, host, port, **faults) -> running simulator
StartSimulator = Callable[..., Awaitable[Any]]

# start_scenario_simulator(settings, records, *, outages, host, port, clock, target=None) -> running
# simulator. Serves one source's share of a generated scenario (connectors.scenario) in real
# time: ``records`` are that source's ScenarioRecord (``value`` = the native payload bytes,
# ``at`` = its event time), ``outages`` the scenario's Outage list (the simulator keeps only its
# source's). A pull simulator lists a record once ``clock() >= record.at`` (with its native
# modified time = ``at``) and answers the platform's 5xx/error shape during an outage of its
# source. A push simulator POSTs each record, signed, to ``target`` (the receiver URL) at
# ``record.at`` - or at the end of an outage covering it - retrying as the platform does.
StartScenarioSimulator = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class SourcePlugin:
    """What a source offers: how to pull it, how to receive its pushes, how to simulate it."""

    name: str
    mode: str  # "pull", "webhook" or "webhook+pull" (pushes, repaired by a periodic pull)
    doc: str  # one line: the platform API the connector speaks
    page_source: Callable[[aiohttp.ClientSession, Settings], PageSource] | None = None
    start_simulator: StartSimulator | None = None
    webhook: Any = None  # connectors.webhook.WebhookSpec when the source pushes
    start_scenario_simulator: StartScenarioSimulator | None = None  # plays a scenario (make run)
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("pull", "webhook", "webhook+pull"):
            raise ValueError(f"{self.name}: unknown mode {self.mode!r}")
        if self.mode == "webhook" and self.page_source is not None:
            raise ValueError(f"{self.name}: mode webhook has no page_source (use webhook+pull)")
        if "pull" in self.mode and self.page_source is None:
            raise ValueError(f"{self.name}: mode {self.mode} needs a page_source")
        if "webhook" in self.mode and self.webhook is None:
            raise ValueError(f"{self.name}: mode {self.mode} needs a webhook spec")


def plugin(source: str) -> SourcePlugin:
    """The plugin of ``source``; UnknownSourceError lists the sources that have one."""
    if source in SOURCES:
        try:
            module = importlib.import_module(f"connectors.{source}.plugin")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"connectors.{source}", f"connectors.{source}.plugin"):
                raise
        else:
            found: SourcePlugin = module.PLUGIN
            if found.name != source:
                raise UnknownSourceError(f"connectors.{source}.plugin declares {found.name!r}")
            return found
    raise UnknownSourceError(f"no connector for source {source!r}; known: {', '.join(available())}")


def available() -> list[str]:
    """Sources that have a plugin, in catalogue order."""
    out = []
    for source in SOURCES:
        try:
            importlib.import_module(f"connectors.{source}.plugin")
        except ModuleNotFoundError:
            continue
        out.append(source)
    return out


def default_window(settings: Settings, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """Simulated data window: 6 hours before now - 2 x safety lag, unless given."""
    from datetime import UTC, timedelta

    end = end or datetime.now(UTC) - timedelta(seconds=2 * settings.pull_safety_lag_s + 1)
    return (start or end - timedelta(hours=6)), end
