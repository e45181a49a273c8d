"""Pure twin transitions: ``apply(twin, event) -> (twin, changed)``; no Kafka here.

Each system's view keeps only its latest fact, ordered by ``(event_time, event_id)``,
so applying facts is idempotent and order-insensitive: a duplicate or an older fact
leaves the view unchanged, and any arrival order ends in the same views. The canonical
state is a function of the views alone, hence equally order-insensitive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Forward lifecycle, in order. Exits are handled separately.
LIFECYCLE: tuple[str, ...] = (
    "PENDING_PAYMENT",
    "PAID",
    "ALLOCATED",
    "OUTBOUND",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
)
RANK: dict[str, int] = {s: i for i, s in enumerate(LIFECYCLE)}
EXITS: frozenset[str] = frozenset({"CANCELLED", "REFUNDED", "RETURNED"})

VIEW_FIELDS = ("amount_minor", "address_fp", "lines_fp", "warehouse", "carrier", "tracking_no")

Twin = dict[str, Any]


def _order_key(view: dict[str, Any]) -> tuple[datetime, str]:
    return (view["event_time"], view["event_id"])


def derive_state(systems: dict[str, dict[str, Any]]) -> str:
    """Canonical state from the systems' latest views.

    The channel owns cancellation and refund: its exit wins. A return is confirmed by the
    warehouse (WMS RETURNED) after a channel refund. Otherwise the furthest point any
    system has reached on the forward lifecycle (a subsystem's own cancel, such as a WMS
    interception, does not cancel the order).
    """
    channel = systems.get("CHANNEL")
    if channel is not None and channel["status"] in EXITS:
        wms = systems.get("WMS")
        if channel["status"] == "REFUNDED" and wms is not None and wms["status"] == "RETURNED":
            return "RETURNED"
        return str(channel["status"])
    best = -1
    for view in systems.values():
        best = max(best, RANK.get(view["status"], -1))
    return LIFECYCLE[best] if best >= 0 else "PENDING_PAYMENT"


def apply(twin: Twin | None, event: dict[str, Any]) -> tuple[Twin, bool]:
    """Fold one OrderEvent into the twin. Returns the new twin and whether it changed."""
    system = event["system"]
    view = {
        "source": event["source"],
        "status": event["status"],
        "raw_status": event["raw_status"],
        "partial": event.get("partial", False),
        "event_time": event["event_time"],
        "event_id": event["event_id"],
        **{k: event.get(k) for k in VIEW_FIELDS},
    }
    if twin is None:
        twin = {
            "order_id": event["order_id"],
            "channel": event["channel"],
            "state": "PENDING_PAYMENT",
            "amount_minor": None,
            "currency": None,
            "lines": [],
            "details_key": "",
            "systems": {},
            "milestones": {},
            "addresses": {},
            "closed": [],
            "episodes": [],
            "created_at": event["event_time"],
            "updated_at": event["event_time"],
            "version": 0,
        }
    details_key = ""
    if system == "CHANNEL" and event.get("lines"):
        details_key = f"{int(event['event_time'].timestamp() * 1000):015d}|{event['event_id']}"
    details_newer = details_key > twin["details_key"]
    milestones = _with_milestones(twin["milestones"], event)
    addresses = _with_address(twin.get("addresses", {}), event)
    created = min(twin["created_at"], event["event_time"])
    updated = max(twin["updated_at"], event["event_time"])
    current = twin["systems"].get(system)
    view_is_newer = current is None or _order_key(view) > _order_key(current)
    unchanged_times = created == twin["created_at"] and updated == twin["updated_at"]
    same_facts = milestones is twin["milestones"] and addresses is twin.get("addresses", {})
    if not (view_is_newer or details_newer) and unchanged_times and same_facts:
        return twin, False  # duplicate or older fact: nothing moves
    new = dict(twin)
    new["milestones"] = milestones
    new["addresses"] = addresses
    new["created_at"] = created
    new["updated_at"] = updated
    if view_is_newer:
        new["systems"] = {**twin["systems"], system: view}
        new["state"] = derive_state(new["systems"])
    if details_newer:
        new["details_key"] = details_key
        new["lines"] = list(event["lines"])
        new["amount_minor"] = event.get("amount_minor")
        new["currency"] = event.get("currency")
    new["version"] = twin["version"] + 1
    return new, True


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _with_milestones(current: dict[str, int], event: dict[str, Any]) -> dict[str, int]:
    """Earliest time each fact was reported (min per key: commutative and idempotent).

    Returns ``current`` itself when nothing changed, so callers can test identity.
    """
    at = epoch_ms(event["event_time"])
    keys = [f"{event['system']}:{event['status']}"]
    if event.get("address_fp"):
        keys.append(f"{event['system']}:addr:{event['address_fp']}")
    updated = None
    for key in keys:
        if key not in current or at < current[key]:
            updated = dict(current) if updated is None else updated
            updated[key] = at
    return current if updated is None else updated


def _with_address(current: dict[str, str], event: dict[str, Any]) -> dict[str, str]:
    """Last address each system reported (LWW by event time, then event id); ``current`` if unchanged."""
    fp = event.get("address_fp")
    if not fp:
        return current
    candidate = f"{epoch_ms(event['event_time']):015d}|{event['event_id']}|{fp}"
    if candidate <= current.get(event["system"], ""):
        return current
    return {**current, event["system"]: candidate}


def address_of(twin: Twin, system: str) -> str | None:
    """The last address fingerprint ``system`` reported, if any."""
    value = twin.get("addresses", {}).get(system)
    return value.rsplit("|", 1)[1] if value else None


def to_json(twin: Twin) -> dict[str, Any]:
    """JSON-friendly copy (ISO times) for the HTTP API."""

    def conv(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        if isinstance(value, list):
            return [conv(v) for v in value]
        return value

    out: dict[str, Any] = conv(twin)
    return out
