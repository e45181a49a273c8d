"""``make run`` / ``ordertwin dev``: the whole pipeline on one machine, driven by a scenario.

One process plays a generated scenario on every platform simulator (``ordertwin simulate
--scenario``), one connector process per source collects it the way it would collect the
real platform, and one worker builds the twin and raises alerts. The scenario has a low
fault rate and one JD outage, so a newcomer sees real alerts appear and resolve.

Demo pacing: production defaults wait 10 minutes before alerting and pull 30 s behind the
platforms; :func:`dev_environment` shortens both (every value can be overridden by setting
the variable before ``make run``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ordertwin.settings import Settings
from ordertwin.topics import SOURCES

# Settings the demo changes unless the user set them (ORDERTWIN_* names).
DEV_DEFAULTS: dict[str, str] = {
    "ORDERTWIN_DIVERGENCE_THRESHOLD_S": "60",  # alerts one minute after an order goes out of step
    "ORDERTWIN_SOURCE_STALE_S": "60",
    "ORDERTWIN_POLL_INTERVAL_S": "1",
    "ORDERTWIN_PULL_SAFETY_LAG_S": "2",  # the simulators index instantly
    "ORDERTWIN_PDD_MIN_SAFETY_LAG_S": "2",
    "ORDERTWIN_PULL_OVERLAP_S": "10",
    "ORDERTWIN_BACKOFF_S": "[1, 3, 9]",
    "ORDERTWIN_PUSH_WATERMARK_INTERVAL_S": "1",
    "ORDERTWIN_PUSH_SLACK_S": "2",
    "ORDERTWIN_PUSH_SILENCE_S": "300",
}
# The channels whose orders the OMS (旺店通 platform_id) and the WMS (奇门 sourcePlatformCode)
# can name. Shopee and Shopify have no documented code in either, so every paid order of
# theirs raises paid_not_in_oms and paid_not_in_wms: true of our mappings, noise in a demo.
DEMO_CHANNELS: tuple[str, ...] = ("taobao", "jd", "pdd", "douyin", "kuaishou")
FIRST_CONNECTOR_METRICS_PORT_OFFSET = 2  # connector i serves /metrics on connector_metrics_port + 2 + i


def dev_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus the demo defaults it does not already set."""
    env = dict(environ)
    for name, value in DEV_DEFAULTS.items():
        env.setdefault(name, value)
    return env


def connector_environments(env: Mapping[str, str], settings: Settings) -> dict[str, dict[str, str]]:
    """One environment per source connector: its own /metrics port and instance name."""
    base = settings.connector_metrics_port
    out: dict[str, dict[str, str]] = {}
    for i, source in enumerate(SOURCES):
        own = dict(env)
        if base > 0:
            own["ORDERTWIN_CONNECTOR_METRICS_PORT"] = str(base + FIRST_CONNECTOR_METRICS_PORT_OFFSET + i)
        own.setdefault("ORDERTWIN_CONNECTOR_INSTANCE", f"dev-{source}")
        out[source] = own
    return out


def current_environment() -> dict[str, str]:
    return dev_environment(os.environ)
