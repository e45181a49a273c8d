"""SKU alerts as episodes, pure: OVERSELL, LOW_STOCK and STOCK_DIVERGENCE per warehouse.

Same lifecycle and ids as the order twin's (``streams.orders.divergence``): an episode
opens when its condition starts to hold (event time), is RAISED once when the WMS
watermark passes ``started + threshold`` and it still holds, and RESOLVED once when it
stops holding. ``alert_id = hash(rule, subject, started)`` so a retried emit repeats it.
Gating on the WMS watermark means "don't blame what you haven't heard": an oversell or a
ledger gap is only alerted once the WMS has vouched it reported every stock fact up to the
deadline (a receipt or a late movement we have not read yet could still explain it).

Also the channel stock guard: a ChannelStockLock recommendation when a channel's paid
units in the last N hours exceed a share of what is available.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.inventory.stock import HOUR_MS, Level, State, Totals, dt, known, ledger_gap, levels, ms, on_hand, totals
from streams.orders.divergence import alert_id

OVERSELL = "OVERSELL"
LOW_STOCK = "LOW_STOCK"
STOCK_DIVERGENCE = "STOCK_DIVERGENCE"
WMS_SOURCE = "wms"  # the source whose watermark gates every SKU alert

Alert = dict[str, Any]
Command = dict[str, Any]
WatermarkOf = Callable[[str], int | None]


@dataclass(frozen=True)
class Config:
    """Thresholds and guard settings (from ``Settings``; see ``config_from``)."""

    oversell_threshold_ms: int = 0
    divergence_threshold_ms: int = 600_000
    low_stock: Mapping[str, int] = field(default_factory=dict)  # sku -> units; '*' = every SKU
    guard_share: float = 0.0  # 0 disables the guard
    guard_window_ms: int = 24 * HOUR_MS
    retention_ms: int = 24 * HOUR_MS

    def low_limit(self, sku: str) -> int | None:
        return self.low_stock.get(sku, self.low_stock.get("*"))


@dataclass(frozen=True)
class Condition:
    """One rule instance that currently holds: its episode key and when it started."""

    key: str  # 'OVERSELL', 'LOW_STOCK', 'STOCK_DIVERGENCE|<warehouse>'
    rule: str
    started_ms: int
    threshold_ms: int


def rule_of(key: str) -> str:
    return key.split("|", 1)[0]


def warehouse_of(key: str) -> str | None:
    return key.split("|", 1)[1] if "|" in key else None


def conditions(state: State, config: Config, current: dict[str, Level] | None = None) -> dict[str, Condition]:
    """Every rule instance that holds now (started = the SKU's clock unless it knows better)."""
    out: dict[str, Condition] = {}
    if not known(state):
        return out  # the WMS never reported this SKU: on hand 0 means "unknown", not "none"
    current = current if current is not None else levels(state)
    sum_ = totals(current.values())
    now = state["clock_ms"]
    if sum_.available < 0:
        out[OVERSELL] = Condition(OVERSELL, OVERSELL, now, config.oversell_threshold_ms)
    limit = config.low_limit(state["sku"])
    if limit is not None and sum_.available <= limit:
        out[LOW_STOCK] = Condition(LOW_STOCK, LOW_STOCK, now, 0)
    for wh, w in state["warehouses"].items():
        if w["diverged_ms"] is not None:
            key = f"{STOCK_DIVERGENCE}|{wh}"
            out[key] = Condition(key, STOCK_DIVERGENCE, w["diverged_ms"], config.divergence_threshold_ms)
    return out


def _subject_key(state: State, key: str) -> str:
    wh = warehouse_of(key)
    return state["sku"] if wh is None else f"{state['sku']}|{wh}"


def evaluate(
    state: State, config: Config, now: datetime, current: dict[str, Level] | None = None
) -> tuple[State, list[Alert]]:
    """Open episodes for conditions that started to hold, close the ones that stopped.

    Returns the state (a new dict if episodes changed) and the RESOLVED alerts.
    """
    lv = current if current is not None else levels(state)
    holding = conditions(state, config, lv)
    episodes = state["episodes"]
    kept: dict[str, dict[str, Any]] = {}
    alerts: list[Alert] = []
    changed = False
    for key, cond in holding.items():
        episode = episodes.get(key)
        if episode is None:  # an episode, once open, keeps its start until it closes
            episode = {
                "rule": cond.rule,
                "subsystem": "WMS" if cond.rule == STOCK_DIVERGENCE else "CHANNEL",
                "started_at": dt(cond.started_ms),
                "deadline": dt(cond.started_ms + cond.threshold_ms),
                "alert_id": alert_id(cond.rule, _subject_key(state, key), cond.started_ms),
                "raised": False,
                "raised_at": None,
            }
            changed = True
        kept[key] = episode
    for key, episode in episodes.items():
        if key in holding:
            continue
        changed = True
        if episode["raised"]:
            resolved = max(state["clock_ms"], ms(episode["started_at"]))
            alerts.append(make_alert(state, key, episode, "RESOLVED", now, lv, resolved_ms=resolved))
    if not changed:
        return state, alerts
    return {**state, "episodes": kept}, alerts


def raise_due(state: State, watermark_of: WatermarkOf, now: datetime, config: Config) -> tuple[State, list[Alert]]:
    """RAISE every unraised episode whose deadline the WMS watermark has passed."""
    wm = watermark_of(WMS_SOURCE)
    if wm is None:
        return state, []
    alerts: list[Alert] = []
    episodes = dict(state["episodes"])
    current: dict[str, Level] | None = None
    for key, episode in state["episodes"].items():
        if not episode["raised"] and wm >= ms(episode["deadline"]):
            episodes[key] = {**episode, "raised": True, "raised_at": now}
            current = current if current is not None else levels(state)
            alerts.append(make_alert(state, key, episodes[key], "RAISED", now, current))
    if not alerts:
        return state, alerts
    return {**state, "episodes": episodes}, alerts


def pending_deadlines(state: State) -> list[tuple[str, int, str]]:
    """(source, deadline ms, episode key) of every episode still waiting to be raised."""
    return [(WMS_SOURCE, ms(e["deadline"]), key) for key, e in state["episodes"].items() if not e["raised"]]


def open_alerts_of(state: State, now: datetime, config: Config) -> list[Alert]:
    """RAISED alerts of the raised episodes, rebuilt from the durable row."""
    raised = [(key, e) for key, e in state["episodes"].items() if e["raised"]]
    if not raised:
        return []
    current = levels(state)
    return [make_alert(state, key, e, "RAISED", e["raised_at"] or now, current) for key, e in raised]


def _channels(t: Totals) -> str:
    return ", ".join(f"{ch} {n}" for ch, n in t.open_by_channel.items()) or "none"


def make_alert(
    state: State,
    key: str,
    episode: dict[str, Any],
    alert_state: str,
    now: datetime,
    current: dict[str, Level],
    resolved_ms: int | None = None,
) -> Alert:
    sku = state["sku"]
    rule = rule_of(key)
    t = totals(current.values())
    details: dict[str, str] = {}
    if rule == STOCK_DIVERGENCE:
        wh = warehouse_of(key) or ""
        w = state["warehouses"].get(wh)
        gap = ledger_gap(w) if w is not None else 0
        severity, subsystem = "WARNING", "WMS"
        expected = "each WMS snapshot equals the previous one plus the movements reported since"
        observed = (
            f"snapshot {w['latest_qty']} at {wh}, ledger says {w['latest_qty'] - gap} (gap {gap:+d})"
            if w is not None and w["latest_qty"] is not None
            else "no snapshot"
        )
        message = f"SKU {sku} at {wh}: the WMS count and its movements disagree by {gap:+d} units"
        details = {"warehouse": wh, "gap": str(gap), "on_hand": str(on_hand(w)) if w is not None else "0"}
    else:
        details = {
            "available": str(t.available),
            "on_hand": str(t.on_hand),
            "reserved": str(t.reserved),
            "channels": ",".join(t.open_by_channel),
            **{f"open.{ch}": str(n) for ch, n in t.open_by_channel.items()},
        }
        observed = f"available {t.available} (on hand {t.on_hand}, reserved {t.reserved}: {_channels(t)})"
        if rule == OVERSELL:
            severity, subsystem = "CRITICAL", "CHANNEL"
            expected = "channels together sell no more than the warehouses hold (available >= 0)"
            message = f"SKU {sku} oversold: {observed}"
        else:
            severity, subsystem = "WARNING", None
            expected = "available stays above the low-stock limit"
            message = f"SKU {sku} is low: {observed}"
    started = ms(episode["started_at"])
    return {
        "alert_id": episode["alert_id"],
        "state": alert_state,
        "rule": rule,
        "severity": severity,
        "subject_type": "sku",
        "subject": sku,
        "channel": None,
        "subsystem": subsystem,
        "expected": expected,
        "observed": observed,
        "message": message,
        "episode_started_at": episode["started_at"],
        "deadline": episode["deadline"],
        "emitted_at": now,
        "resolved_at": dt(resolved_ms) if resolved_ms is not None else None,
        "duration_ms": (resolved_ms - started) if resolved_ms is not None else None,
        "details": details,
    }


# --- channel stock guard -------------------------------------------------------------------


def paid_in_window(state: State, window_ms: int) -> dict[str, int]:
    """Channel -> units paid in the last ``window_ms / 1h`` hours up to the SKU's clock, the
    current hour included (each line counted once, when first seen paid)."""
    since = state["clock_ms"] // HOUR_MS * HOUR_MS + HOUR_MS - max(window_ms, HOUR_MS)
    out: dict[str, int] = defaultdict(int)
    for bucket, units in state["paid"].items():
        channel, _, start = bucket.rpartition("|")
        if int(start) >= since:
            out[channel] += units
    return dict(sorted(out.items()))


def command_id(sku: str, channel: str, window_start_ms: int) -> str:
    return alert_id("ChannelStockLock", f"{sku}|{channel}", window_start_ms)


def guard(
    state: State, config: Config, now: datetime, current: dict[str, Level] | None = None
) -> tuple[State, list[Command]]:
    """ChannelStockLock for each channel whose paid units in the window exceed
    ``share x available``; at most one per channel per window-long period (its id is
    hash(sku, channel, period start), so a replay repeats it)."""
    if config.guard_share <= 0 or not known(state):
        return state, []
    current = current if current is not None else levels(state)
    available = totals(current.values()).available
    period = state["clock_ms"] // config.guard_window_ms * config.guard_window_ms
    hours = max(1, round(config.guard_window_ms / HOUR_MS))
    commands: list[Command] = []
    locks = dict(state["locks"])
    for channel, paid in paid_in_window(state, config.guard_window_ms).items():
        if paid <= 0 or paid <= config.guard_share * available or locks.get(channel) == period:
            continue
        locks[channel] = period
        commands.append(
            {
                "command_id": command_id(state["sku"], channel, period),
                "sku": state["sku"],
                "channel": channel,
                "paid_qty_window": paid,
                "available": available,
                "share_limit": config.guard_share,
                "window_hours": hours,
                "reason": (
                    f"{channel} sold {paid} units of {state['sku']} in the last {hours}h; "
                    f"more than {config.guard_share:.0%} of the {available} available"
                ),
                "issued_at": now,
            }
        )
    if not commands:
        return state, commands
    return {**state, "locks": locks}, commands
