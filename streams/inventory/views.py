"""GET /inventory/{sku}: the stock picture of one SKU, from the worker that owns its partition."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from ordertwin.avro import Codec
from ordertwin.errors import DecodeError
from ordertwin.settings import Settings
from streams.inventory import stock
from streams.inventory.agents import config_from
from streams.inventory.rules import Config
from streams.orders.twin import to_json

MAX_SKU_LEN = 200


def inventory_json(row: stock.State, config: Config) -> dict[str, Any]:
    per_warehouse = stock.levels(row)
    t = stock.totals(per_warehouse.values())
    return {
        "sku": row["sku"],
        "known": stock.known(row),
        "on_hand": t.on_hand,
        "reserved": t.reserved,
        "available": t.available,
        "open_by_channel": t.open_by_channel,
        "warehouses": [to_json(level) for level in per_warehouse.values()],
        "open_reservations": stock.open_reservations(row),
        "low_stock_limit": config.low_limit(row["sku"]),
        "episodes": [{"key": key, **to_json(e)} for key, e in sorted(row["episodes"].items())],
        "ledger_gaps": {
            wh: stock.ledger_gap(w) for wh, w in sorted(row["warehouses"].items()) if w["diverged_ms"] is not None
        },
        "updated_at": stock.dt(row["clock_ms"]).isoformat(),
    }


def register_inventory_views(app: faust.App, table: Any, codec: Codec, settings: Settings) -> None:
    config = config_from(settings)

    @app.page("/inventory/{sku}")
    class InventoryView(View):
        """Levels per warehouse, totals, open episodes of one SKU (routed to its owner)."""

        @app.table_route(table=table, match_info="sku")  # type: ignore[arg-type]
        async def get(self, request: Request, sku: str) -> Response:
            if not sku or len(sku) > MAX_SKU_LEN:
                return self.json({"error": "invalid sku"}, status=400)
            stored = table.get(sku.encode())
            if stored is None:
                return self.json({"error": "sku not found", "sku": sku}, status=404)
            try:
                row = codec.decode_as("StockState", stored)
            except DecodeError as exc:
                return self.json({"error": f"stored stock row unreadable: {exc}"}, status=500)
            return self.json(inventory_json(row, config))

    _ = InventoryView
