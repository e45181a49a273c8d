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
        if current is not None and current["raised"]:
            changed = True
            resolved = max(at_ms, _ms(current["started_at"]))
            alerts.append(make_alert(twin, rule, current, "RESOLVED", now, resolved_ms=resolved))
            newly_closed.append(current["alert_id"])
            continue
        # Met now (or no longer applicable). If history shows it was met only after the
        # deadline, the divergence was real even though we learn of it late (e.g. a healed
        # fault replayed while catching up). But history read before the subsystem's
        # watermark passed the deadline may still lack the fact that met it in time (after a
        # restart the backlog of one raw partition drains before another's): keep the
        # episode pending and let ``raise_due`` judge it once the watermark vouches.
        late = late_history(rule, twin, limit)
        episode = _episode(rule, twin, late[0], limit) if late is not None else None
        if episode is None or episode["alert_id"] in closed or episode["alert_id"] in newly_closed:
            changed = changed or current is not None  # an unraised episode is dropped
            continue
        if current != episode:
            changed = True
        kept.append(episode)
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


def late_history(rule: Rule, twin: Twin, limit_ms: int) -> tuple[int, int] | None:
    """(began, healed) when the twin's milestones show the expectation applied and was met
    (or stopped applying) only more than ``limit_ms`` later; None otherwise.

    Only as final as the milestones: a fact that met it earlier may still be on its way
    until the subsystem's watermark passes ``began + limit_ms``.
    """
    if rule.met_at is None:
        return None
    begun = rule.history_start(twin) if rule.history_start is not None else rule.applies(twin)
    if begun is None:
        return None
    met = rule.met_at(twin)
    if met is None:
        return None  # never heard it met: only a watermark can tell (the live path)
    stop = rule.stop_at(twin) if rule.stop_at is not None else None
    end = max(min(met, stop) if stop is not None else met, begun)
    return (begun, end) if end - begun > limit_ms else None


def raise_due(
    twin: Twin, watermark_of: WatermarkOf, now: datetime, rules: Mapping[str, Rule] | None = None
) -> tuple[Twin, list[Alert]]:
    """RAISE every unraised episode whose source watermark has passed its deadline.

    The source's data is then complete up to the deadline, so the twin's history is final
    there: an episode still unmet is RAISED (and stays open); one already met again was
    met only after the deadline, so it is RAISED and RESOLVED at once, and closed.
    """
    from streams.orders.rules import RULES_BY_ID

    rules = rules or RULES_BY_ID
    alerts: list[Alert] = []
    episodes = []
    closing: list[str] = []
    removed = False
    for episode in twin["episodes"]:
        if episode["raised"] or episode["rule"] not in rules:
            episodes.append(episode)
            continue
        wm = watermark_of(source_of(twin, episode["subsystem"]))
        if wm is None or wm < _ms(episode["deadline"]):
            episodes.append(episode)
            continue
        rule = rules[episode["rule"]]
        episode = {**episode, "raised": True, "raised_at": now}
        start = rule.applies(twin)
        if start is not None and not rule.met(twin):
            alerts.append(make_alert(twin, rule, episode, "RAISED", now))
            episodes.append(episode)
            continue
        began = _ms(episode["started_at"])
        late = late_history(rule, twin, _ms(episode["deadline"]) - began)
        removed = True  # judged: it leaves the pending list either way
        if late is not None and late[0] == began:
            alerts.append(make_alert(twin, rule, episode, "RAISED", now))
            alerts.append(make_alert(twin, rule, episode, "RESOLVED", now, resolved_ms=late[1]))
            closing.append(episode["alert_id"])
    if not alerts and not removed:
        return twin, alerts
    new = {**twin, "episodes": episodes}
    if closing:
        new["closed"] = [*twin.get("closed", []), *closing][-MAX_CLOSED:]
    return new, alerts


def pending_deadlines(twin: Twin) -> list[tuple[str, int, str]]:
    """(source, deadline ms, rule) of every episode still waiting to be raised.

    Also takes a twin decoded plain (``Codec.decode_plain``: timestamps as epoch ms), as
    the index rebuild reads a million of them.
    """
    return [
        (source_of(twin, e["subsystem"]), d if isinstance(d := e["deadline"], int) else _ms(d), e["rule"])
        for e in twin["episodes"]
        if not e["raised"]
    ]


def open_alerts_of(twin: Twin, now: datetime) -> list[Alert]:
    """RAISED alerts of a twin's open episodes, rebuilt from the durable row (after a restart)."""
    from streams.orders.rules import RULES_BY_ID

    return [
        make_alert(twin, RULES_BY_ID[e["rule"]], e, "RAISED", e["raised_at"] or now)
        for e in twin["episodes"]
        if e["raised"] and e["rule"] in RULES_BY_ID
    ]
