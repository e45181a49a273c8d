"""Expectations as data: when the twin shows X, system S must show Y within a threshold.

Each rule says when its expectation starts to apply (an event time, from the twin's
milestones, so it is order-insensitive) and whether it is met. ``divergence`` turns
unmet rules into episodes and alerts; nothing here knows about Kafka or clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.orders.twin import EXITS, RANK, Twin, address_of

FORWARD_FROM_PAID = ("PAID", "ALLOCATED", "OUTBOUND", "IN_TRANSIT", "DELIVERED", "COMPLETED")
PICKED_UP = frozenset({"IN_TRANSIT", "DELIVERED", "COMPLETED", "RETURNED"})


@dataclass(frozen=True)
class Rule:
    """One expectation. ``applies`` -> epoch ms it started to apply, or None."""

    id: str
    subsystem: str  # CHANNEL, OMS, WMS, CARRIER, FINANCE: who must act
    severity: str  # INFO, WARNING, CRITICAL
    expected: str  # what the subsystem should show, for humans
    applies: Callable[[Twin], int | None]
    met: Callable[[Twin], bool]
    threshold_s: float | None = None  # None = settings default
    # Event time at which the expectation was first satisfied (from milestones), when that can
    # be known from history: lets a late-processed fact still reveal a divergence that healed.
    met_at: Callable[[Twin], int | None] | None = None
    # For that history: when the expectation first applied and when it stopped applying
    # (e.g. the channel cancelled), both from milestones, regardless of the current state.
    history_start: Callable[[Twin], int | None] | None = None
    stop_at: Callable[[Twin], int | None] | None = None


def _view(twin: Twin, system: str) -> dict[str, Any] | None:
    view: dict[str, Any] | None = twin["systems"].get(system)
    return view


def _earliest(twin: Twin, keys: Iterable[str]) -> int | None:
    times = [twin["milestones"][k] for k in keys if k in twin["milestones"]]
    return min(times) if times else None


def _channel_exit(twin: Twin) -> bool:
    channel = _view(twin, "CHANNEL")
    return channel is not None and channel["status"] in EXITS


def paid_since(twin: Twin) -> int | None:
    """When the channel first said the order was paid (or beyond), unless it has exited."""
    if _channel_exit(twin):
        return None
    return _earliest(twin, (f"CHANNEL:{s}" for s in FORWARD_FROM_PAID))


def outbound_since(twin: Twin) -> int | None:
    return _earliest(twin, ["WMS:OUTBOUND"])


def cancelled_before_outbound_since(twin: Twin) -> int | None:
    """Channel cancelled/refunded, the WMS knows the order, and it had not shipped before."""
    if not _channel_exit(twin) or _view(twin, "WMS") is None:
        return None
    cancelled = _earliest(twin, ["CHANNEL:CANCELLED", "CHANNEL:REFUNDED"])
    shipped = _earliest(twin, ["WMS:OUTBOUND"])
    if cancelled is None or (shipped is not None and shipped < cancelled):
        return None  # refund after shipping is a return, not an interception
    return cancelled


def address_changed_since(twin: Twin) -> int | None:
    """The channel changed the address while the WMS knows the order (last addresses compared)."""
    channel_fp, wms_fp = address_of(twin, "CHANNEL"), address_of(twin, "WMS")
    if channel_fp is None or wms_fp is None or _channel_exit(twin):
        return None
    addresses = [k for k in twin["milestones"] if k.startswith("CHANNEL:addr:")]
    if len(addresses) < 2:
        return None  # never changed: fingerprints of one address need no comparison
    since = twin["milestones"].get(f"CHANNEL:addr:{channel_fp}")
    wms_seen = _earliest(twin, [k for k in twin["milestones"] if k.startswith("WMS:")])
    if since is None or wms_seen is None:
        return None
    return max(int(since), wms_seen)


def finance_amount_since(twin: Twin) -> int | None:
    finance = _view(twin, "FINANCE")
    if finance is None or finance["status"] != "PAID" or finance.get("amount_minor") is None:
        return None
    if twin.get("amount_minor") is None or _channel_exit(twin):
        return None
    return int(finance["event_time"].timestamp() * 1000)


def _tracking_on_channel(twin: Twin) -> bool:
    channel = _view(twin, "CHANNEL")
    if channel is None:
        return False
    if channel["status"] not in EXITS and RANK.get(channel["status"], -1) < RANK["OUTBOUND"]:
        return False
    shipped = [v.get("tracking_no") for v in (_view(twin, "WMS"), _view(twin, "CARRIER")) if v]
    known = {t for t in shipped if t}
    return not channel.get("tracking_no") or not known or channel["tracking_no"] in known


def _first(*keys: str) -> Callable[[Twin], int | None]:
    return lambda t: _earliest(t, keys)


def _first_of(system: str) -> Callable[[Twin], int | None]:
    return lambda t: _earliest(t, [k for k in t["milestones"] if k.startswith(f"{system}:")])


def _wms_has_channel_address(twin: Twin) -> int | None:
    fp = address_of(twin, "CHANNEL")
    value = twin["milestones"].get(f"WMS:addr:{fp}") if fp else None
    return int(value) if value is not None else None


_EXIT_AT = _first("CHANNEL:CANCELLED", "CHANNEL:REFUNDED", "CHANNEL:RETURNED")
_PAID_AT = _first(*(f"CHANNEL:{s}" for s in FORWARD_FROM_PAID))
_OUTBOUND_AT = _first("WMS:OUTBOUND")


def _same(twin: Twin, a: str, b: str, fld: str) -> bool:
    va, vb = _view(twin, a), _view(twin, b)
    return va is not None and vb is not None and va.get(fld) == vb.get(fld)


RULES: tuple[Rule, ...] = (
    Rule(
        "paid_not_in_oms",
        "OMS",
        "WARNING",
        "the OMS/ERP knows the paid order",
        applies=paid_since,
        met=lambda t: _view(t, "OMS") is not None,
        met_at=_first_of("OMS"),
        history_start=_PAID_AT,
        stop_at=_EXIT_AT,
    ),
    Rule(
        "paid_not_in_wms",
        "WMS",
        "CRITICAL",
        "the warehouse received the paid order",
        applies=paid_since,
        met=lambda t: _view(t, "WMS") is not None,
        met_at=_first_of("WMS"),
        history_start=_PAID_AT,
        stop_at=_EXIT_AT,
    ),
    Rule(
        "paid_not_in_finance",
        "FINANCE",
        "WARNING",
        "finance recorded the payment",
        applies=paid_since,
        met=lambda t: (f := _view(t, "FINANCE")) is not None and f["status"] in ("PAID", "REFUNDED"),
        met_at=_first("FINANCE:PAID", "FINANCE:REFUNDED"),
        history_start=_PAID_AT,
        stop_at=_EXIT_AT,
    ),
    Rule(
        "outbound_not_picked_up",
        "CARRIER",
        "WARNING",
        "the carrier picked up the parcel",
        applies=outbound_since,
        met=lambda t: (c := _view(t, "CARRIER")) is not None and c["status"] in PICKED_UP,
        met_at=_first(*(f"CARRIER:{s}" for s in sorted(PICKED_UP))),
    ),
    Rule(
        "tracking_not_on_channel",
        "CHANNEL",
        "WARNING",
        "the channel shows the order shipped with our tracking number",
        applies=lambda t: None if _channel_exit(t) else outbound_since(t),
        met=_tracking_on_channel,
        met_at=_first(*(f"CHANNEL:{s}" for s in FORWARD_FROM_PAID[2:])),
        history_start=_OUTBOUND_AT,
        stop_at=_EXIT_AT,
    ),
    Rule(
        "cancel_not_in_wms",
        "WMS",
        "CRITICAL",
        "the warehouse cancelled/intercepted the cancelled order",
        applies=cancelled_before_outbound_since,
        met=lambda t: (w := _view(t, "WMS")) is not None and w["status"] in ("CANCELLED", "RETURNED"),
        met_at=_first("WMS:CANCELLED", "WMS:RETURNED"),
    ),
    Rule(
        "address_not_in_wms",
        "WMS",
        "CRITICAL",
        "the warehouse has the channel's current address",
        applies=address_changed_since,
        met=lambda t: address_of(t, "WMS") == address_of(t, "CHANNEL"),
        met_at=_wms_has_channel_address,
    ),
    Rule(
        "finance_amount_mismatch",
        "FINANCE",
        "WARNING",
        "finance amount equals the channel amount",
        applies=finance_amount_since,
        met=lambda t: (f := _view(t, "FINANCE")) is not None and f.get("amount_minor") == t.get("amount_minor"),
    ),
)

RULES_BY_ID: Mapping[str, Rule] = {r.id: r for r in RULES}


def observed(twin: Twin, subsystem: str) -> str:
    """What the subsystem currently shows, for the alert text."""
    view = _view(twin, subsystem)
    if view is None:
        return "nothing (never reported this order)"
    extra = []
    for key in ("amount_minor", "tracking_no", "warehouse"):
        if view.get(key) is not None:
            extra.append(f"{key}={view[key]}")
    return f"{view['status']} ({view['raw_status']})" + (f" {' '.join(extra)}" if extra else "")
