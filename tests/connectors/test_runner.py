"""Runner entry points: clear errors for unknown sources (no broker needed)."""

from __future__ import annotations

import pytest

from connectors.errors import UnknownSourceError
from connectors.registry import available
from connectors.runner import run_connector, run_simulator
from ordertwin.errors import ConfigError
from ordertwin.settings import Settings


async def test_unknown_connector_source_lists_the_known_ones() -> None:
    assert "taobao" in available()
    with pytest.raises(UnknownSourceError, match=r"'amazon'.*known: .*taobao") as info:
        await run_connector("amazon", Settings())
    assert isinstance(info.value, ConfigError)


async def test_unknown_simulator_source() -> None:
    with pytest.raises(UnknownSourceError, match="known: taobao"):
        await run_simulator("amazon", Settings(), n_orders=1, seed=1)  # not a source (jd has a simulator now)
