"""Connector errors, rooted in :mod:`ordertwin.errors`.

Platform errors carry ``retryable`` so the pull engine can decide with one attribute whether
to back off and try again (rate limits, outages) or stop and tell a human (bad credentials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ordertwin.errors import ConfigError, OrdertwinError, SourceError


class ConnectorError(OrdertwinError):
    """Base of errors raised by the connector framework itself."""


class UnknownSourceError(ConfigError):
    """A connector or simulator was asked for a source we do not implement."""


@dataclass(frozen=True)
class DeliveryFailure:
    """One record Kafka did not acknowledge."""

    topic: str
    key: bytes | None
    error: str

    def __str__(self) -> str:
        key = self.key.decode("utf-8", "replace") if self.key is not None else None
        return f"{self.topic}[key={key}]: {self.error}"


class PublishError(ConnectorError):
    """Records were not acknowledged by Kafka; the cursor must not move past them."""

    def __init__(self, message: str, failures: Sequence[DeliveryFailure] = ()) -> None:
        self.failures = list(failures)
        shown = "; ".join(str(f) for f in self.failures[:10])
        more = f" (+{len(self.failures) - 10} more)" if len(self.failures) > 10 else ""
        super().__init__(f"{message}: {shown}{more}" if shown else message)


class StateError(ConnectorError):
    """The durable cursor could not be read or written."""


class PlatformError(SourceError):
    """A platform call failed. ``retryable`` says whether waiting can fix it."""

    retryable: bool = False

    def __init__(
        self,
        source: str,
        message: str,
        *,
        code: str | None = None,
        sub_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.source = source
        self.code = code
        self.sub_code = sub_code
        self.http_status = http_status
        parts = [f"{source}: {message}"]
        if code is not None:
            parts.append(f"code={code}")
        if sub_code:
            parts.append(f"sub_code={sub_code}")
        if http_status is not None:
            parts.append(f"http={http_status}")
        super().__init__(" ".join(parts))


class RateLimited(PlatformError):
    """The platform throttled us; retry later (not sooner than ``retry_after`` seconds)."""

    retryable = True

    def __init__(
        self,
        source: str,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        sub_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(source, message, code=code, sub_code=sub_code, http_status=http_status)
        self.retry_after = retry_after


class TransientError(PlatformError):
    """Timeouts, connection failures, 5xx, platform-side (isp.*) errors: retry with backoff."""

    retryable = True


class PermanentError(PlatformError):
    """Our request is wrong (signature, session, arguments): retrying cannot help."""

    retryable = False
