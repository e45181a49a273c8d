"""A reproducible e-commerce scenario with injected faults, for live tests and demos.

``generate(...)`` plans Taobao/Tmall orders through OMS, WMS, carrier and finance as the raw
records each source's connector would publish (pure: no Kafka, no HTTP), injects faults that
must each raise exactly one divergence alert, and returns the ground truth to compare the
alerts with. ``connectors.feed`` plays a scenario into ``raw.*`` in real time.
"""

from connectors.scenario.generator import generate
from connectors.scenario.model import (
    FAULT_KINDS,
    FAULT_RULES,
    PROFILES,
    SOURCE_OUTAGE,
    SOURCE_STALE,
    SOURCES,
    InjectedFault,
    Outage,
    Scenario,
    ScenarioRecord,
    scenario_summary,
)

__all__ = [
    "FAULT_KINDS",
    "FAULT_RULES",
    "PROFILES",
    "SOURCES",
    "SOURCE_OUTAGE",
    "SOURCE_STALE",
    "InjectedFault",
    "Outage",
    "Scenario",
    "ScenarioRecord",
    "generate",
    "scenario_summary",
]
