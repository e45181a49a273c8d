"""Worker HTTP API: /orders/{order_id} (routed to the key's owner), /health, /metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.sensors.prometheus import setup_prometheus_sensors
from faust.web import Request, Response, View

from ordertwin.errors import DecodeError
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
            return self.json({"twin": to_json(twin)})

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

    _ = (OrderView, HealthView)


def _count_rows(table: Any) -> int:
    """Rows in this worker's table (O(rows); fine for a health probe, not a hot path)."""
    return sum(1 for _ in table)
