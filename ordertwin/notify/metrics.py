"""Prometheus metrics of the notifier (its own process, its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NotifyMetrics:
    """
    - ``ordertwin_notify_alerts_total{outcome}``: received | delivered | undecodable | filtered | duplicate
    - ``ordertwin_notify_messages_total{target,kind}``: messages accepted by a target (alert | digest)
    - ``ordertwin_notify_failures_total{target,reason}``: http_5xx | http_4xx | errcode | rate_limited |
      timeout | connection
    - ``ordertwin_notify_pending_alerts``: consumed, not yet delivered and committed
    - ``ordertwin_notify_oldest_pending_seconds``: age of the oldest of those
    - ``ordertwin_notify_last_commit_timestamp_seconds``: unix time of the last offset commit
    - ``ordertwin_notify_delivery_seconds``: first alert of a batch consumed -> batch committed
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.alerts = Counter(
            "ordertwin_notify_alerts", "Alerts read from the alerts topic, by outcome.", ["outcome"], registry=registry
        )
        self.messages = Counter(
            "ordertwin_notify_messages",
            "Messages accepted by a target, by kind (alert/digest).",
            ["target", "kind"],
            registry=registry,
        )
        self.failures = Counter(
            "ordertwin_notify_failures",
            "Failed delivery attempts (retried), by target and reason.",
            ["target", "reason"],
            registry=registry,
        )
        self.pending = Gauge(
            "ordertwin_notify_pending_alerts", "Alerts consumed but not yet delivered and committed.", registry=registry
        )
        self.oldest_pending = Gauge(
            "ordertwin_notify_oldest_pending_seconds",
            "Age of the oldest consumed, undelivered alert.",
            registry=registry,
        )
        self.last_commit = Gauge(
            "ordertwin_notify_last_commit_timestamp_seconds",
            "Unix time of the last offset commit (after a delivery).",
            registry=registry,
        )
        self.delivery = Histogram(
            "ordertwin_notify_delivery_seconds",
            "From the first alert of a batch being consumed to the batch being delivered and committed.",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=registry,
        )

    def value(self, name: str, **labels: str) -> float:
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got
