"""Agent ``track_twin``: orders.events (key = order_id) -> table order_twin, whose
changelog is the compacted orders.twin topic (key = order_id).

Thin: decode, call the pure ``apply``, write the table only when the twin changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import faust

from ordertwin.avro import Codec
from ordertwin.errors import DecodeError
from streams.metrics import PipelineMetrics
from streams.orders.twin import apply

log = logging.getLogger(__name__)


def register_twin(
    app: faust.App,
    *,
    source: faust.types.TopicT,
    table: Any,
    codec: Codec,
    metrics: PipelineMetrics,
    now: Callable[[], datetime],
) -> Any:
    async def track_twin(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            key = event.key
            value = event.value
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                continue  # tombstones/keyless records are not OrderEvents; we are their only writer
            try:
                record = codec.decode_as("OrderEvent", value)
            except DecodeError:
                log.error("undecodable record on %s@%s; skipped", event.message.topic, event.message.offset)
                metrics.twin_updates.labels("undecodable").inc()
                continue
            stored = table.get(key)
            twin = codec.decode_as("OrderTwin", stored) if stored is not None else None
            new, changed = apply(twin, record)
            if changed:
                table[key] = codec.encode("OrderTwin", new)
                metrics.twin_updates.labels("changed").inc()
                lag = (now() - record["ingest_time"]).total_seconds()
                metrics.ingest_to_twin.observe(max(lag, 0.0))
            else:
                metrics.twin_updates.labels("unchanged").inc()

    return app.agent(source, name="track_twin")(track_twin)
