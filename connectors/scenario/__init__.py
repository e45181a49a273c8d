"""A reproducible e-commerce scenario with injected faults, for live tests and demos.

``generate(...)`` plans orders on the sales channels (Taobao/Tmall by default; any of the
seven with ``channels=``) through OMS, WMS, carrier and finance as the raw records each
source's connector would publish (pure: no Kafka, no HTTP), injects faults that must each
raise exactly one divergence alert, and returns the ground truth to compare the alerts
with. ``connectors.feed`` plays a scenario into ``raw.*`` in real time. What each channel
can and cannot carry is explained in :mod:`connectors.scenario.platforms`.
"""

from connectors.scenario.generator import generate
from connectors.scenario.model import (
    CHANNELS,
    FAULT_KINDS,
    FAULT_RULES,
    PROFILES,
    SOURCE_OUTAGE,
    SOURCE_STALE,
    SOURCES,
    STRUCTURAL_RULES,
    InjectedFault,
    Outage,
    Scenario,
    ScenarioRecord,
    scenario_summary,
)

__all__ = [
    "CHANNELS",
    "FAULT_KINDS",
    "FAULT_RULES",
    "PROFILES",
    "SOURCES",
    "SOURCE_OUTAGE",
    "SOURCE_STALE",
    "STRUCTURAL_RULES",
    "InjectedFault",
    "Outage",
    "Scenario",
    "ScenarioRecord",
    "generate",
    "scenario_summary",
]
