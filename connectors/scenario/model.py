"""The values a generated scenario is made of: raw records, injected faults, outages.

Pure data: no Kafka, no HTTP, no clock. ``connectors.feed`` plays a :class:`Scenario`
into ``raw.*`` in real time; the live divergence tests compare the alerts a worker raises
with :meth:`Scenario.ground_truth`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ordertwin.topics import CHANNELS as CHANNELS  # the channels a scenario can place orders on

# The sources of a Taobao-only scenario (the default); a scenario's own are Scenario.sources.
SOURCES: tuple[str, ...] = ("taobao", "oms", "wms", "carrier", "finance")
SUBSYSTEMS: tuple[str, ...] = ("oms", "wms", "carrier", "finance")

# Fault kind -> the alert rule (streams.orders.rules) it must raise, exactly once.
FAULT_RULES: dict[str, str] = {
    "wms_never_receives": "paid_not_in_wms",
    "carrier_never_picks_up": "outbound_not_picked_up",
    "cancel_not_propagated_to_wms": "cancel_not_in_wms",
    "address_change_not_propagated": "address_not_in_wms",
    "finance_amount_mismatch": "finance_amount_mismatch",
    "tracking_not_uploaded_to_channel": "tracking_not_on_channel",
}
FAULT_KINDS: tuple[str, ...] = tuple(FAULT_RULES)
SOURCE_OUTAGE = "source_outage"
SOURCE_STALE = "SOURCE_STALE"

# Alerts no fault causes but the channel itself: the OMS (旺店通) and the WMS (Qimen) cannot
# name a Shopee or Shopify order, so each such paid order raises these (kind -> rule); see
# connectors.scenario.platforms. Listed in the ground truth, as the twin must raise them.
STRUCTURAL_RULES: dict[str, str] = {
    "oms_cannot_name_channel": "paid_not_in_oms",
    "wms_cannot_name_channel": "paid_not_in_wms",
}

# Order profiles without a fault (a faulty order's profile is its fault kind).
PROFILES: tuple[str, ...] = ("shipped", "address_change", "cancelled", "unpaid")


@dataclass(frozen=True)
class ScenarioRecord:
    """One raw platform record, as its connector would publish it."""

    at: datetime  # tz-aware UTC, whole seconds: the record's event time and when its source shows it
    source: str  # a channel ("taobao", "jd", ...) or "oms" | "wms" | "carrier" | "finance"
    key: bytes  # the platform id the connector uses as Kafka key
    value: bytes  # the raw platform payload (JSON bytes) the source's normaliser accepts
    order_id: str  # canonical "<channel>:<platform order id>"


@dataclass(frozen=True)
class InjectedFault:
    """A fault put into the scenario, and the one alert it must cause."""

    kind: str  # one of FAULT_KINDS, SOURCE_OUTAGE, or of STRUCTURAL_RULES
    order_id: str | None  # None for source outages
    rule: str  # rule id of streams.orders.rules, or SOURCE_STALE
    subject: str  # the alert's subject: order id, or the source name for SOURCE_STALE
    visible_at: datetime  # event time the expectation became unmet (= the twin's episode start)
    heals_at: datetime | None  # when the fault is repaired (the alert must RESOLVE), or None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "order_id": self.order_id,
            "rule": self.rule,
            "subject": self.subject,
            "visible_at": self.visible_at.isoformat(),
            "heals_at": self.heals_at.isoformat() if self.heals_at is not None else None,
        }


@dataclass(frozen=True)
class Outage:
    """The source publishes nothing, and vouches for nothing, in ``[start, end)``; its records
    of that period appear at ``end``, keeping their event times."""

    source: str
    start: datetime
    end: datetime

    def covers(self, source: str, at: datetime) -> bool:
        return source == self.source and self.start <= at < self.end


@dataclass
class Scenario:
    """A generated scenario: records sorted by ``at`` (then a stable per-order order)."""

    seed: int
    records: list[ScenarioRecord]
    faults: list[InjectedFault]
    outages: list[Outage]
    orders: list[str]  # every order id, in creation order
    profiles: dict[str, str] = field(default_factory=dict)  # order id -> profile or fault kind
    threshold: timedelta | None = None  # the divergence threshold the scenario was built for
    channels: tuple[str, ...] = ("taobao",)  # the channels orders were placed on

    @property
    def sources(self) -> tuple[str, ...]:
        """The scenario's sources: its channels, then the subsystems."""
        return (*self.channels, *SUBSYSTEMS)

    def ground_truth(self) -> list[dict[str, Any]]:
        """The expected alerts, JSON-able: one entry per injected fault."""
        return [f.to_json() for f in self.faults]

    def write_ground_truth(self, path: str | os.PathLike[str]) -> None:
        text = json.dumps(self.ground_truth(), ensure_ascii=False, indent=2) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    def publish_at(self, record: ScenarioRecord) -> datetime:
        """When the record's source shows it: its event time, or the end of an outage of its
        source covering that time (back-to-back outages chain)."""
        at = record.at
        moved = True
        while moved:
            moved = False
            for outage in self.outages:
                if outage.covers(record.source, at):
                    at, moved = outage.end, True
        return at

    def in_publication_order(self) -> list[ScenarioRecord]:
        """Records in the order their sources show them (publish time, then event order)."""
        order = sorted(range(len(self.records)), key=lambda i: (self.publish_at(self.records[i]), i))
        return [self.records[i] for i in order]


def scenario_summary(scenario: Scenario) -> dict[str, Any]:
    """Counts for a CLI or a log line: orders, records per source, faults per kind."""
    per_source = Counter(r.source for r in scenario.records)
    per_channel = Counter(order.split(":", 1)[0] for order in scenario.orders)
    per_kind = Counter(f.kind for f in scenario.faults)
    healed = Counter(f.kind for f in scenario.faults if f.heals_at is not None)
    profiles = Counter(scenario.profiles.values())
    return {
        "seed": scenario.seed,
        "orders": len(scenario.orders),
        "orders_per_channel": {c: per_channel.get(c, 0) for c in scenario.channels},
        "orders_per_profile": dict(sorted(profiles.items())),
        "records": len(scenario.records),
        "records_per_source": {s: per_source.get(s, 0) for s in scenario.sources},
        "faults": len(scenario.faults),
        "faults_per_kind": dict(sorted(per_kind.items())),
        "healed_per_kind": dict(sorted(healed.items())),
        "outages": [
            {"source": o.source, "start": o.start.isoformat(), "end": o.end.isoformat()} for o in scenario.outages
        ],
        "first_at": scenario.records[0].at.isoformat() if scenario.records else None,
        "last_publish_at": max(scenario.publish_at(r) for r in scenario.records).isoformat()
        if scenario.records
        else None,
    }
