"""Agent ``normalise``: raw.* (key = source id) -> orders.events (key = order_id),
inventory.events (key = sku), deadletter (key = raw key).

Thin: decode coordinates, call the pure core, send the outputs. Every raw record ends
as canonical events or one RejectedEvent; processing continues after bad records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust

from ordertwin.avro import Codec
from ordertwin.topics import Catalogue
from streams.control import CONTROL_HEADER, WATERMARK, headers_of, is_watermark, parse_raw_watermark
from streams.metrics import PipelineMetrics
from streams.normalise.core import normalise_record, rejected_event
from streams.normalise.model import INVALID_VALUE, RawRecord, Rejection

# Forward an unchanged watermark again after this long, so a restarted twin re-learns it.
WATERMARK_REFRESH_S = 10.0


def raw_record_of(catalogue: Catalogue, message: Any) -> RawRecord:
    """Faust message -> RawRecord (headers may arrive as a list of pairs or a dict)."""
    hdrs = headers_of(message)
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
    orders_partitions: int,
    monotonic: Callable[[], float] = time.monotonic,
) -> Any:
    forwarded: dict[tuple[str, int], tuple[int, float]] = {}
    children: dict[tuple[Any, ...], Any] = {}

    def counter(metric: Any, *labels: str) -> Any:
        """The metric's child for these labels, looked up once (labels() validates and
        locks on every call, a measurable share of this agent's per-record time)."""
        key = (id(metric), *labels)
        child = children.get(key)
        if child is None:
            child = children[key] = metric.labels(*labels)
        return child

    async def forward_watermark(raw: RawRecord) -> Rejection | None:
        """Pass a connector's watermark on to every orders.events partition, after the data."""
        assert raw.source is not None
        try:
            wm, partitions, connector = parse_raw_watermark(raw.value)
        except (ValueError, KeyError, TypeError) as exc:
            return Rejection(INVALID_VALUE, f"bad watermark control record: {exc}")
        wm_ms = int(wm.timestamp() * 1000)
        last = forwarded.get((raw.source, raw.partition))
        if last is not None and wm_ms <= last[0] and monotonic() - last[1] < WATERMARK_REFRESH_S:
            return None
        forwarded[(raw.source, raw.partition)] = (max(wm_ms, last[0] if last else wm_ms), monotonic())
        value = codec.encode(
            "Watermark",
            {
                "source": raw.source,
                "raw_partition": raw.partition,
                "raw_partitions": partitions,
                "watermark": wm,
                "connector": connector,
            },
        )
        key = f"__watermark__:{raw.source}".encode()
        for partition in range(orders_partitions):
            await orders.send(key=key, value=value, partition=partition, headers={CONTROL_HEADER: WATERMARK})
            if raw.source == "wms":  # stock facts are vouched for in band too (streams.inventory); same partitions
                await inventory.send(key=key, value=value, partition=partition, headers={CONTROL_HEADER: WATERMARK})
        return None

    async def normalise(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            raw = raw_record_of(catalogue, event.message)
            label = raw.source or "unknown"
            if raw.source is not None and is_watermark(raw.headers):
                rejection = await forward_watermark(raw)
                if rejection is not None:
                    rec = rejected_event(raw, rejection, datetime.now(UTC))
                    await deadletter.send(key=raw.key, value=codec.encode("RejectedEvent", rec))
                    counter(metrics.rejected, label, rejection.reason).inc()
                continue
            counter(metrics.raw_records, label).inc()
            outcome = normalise_record(raw, codec=codec, fingerprint=fingerprint, max_bytes=max_bytes)
            if outcome.rejection is not None:
                rec = rejected_event(raw, outcome.rejection, datetime.now(UTC))
                await deadletter.send(key=raw.key, value=codec.encode("RejectedEvent", rec))
                counter(metrics.rejected, label, outcome.rejection.reason).inc()
                continue
            for out in outcome.orders:
                await orders.send(key=out.key, value=out.value)
            for out in outcome.inventory:
                await inventory.send(key=out.key, value=out.value)
            if outcome.orders:
                counter(metrics.normalised, label, "order").inc(len(outcome.orders))
            if outcome.inventory:
                counter(metrics.normalised, label, "inventory").inc(len(outcome.inventory))

    return app.agent(source, name="normalise")(normalise)
