"""Divergence episodes, pure: unmet rules open episodes, due episodes raise, met ones resolve.

Time is event time. An episode's deadline is ``started_at + threshold``; it is RAISED only
once the responsible source's watermark (how far its data is known to be complete) has
passed the deadline: we never blame a system for what we have not yet heard from it.
Alert ids are a hash of (rule, order, started_at), so a retried emit repeats the id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from streams.orders.rules import RULES, Rule, observed
from streams.orders.twin import Twin

Alert = dict[str, Any]
WatermarkOf = Callable[[str], int | None]  # source name -> watermark (epoch ms) or None
MAX_CLOSED = 32  # closed alert ids kept per order (a handful of episodes in its life)


def source_of(twin: Twin, subsystem: str) -> str:
    """The source whose watermark gates alerts against a subsystem."""
    return str(twin["channel"]) if subsystem == "CHANNEL" else subsystem.lower()


def alert_id(rule: str, subject: str, started_ms: int) -> str:
    return hashlib.sha256(f"{rule}|{subject}|{started_ms}".encode()).hexdigest()[:32]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def threshold_ms(rule: Rule, default_s: float, overrides: Mapping[str, float]) -> int:
    seconds = overrides.get(rule.id, rule.threshold_s if rule.threshold_s is not None else default_s)
    return int(seconds * 1000)


def make_alert(
    twin: Twin, rule: Rule, episode: dict[str, Any], state: str, now: datetime, resolved_ms: int | None = None
) -> Alert:
    started = _ms(episode["started_at"])
    seen = observed(twin, rule.subsystem)
    return {
        "alert_id": episode["alert_id"],
        "state": state,
        "rule": rule.id,
        "severity": rule.severity,
        "subject_type": "order",
        "subject": twin["order_id"],
        "channel": twin["channel"],
        "subsystem": rule.subsystem,
        "expected": rule.expected,
        "observed": seen,
        "message": f"{twin['order_id']}: expected {rule.expected}; {rule.subsystem} shows {seen}",
        "episode_started_at": episode["started_at"],
        "deadline": episode["deadline"],
        "emitted_at": now,
        "resolved_at": _dt(resolved_ms) if resolved_ms is not None else None,
        "duration_ms": (resolved_ms - started) if resolved_ms is not None else None,
        "details": {"twin_state": str(twin["state"])},
    }


def evaluate(
    twin: Twin,
    *,
    at_ms: int,
    now: datetime,
    default_threshold_s: float,
    overrides: Mapping[str, float] | None = None,
    rules: Iterable[Rule] = RULES,
) -> tuple[Twin, list[Alert]]:
    """Open episodes for rules that became unmet, close the ones met again.

    ``at_ms`` is the event time of the fact being applied; a raised episode that closes
    resolves at that time. Returns the twin (a new dict if episodes changed) and any
    RESOLVED alerts.
    """
    overrides = overrides or {}
    episodes = {e["rule"]: e for e in twin["episodes"]}
    closed = set(twin.get("closed", []))
    newly_closed: list[str] = []
    kept: list[dict[str, Any]] = []
    alerts: list[Alert] = []
    changed = False
    for rule in rules:
        current = episodes.get(rule.id)
        start = rule.applies(twin)
        unmet = start is not None and not rule.met(twin)
        limit = threshold_ms(rule, default_threshold_s, overrides)
        if unmet:
            assert start is not None
            if current is None or (not current["raised"] and _ms(current["started_at"]) != start):
                # New episode, or an earlier milestone arrived late before anything was emitted.
                current = _episode(rule, twin, start, limit)
                changed = True
            kept.append(current)
            continue
        if current is not None:
            changed = True
            if current["raised"]:
                resolved = max(at_ms, _ms(current["started_at"]))
                alerts.append(make_alert(twin, rule, current, "RESOLVED", now, resolved_ms=resolved))
                newly_closed.append(current["alert_id"])
                continue
        # Met now (or no longer applicable). If history shows it was met only after the
        # deadline, the divergence was real even though we learn of it late (e.g. facts
        # processed out of order while catching up): raise and resolve it, once.
        if rule.met_at is None:
            continue
        begun = rule.history_start(twin) if rule.history_start is not None else start
        if begun is None:
            continue
        met = rule.met_at(twin)
        if met is None:
            continue  # never heard it met: only a watermark can tell (the live path above)
        stop = rule.stop_at(twin) if rule.stop_at is not None else None
        end = max(min(met, stop) if stop is not None else met, begun)
        if end - begun <= limit:
            continue
        episode = _episode(rule, twin, begun, limit)
        if episode["alert_id"] in closed or episode["alert_id"] in newly_closed:
            continue
        episode = {**episode, "raised": True, "raised_at": now}
        alerts.append(make_alert(twin, rule, episode, "RAISED", now))
        alerts.append(make_alert(twin, rule, episode, "RESOLVED", now, resolved_ms=end))
        newly_closed.append(episode["alert_id"])
    if not changed and not newly_closed:
        return twin, alerts
    new = dict(twin)
    new["episodes"] = kept if changed else twin["episodes"]
    if newly_closed:
        new["closed"] = [*twin.get("closed", []), *newly_closed][-MAX_CLOSED:]
    return new, alerts


def _episode(rule: Rule, twin: Twin, start: int, limit_ms: int) -> dict[str, Any]:
    return {
        "rule": rule.id,
        "subsystem": rule.subsystem,
        "started_at": _dt(start),
        "deadline": _dt(start + limit_ms),
        "alert_id": alert_id(rule.id, twin["order_id"], start),
        "raised": False,
        "raised_at": None,
    }


def raise_due(
    twin: Twin, watermark_of: WatermarkOf, now: datetime, rules: Mapping[str, Rule] | None = None
) -> tuple[Twin, list[Alert]]:
    """RAISE every unraised episode whose source watermark has passed its deadline."""
    from streams.orders.rules import RULES_BY_ID

    rules = rules or RULES_BY_ID
    alerts: list[Alert] = []
    episodes = []
    for episode in twin["episodes"]:
        if not episode["raised"]:
            wm = watermark_of(source_of(twin, episode["subsystem"]))
            if wm is not None and wm >= _ms(episode["deadline"]):
                episode = {**episode, "raised": True, "raised_at": now}
                alerts.append(make_alert(twin, rules[episode["rule"]], episode, "RAISED", now))
        episodes.append(episode)
    if not alerts:
        return twin, alerts
    return {**twin, "episodes": episodes}, alerts


def pending_deadlines(twin: Twin) -> list[tuple[str, int, str]]:
    """(source, deadline ms, rule) of every episode still waiting to be raised."""
    return [
        (source_of(twin, e["subsystem"]), _ms(e["deadline"]), e["rule"]) for e in twin["episodes"] if not e["raised"]
    ]


def open_alerts_of(twin: Twin, now: datetime) -> list[Alert]:
    """RAISED alerts of a twin's open episodes, rebuilt from the durable row (after a restart)."""
    from streams.orders.rules import RULES_BY_ID

    return [
        make_alert(twin, RULES_BY_ID[e["rule"]], e, "RAISED", e["raised_at"] or now)
        for e in twin["episodes"]
        if e["raised"] and e["rule"] in RULES_BY_ID
    ]
