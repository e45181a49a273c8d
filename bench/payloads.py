"""What the benchmarks feed the worker: mixed raw records, and valid twin rows.

Raw records come from the project's scenario generator over all seven channels: native
channel orders (Taobao, JD, PDD, Douyin, Kuaishou, Shopee, Shopify) going through OMS, WMS,
carrier and finance, i.e. the payload shapes the connectors publish, in publication order,
with real lifecycles that update the same twins several times (about 11 records per order).

Twin rows for the memory and recovery figures are made by folding one real normalised
event into a twin and re-keying it per order id: building 1M twins through the pipeline
would take the pipeline's own speed, which is what the other figures measure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ordertwin.avro import Codec

RECORDS_PER_ORDER = 11.0  # about what the scenario generator emits per order on all channels


@dataclass(frozen=True)
class Raw:
    """One raw record as a connector would publish it to ``raw.<source>``."""

    source: str
    key: bytes
    value: bytes


def mixed_raw(n: int, seed: int = 1, start: datetime | None = None) -> list[Raw]:
    """``n`` raw records of every source, in the order their sources would publish them.

    Event times lie within the day before ``start`` (default: now), so the divergence rules
    see plausible ages.
    """
    from connectors.scenario import generate
    from connectors.scenario.model import CHANNELS

    start = start or datetime.now(UTC) - timedelta(days=1)
    out: list[Raw] = []
    orders = max(1, math.ceil(n / RECORDS_PER_ORDER))
    while len(out) < n:  # the per-order count varies a little: top up with more orders
        scenario = generate(
            seed=seed,
            n_orders=orders,
            start=start,
            span=timedelta(hours=20),
            threshold=timedelta(minutes=10),
            channels=CHANNELS,
        )
        out = [Raw(r.source, r.key, r.value) for r in scenario.in_publication_order()]
        orders = math.ceil(orders * 1.1) + 1
    return out[:n]


def template_twin(codec: Codec) -> dict[str, Any]:
    """A real twin: a paid Taobao order folded from its normalised event and evaluated, so it
    has the open episodes (pending deadlines) a paid order has."""
    from streams.normalise.core import normalise_record
    from streams.normalise.model import RawRecord, keyed_fingerprint
    from streams.orders.divergence import evaluate
    from streams.orders.twin import apply, epoch_ms

    for raw in mixed_raw(300, seed=7):
        if raw.source != "taobao":
            continue
        record = RawRecord(raw.source, "raw.taobao", 0, 0, raw.key, raw.value, {})
        outcome = normalise_record(record, codec=codec, fingerprint=keyed_fingerprint(b"bench"), max_bytes=1 << 20)
        for enc in outcome.orders:
            if enc.record["status"] == "PAID":
                event = codec.decode_as("OrderEvent", enc.value)  # as the twin agent reads it
                twin, _ = apply(None, event)
                twin, _ = evaluate(  # as the twin agent does: opens the episodes a paid order has
                    twin, at_ms=epoch_ms(event["event_time"]), now=datetime.now(UTC), default_threshold_s=600.0
                )
                return twin
    raise RuntimeError("no paid Taobao order in the sample")


def twin_rows(codec: Codec, n: int) -> Iterator[tuple[bytes, bytes]]:
    """``n`` distinct, valid OrderTwin rows (key = order id, value = Avro as the table stores
    it), each with its own order id and episode alert ids."""
    from streams.orders.divergence import alert_id
    from streams.orders.twin import epoch_ms

    twin = template_twin(codec)
    encode: Callable[[str, dict[str, Any]], bytes] = codec.encode
    episodes = twin["episodes"]
    for i in range(n):
        order_id = row_order_id(i)
        twin["order_id"] = order_id
        twin["episodes"] = [
            {**e, "alert_id": alert_id(e["rule"], order_id, epoch_ms(e["started_at"]))} for e in episodes
        ]
        yield order_id.encode(), encode("OrderTwin", twin)


def row_order_id(i: int) -> str:
    """The order id of the i-th pre-loaded twin row (apart from every generated order id)."""
    return f"taobao:9{i:011d}"
