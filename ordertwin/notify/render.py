"""What a chat group or webhook receives: one message per alert, or one digest for many.

- WeCom group robot:  ``{"msgtype": "markdown", "markdown": {"content": ...}}`` (content <= 4096 bytes)
- DingTalk robot:     ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``
- generic webhook:    ``{"source": "ordertwin", "kind": "alerts", "count": n, "summary": {...},
  "alerts": [every alert of the batch, JSON]}`` (a machine gets every alert in full, one POST per batch)

Alerts carry no personal data by design (see the Alert schema); nothing here adds any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ordertwin.notify.targets import Target

MAX_MARKDOWN_BYTES = 4000  # WeCom's markdown limit is 4096 bytes; stay under it for both robots
DIGEST_LINES = 15
BRAND = "ordertwin"  # DingTalk robots with a keyword check should use this keyword

Alert = Mapping[str, Any]


@dataclass(frozen=True)
class Message:
    """One HTTP POST to one target."""

    kind: str  # "alert" | "digest"
    payload: dict[str, Any]
    alerts: tuple[Alert, ...]


def _one_line(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def fmt_time(value: Any, tz: tzinfo) -> str:
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    return _one_line(value)


def alert_json(alert: Alert) -> dict[str, Any]:
    """JSON-friendly copy of an alert (ISO times)."""
    out: dict[str, Any] = {}
    for key, value in alert.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _state_word(state: str, flavor: str) -> str:
    if flavor == "wecom":
        color = "warning" if state == "RAISED" else "info"
        return f'<font color="{color}">{state}</font>'
    return f"**{state}**"


def render_alert(alert: Alert, flavor: str, tz: tzinfo) -> tuple[str, str]:
    """(title, markdown) of one alert."""
    state, rule = str(alert.get("state")), _one_line(alert.get("rule"))
    title = f"{BRAND} {state} {rule} {_one_line(alert.get('subject'))}"
    where = [f"{alert['subject_type']} `{_one_line(alert.get('subject'))}`"]
    if alert.get("channel"):
        where.append(f"channel {_one_line(alert['channel'])}")
    if alert.get("subsystem"):
        where.append(f"subsystem {_one_line(alert['subsystem'])}")
    lines = [
        f"### {BRAND}: {_state_word(state, flavor)} {rule} ({_one_line(alert.get('severity'))})",
        f"> {' · '.join(where)}",
        f"> expected: {_one_line(alert.get('expected'))}",
        f"> observed: {_one_line(alert.get('observed'))}",
        f"> since: {fmt_time(alert.get('episode_started_at'), tz)} (deadline {fmt_time(alert.get('deadline'), tz)})",
    ]
    if state == "RESOLVED" and alert.get("duration_ms") is not None:
        lines.append(f"> resolved after {int(alert['duration_ms']) // 1000} s")
    lines.append(f"> alert_id: {_one_line(alert.get('alert_id'))}")
    return title, "\n".join(lines)


def render_digest(alerts: Sequence[Alert], flavor: str, tz: tzinfo) -> tuple[str, str]:
    """(title, markdown) summarising many alerts within the byte limit."""
    states = Counter(str(a.get("state")) for a in alerts)
    by_rule = Counter((str(a.get("state")), _one_line(a.get("rule")), _one_line(a.get("severity"))) for a in alerts)
    times = [a["emitted_at"] for a in alerts if isinstance(a.get("emitted_at"), datetime)]
    title = f"{BRAND}: {len(alerts)} alerts ({states.get('RAISED', 0)} raised, {states.get('RESOLVED', 0)} resolved)"
    head = [f"### {title}"]
    if times:
        head.append(f"> {fmt_time(min(times), tz)} – {fmt_time(max(times), tz)}")
    head.append("")
    for (state, rule, severity), n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        head.append(f"- {_state_word(state, flavor)} {rule} ({severity}): {n}")
    head.append("")
    head.append("Latest:")
    latest = sorted(alerts, key=lambda a: str(a.get("emitted_at")), reverse=True)
    body = [
        f"- {_one_line(a.get('state'))} {_one_line(a.get('rule'))} `{_one_line(a.get('subject'))}`"
        + (f" · {_one_line(a.get('subsystem'))}" if a.get("subsystem") else "")
        for a in latest[:DIGEST_LINES]
    ]
    text = fit("\n".join(head), body, len(alerts))
    return title, text


def fit(head: str, lines: Iterable[str], total: int, limit: int = MAX_MARKDOWN_BYTES) -> str:
    """``head`` plus as many ``lines`` as fit in ``limit`` UTF-8 bytes, then how many were left out."""
    out = head
    shown = 0
    for line in lines:
        candidate = f"{out}\n{line}"
        if len(candidate.encode()) > limit - 120:
            break
        out, shown = candidate, shown + 1
    if shown < total:
        out += f"\n… and {total - shown} more (ordertwin tail alerts, or GET /alerts on the workers)"
    if len(out.encode()) > limit:  # the head alone was too long: cut on a character boundary
        out = out.encode()[: limit - 3].decode(errors="ignore") + "…"
    return out


def payload(target: Target, kind: str, alerts: Sequence[Alert], tz: tzinfo) -> dict[str, Any]:
    """The JSON body for ``target``: one alert (``kind="alert"``) or a digest."""
    if target.kind == "webhook":
        states = Counter(str(a.get("state")) for a in alerts)
        rules = Counter(str(a.get("rule")) for a in alerts)
        return {
            "source": BRAND,
            "kind": "alerts",
            "count": len(alerts),
            "summary": {"states": dict(states), "rules": dict(rules)},
            "alerts": [alert_json(a) for a in alerts],
        }
    flavor = target.kind
    title, text = render_alert(alerts[0], flavor, tz) if kind == "alert" else render_digest(alerts, flavor, tz)
    if kind == "alert":
        text = fit(text, [], 0)
    if target.kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": title[:64], "text": text}}


def plan(target: Target, alerts: Sequence[Alert], *, individual_max: int, tokens: float, tz: tzinfo) -> list[Message]:
    """Messages for one batch: one per alert when few and the rate budget allows, else a digest.

    A generic webhook always gets the whole batch in one message (it is a machine).
    """
    if not alerts:
        return []
    if target.kind == "webhook":
        kind = "alert" if len(alerts) == 1 else "digest"
        return [Message(kind, payload(target, kind, alerts, tz), tuple(alerts))]
    if len(alerts) <= individual_max and len(alerts) <= max(1.0, tokens):
        return [Message("alert", payload(target, "alert", [a], tz), (a,)) for a in alerts]
    return [Message("digest", payload(target, "digest", alerts, tz), tuple(alerts))]


def zone(name: str) -> tzinfo:
    return ZoneInfo(name)
