"""Where alerts are delivered: WeCom (企业微信) group robots, DingTalk (钉钉) robots, generic webhooks.

Configured as JSON in ``ORDERTWIN_NOTIFY_TARGETS``, e.g.::

    [{"kind": "wecom", "name": "ops", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."},
     {"kind": "dingtalk", "name": "wms-team", "url": "https://oapi.dingtalk.com/robot/send?access_token=...",
      "secret": "SEC...", "min_severity": "CRITICAL"},
     {"kind": "webhook", "name": "itsm", "url": "https://itsm.example.com/hooks/ordertwin", "secret": "..."}]

Webhook URLs carry credentials (the WeCom ``key``, the DingTalk ``access_token``): they are never
logged as given (:func:`redact_url`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ordertwin.errors import ConfigError

KINDS = ("wecom", "dingtalk", "webhook")
SEVERITIES = ("UNKNOWN", "INFO", "WARNING", "CRITICAL")
# Chat robots take ~20 messages a minute each; a machine webhook can take far more.
DEFAULT_RATE_PER_MIN = {"wecom": 20, "dingtalk": 20, "webhook": 600}
KNOWN_KEYS = {"kind", "name", "url", "secret", "min_severity", "rate_per_min"}


@dataclass(frozen=True)
class Target:
    kind: str
    name: str
    url: str
    secret: str = ""
    min_severity: str = "INFO"
    rate_per_min: int = 20

    def wants(self, severity: str) -> bool:
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
        return rank >= SEVERITIES.index(self.min_severity)

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """The URL without its query string and credentials (which is where robot keys live)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "…" if parts.query else "", ""))


def parse_targets(raw: Iterable[Mapping[str, Any]], *, default_rate_per_min: int | None = None) -> list[Target]:
    """Validate the configured targets; raise ConfigError naming the bad entry."""
    out: list[Target] = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"notify target #{i + 1}"
        unknown = set(entry) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
        kind = str(entry.get("kind", "")).lower()
        if kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        url = str(entry.get("url", ""))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: url must be an http(s) URL")
        severity = str(entry.get("min_severity", "INFO")).upper()
        if severity not in SEVERITIES:
            raise ConfigError(f"{where}: min_severity must be one of {', '.join(SEVERITIES)}")
        default_rate = DEFAULT_RATE_PER_MIN[kind]
        if default_rate_per_min is not None and kind != "webhook":
            default_rate = default_rate_per_min
        try:
            rate = int(entry.get("rate_per_min", default_rate))
        except ValueError:
            raise ConfigError(f"{where}: rate_per_min must be an integer") from None
        if rate < 1:
            raise ConfigError(f"{where}: rate_per_min must be at least 1")
        name = str(entry.get("name") or f"{kind}-{i + 1}")
        if name in names:
            raise ConfigError(f"{where}: duplicate name {name!r}")
        names.add(name)
        out.append(Target(kind, name, url, str(entry.get("secret", "")), severity, rate))
    return out
