"""The ops page of the worker web server: ``GET /ops`` (plain HTML + JS, no build step, no CDN).

- ``/ops``                 the page (``static/index.html``)
- ``/ops/static/{name}``   its script and stylesheet (a fixed allow-list, never a path)
- ``/ops/indicators``      health indicators as JSON (see :mod:`streams.ops.indicators`)

The page itself polls ``/health``, ``/alerts`` and ``/ops/indicators`` every few seconds and
looks orders up through ``/orders/{id}``. The sync-delay and outbound-volume metrics the
indicators read are fed by the twin agent (``PipelineMetrics.observe_fact``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from faust.web import Request, Response, View

from streams.ops.indicators import Indicators

if TYPE_CHECKING:
    from streams.app import Pipeline

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS: dict[str, str] = {
    "ops.js": "application/javascript",
    "ops.css": "text/css",
}
SECURITY_HEADERS = {
    # Everything comes from this worker: no inline script, no CDN, no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def load_assets(static_dir: Path = STATIC_DIR) -> dict[str, str]:
    """The page and its assets (UTF-8 text, served with charset=utf-8), read once at start-up."""
    files = {"index.html": static_dir / "index.html", **{name: static_dir / name for name in ASSETS}}
    return {name: path.read_text(encoding="utf-8") for name, path in files.items()}


def register_ops(pipeline: Pipeline) -> None:
    app = pipeline.app
    assets = load_assets()
    state = pipeline.twin_state
    indicators = Indicators(
        registry=pipeline.metrics.registry,
        open_alerts=lambda: state.open_alerts,
        stale_sources=lambda: list(state.stale),
    )

    @app.page("/ops")
    class OpsPageView(View):
        """The ops page."""

        async def get(self, request: Request) -> Response:
            return self.text(assets["index.html"], content_type="text/html", headers=dict(SECURITY_HEADERS))

    @app.page("/ops/static/{name}")
    class OpsAssetView(View):
        """The page's script and stylesheet (allow-listed names only)."""

        async def get(self, request: Request, name: str) -> Response:
            if name not in ASSETS:
                return self.json({"error": "not found"}, status=404)
            return self.text(assets[name], content_type=ASSETS[name], headers=dict(SECURITY_HEADERS))

    @app.page("/ops/indicators")
    class OpsIndicatorsView(View):
        """Health indicators of this worker as JSON."""

        async def get(self, request: Request) -> Response:
            return self.json(indicators.compute(), headers={"Cache-Control": "no-cache"})

    _ = (OpsPageView, OpsAssetView, OpsIndicatorsView)
