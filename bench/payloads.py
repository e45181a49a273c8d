"""What the benchmarks feed the worker: mixed raw records, and valid twin rows.

Raw records come from the project's own generators, so they are the payload shapes the
connectors publish: the scenario generator (Taobao orders through OMS, WMS, carrier and
finance, i.e. real lifecycles that update the same twins several times) plus JD, PDD,
Kuaishou, Shopify and Douyin orders from their simulators. Shopee is left out (its
simulator renders detail pages through the connector, not a standalone order list).

Twin rows for the memory and recovery figures are made by folding one real normalised
event into a twin and re-keying it per order id: building 1M twins through the pipeline
would take the pipeline's own speed, which is what the other figures measure.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ordertwin.avro import Codec

# Share of each channel simulator in the mix; the rest comes from the scenario generator
# (about 30% Taobao trades and 70% OMS/WMS/carrier/finance records).
CHANNEL_SHARE: dict[str, float] = {"jd": 0.06, "pdd": 0.06, "kuaishou": 0.06, "shopify": 0.04, "douyin": 0.04}
SCENARIO_RECORDS_PER_ORDER = 10.5  # measured: generate() emits about this many records per order


@dataclass(frozen=True)
class Raw:
    """One raw record as a connector would publish it to ``raw.<source>``."""

    source: str
    key: bytes
    value: bytes


def _channel_records(source: str, n: int, seed: int, start: datetime, end: datetime) -> list[Raw]:
    """``n`` raw records of one channel, from that channel's simulator."""
    if n <= 0:
        return []
    if source in ("jd", "pdd", "kuaishou"):
        import importlib

        sim = importlib.import_module(f"connectors.{source}.simulator")
        client = importlib.import_module(f"connectors.{source}.client")
        orders = sim.generate_orders(n, seed=seed, start=start, end=end)
        return [Raw(source, client.order_key(o) or b"", sim.serialise(o)) for o in orders]
    if source in ("shopify", "douyin"):
        import importlib

        sim = importlib.import_module(f"connectors.{source}.simulator")
        client = importlib.import_module(f"connectors.{source}.client")
        out: list[Raw] = []
        for history in sim.generate_histories(n, seed=seed, start=start, end=end):
            for version in history.versions:
                out.append(Raw(source, client.order_key(version.order) or b"", sim.serialise(version.order)))
                if len(out) >= n:
                    return out
        return out
    raise ValueError(f"no generator for {source!r}")


def mixed_raw(n: int, seed: int = 1, start: datetime | None = None) -> list[Raw]:
    """About ``n`` raw records of mixed sources, interleaved as they would arrive.

    Event times lie in the last day, so the divergence rules see plausible ages.
    """
    from connectors.scenario import generate

    start = start or datetime.now(UTC) - timedelta(days=1)
    end = start + timedelta(hours=20)
    channels: list[Raw] = []
    for i, (source, share) in enumerate(CHANNEL_SHARE.items()):
        channels += _channel_records(source, round(n * share), seed + i, start, end)
    orders = max(1, round((n - len(channels)) / SCENARIO_RECORDS_PER_ORDER))
    scenario = generate(seed=seed, n_orders=orders, start=start, span=end - start, threshold=timedelta(minutes=10))
    scenario_raw = [Raw(r.source, r.key, r.value) for r in scenario.in_publication_order()]
    # Interleave the channel records at random positions of the (time-ordered) scenario stream.
    rng = random.Random(seed)
    merged = scenario_raw + channels
    slots = sorted(rng.random() for _ in channels)
    out: list[Raw] = []
    ci = 0
    for i, rec in enumerate(scenario_raw):
        while ci < len(channels) and slots[ci] * len(scenario_raw) <= i:
            out.append(channels[ci])
            ci += 1
        out.append(rec)
    out += channels[ci:]
    assert len(out) == len(merged)
    return out[:n] if len(out) > n else out


def template_twin(codec: Codec) -> dict[str, Any]:
    """A real twin: a paid Taobao order folded from its normalised event and evaluated, so it
    has the open episodes (pending deadlines) a paid order has."""
    from streams.normalise.core import normalise_record
    from streams.normalise.model import RawRecord, keyed_fingerprint
    from streams.orders.divergence import evaluate
    from streams.orders.twin import apply, epoch_ms

    for raw in mixed_raw(200, seed=7):
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
