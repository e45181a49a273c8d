"""Agent ``normalise``: raw.* (key = source id) -> orders.events (key = order_id),
inventory.events (key = sku), deadletter (key = raw key).

Thin: decode coordinates, call the pure core, send the outputs. Every raw record ends
as canonical events or one RejectedEvent; processing continues after bad records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust

from ordertwin.avro import Codec
from ordertwin.topics import Catalogue
from streams.metrics import PipelineMetrics
from streams.normalise.core import normalise_record, rejected_event
from streams.normalise.model import RawRecord


def raw_record_of(catalogue: Catalogue, message: Any) -> RawRecord:
    """Faust message -> RawRecord (headers may arrive as a list of pairs or a dict)."""
    headers = message.headers or {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    hdrs = {str(k): (v if isinstance(v, bytes) else str(v).encode()) for k, v in pairs if v is not None}
    ts = message.timestamp
    return RawRecord(
        source=catalogue.source_of_raw_topic(message.topic),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=hdrs,
        timestamp_ms=int(ts * 1000) if ts else None,
    )


def register_normalise(
    app: faust.App,
    *,
    catalogue: Catalogue,
    source: faust.types.TopicT,
    orders: faust.types.TopicT,
    inventory: faust.types.TopicT,
    deadletter: faust.types.TopicT,
    codec: Codec,
    fingerprint: Callable[[str], str],
    max_bytes: int,
    metrics: PipelineMetrics,
) -> Any:
    async def normalise(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            raw = raw_record_of(catalogue, event.message)
            label = raw.source or "unknown"
            metrics.raw_records.labels(label).inc()
            outcome = normalise_record(raw, codec=codec, fingerprint=fingerprint, max_bytes=max_bytes)
            if outcome.rejection is not None:
                rec = rejected_event(raw, outcome.rejection, datetime.now(UTC))
                await deadletter.send(key=raw.key, value=codec.encode("RejectedEvent", rec))
                metrics.rejected.labels(label, outcome.rejection.reason).inc()
                continue
            for out in outcome.orders:
                await orders.send(key=out.key, value=out.value)
            for out in outcome.inventory:
                await inventory.send(key=out.key, value=out.value)
            if outcome.orders:
                metrics.normalised.labels(label, "order").inc(len(outcome.orders))
            if outcome.inventory:
                metrics.normalised.labels(label, "inventory").inc(len(outcome.inventory))

    return app.agent(source, name="normalise")(normalise)
