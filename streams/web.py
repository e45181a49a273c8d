"""Worker HTTP API: /orders/{order_id} (routed to the key's owner), /health, /metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from faust.sensors.prometheus import PrometheusMonitor, setup_prometheus_sensors
from faust.web import Request, Response, View

from ordertwin.errors import DecodeError
from streams.faust_metrics import LeanPrometheusMonitor
from streams.ops import register_ops
from streams.orders.twin import to_json

if TYPE_CHECKING:
    from streams.app import Pipeline

MAX_ID_LEN = 200


def register_views(pipeline: Pipeline) -> None:
    app = pipeline.app
    table = pipeline.tables["order_twin"]
    codec = pipeline.codec
    # Faust's own sensor and our pipeline metrics share one registry, served at /metrics.
    setup_prometheus_sensors(app, registry=pipeline.metrics.registry, name_prefix="ordertwin_faust")
    faust_metrics = cast(PrometheusMonitor, app.monitor)._metrics
    app.monitor = LeanPrometheusMonitor(metrics=faust_metrics)  # same metrics, cheaper per record

    @app.page("/orders/{order_id}")
    class OrderView(View):
        """The twin of one order, from the worker that owns its partition."""

        @app.table_route(table=table, match_info="order_id")  # type: ignore[arg-type]
        async def get(self, request: Request, order_id: str) -> Response:
            if not order_id or len(order_id) > MAX_ID_LEN:
                return self.json({"error": "invalid order id"}, status=400)
            stored = table.get(order_id.encode())
            if stored is None:
                return self.json({"error": "order not found", "order_id": order_id}, status=404)
            try:
                twin = codec.decode_as("OrderTwin", stored)
            except DecodeError as exc:
                return self.json({"error": f"stored twin unreadable: {exc}"}, status=500)
            open_episodes = [to_json(e) for e in twin["episodes"]]
            return self.json({"twin": to_json(twin), "open_episodes": open_episodes})

    @app.page("/health")
    class HealthView(View):
        """Liveness plus what this worker holds (twin rows in its active partitions)."""

        async def get(self, request: Request) -> Response:
            active = app.assignor.assigned_actives()
            rows = _count_rows(table)
            return self.json(
                {
                    "status": "ok" if app.rebalancing is False else "rebalancing",
                    "twin_rows": rows,
                    "active_partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in active),
                }
            )

    @app.page("/alerts")
    class AlertsView(View):
        """Alerts held by this worker: open ones (raised, unresolved) or the recent history."""

        async def get(self, request: Request) -> Response:
            query = request.query
            state_filter = query.get("state", "open")
            if state_filter not in ("open", "all"):
                return self.json({"error": "state must be 'open' or 'all'"}, status=400)
            try:
                limit = int(query.get("limit", "100"))
            except ValueError:
                return self.json({"error": "limit must be an integer"}, status=400)
            if not 1 <= limit <= 10_000:
                return self.json({"error": "limit must be between 1 and 10000"}, status=400)
            twin_state = pipeline.twin_state
            pool = list(twin_state.open_alerts.values()) if state_filter == "open" else list(twin_state.recent)
            for name in ("subsystem", "rule", "channel", "severity"):
                wanted = query.get(name)
                if wanted:
                    pool = [a for a in pool if (a.get(name) or "").lower() == wanted.lower()]
            pool.sort(key=lambda a: a["emitted_at"], reverse=True)
            return self.json(
                {
                    "state": state_filter,
                    "count": len(pool),
                    "alerts": [to_json(a) for a in pool[:limit]],
                    "scope": "partitions owned by this worker; the alerts topic holds every alert",
                }
            )

    _ = (OrderView, HealthView, AlertsView)
    register_ops(pipeline)  # GET /ops, /ops/indicators (streams/ops)


def _count_rows(table: Any) -> int:
    """Rows in this worker's table (O(rows); fine for a health probe, not a hot path)."""
    return sum(1 for _ in table)
