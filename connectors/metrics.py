"""Prometheus metrics of connectors, registered on a registry passed in (tests use their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ConnectorMetrics:
    """One set of connector metrics, labelled by source.

    - ``ordertwin_connector_records_total{source,outcome}``: outcome = fetched | published | failed
    - ``ordertwin_connector_requests_total{source,outcome}``: outcome = ok | rate_limited |
      transient | permanent | error
    - ``ordertwin_connector_poll_lag_seconds{source}``: now - cursor
    - ``ordertwin_connector_last_success_timestamp_seconds{source}``: last saved window (unix)
    - ``ordertwin_connector_cursor_timestamp_seconds{source}``: the cursor itself (unix)
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.records = Counter(
            "ordertwin_connector_records",
            "Platform records by outcome.",
            ["source", "outcome"],
            registry=registry,
        )
        self.requests = Counter(
            "ordertwin_connector_requests",
            "Platform API calls by outcome.",
            ["source", "outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            "ordertwin_connector_poll_lag_seconds",
            "Seconds between now and the saved cursor.",
            ["source"],
            registry=registry,
        )
        self.last_success = Gauge(
            "ordertwin_connector_last_success_timestamp_seconds",
            "Unix time of the last window published and checkpointed.",
            ["source"],
            registry=registry,
        )
        self.cursor = Gauge(
            "ordertwin_connector_cursor_timestamp_seconds",
            "The saved cursor as unix time.",
            ["source"],
            registry=registry,
        )

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (for tests and the CLI); 0.0 when absent."""
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got
