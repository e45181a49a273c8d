"""Figure 3: latency at a steady offered load, from connector receipt to the twin being
visible via the API.

The bench plays the connector: it publishes raw records to ``raw.*`` at a fixed rate, each
stamped ``received_at`` = now (the header a connector sets on receipt). Two readings:

- ``api``: a sample of new orders (a few per second) is polled with ``GET /orders/{id}``
  until it answers 200; latency = that moment - receipt. Polling backs off (5 ms, then 10%
  of the time waited) so probing a slow worker does not slow it further.
- ``store``: for every new order, the timestamp of its first ``orders.twin`` changelog
  record (the worker stamps it when it writes the row, which is when the API can read it)
  - receipt. Many more samples, no extra load; it omits the HTTP hop.

If the worker falls more than ``max_backlog_s`` of load behind, the load stops early; if it
ends more than ``max_lag_s`` behind, the run is marked ``saturated`` (its latency is then
mostly queueing time, not service time).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.broker import Deployment, first_write_ms, produce
from bench.payloads import Raw
from bench.stats import summary_ms
from bench.throughput import RAW_COUNTER
from bench.worker import ApiClient, BenchWorker
from connectors.publish import PRODUCER_DEFAULTS
from ordertwin.avro import Codec


@dataclass(frozen=True)
class Paced:
    """A raw record to publish, and the order it creates (None if its order exists already)."""

    raw: Raw
    new_order: str | None


def with_new_orders(raws: list[Raw], codec: Codec) -> list[Paced]:
    """Mark the records that create an order (normalised here, with the worker's own code)."""
    from streams.normalise.core import normalise_record
    from streams.normalise.model import RawRecord, keyed_fingerprint

    fingerprint = keyed_fingerprint(b"bench")
    seen: set[str] = set()
    out: list[Paced] = []
    for raw in raws:
        rec = RawRecord(raw.source, f"raw.{raw.source}", 0, 0, raw.key, raw.value, {})
        outcome = normalise_record(rec, codec=codec, fingerprint=fingerprint, max_bytes=1 << 20)
        new = None
        for enc in outcome.orders:
            order_id = enc.record["order_id"]
            if order_id not in seen:
                seen.add(order_id)
                new = new or order_id
        out.append(Paced(raw, new))
    return out


def schedule(n: int, rate: float) -> Iterator[tuple[int, float]]:
    """(index, offset in seconds from the start) of each record at a steady rate."""
    for i in range(n):
        yield i, i / rate


@dataclass
class Probes:
    """API probes: threads that poll GET /orders/{id} until 200."""

    port: int
    timeout_s: float
    threads: int = 4
    todo: queue.Queue[tuple[str, float] | None] = field(default_factory=queue.Queue)
    latencies: list[float] = field(default_factory=list)
    timed_out: int = 0
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _abort: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Probes:
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def submit(self, order_id: str, received: float) -> None:
        self.todo.put((order_id, received))

    def _run(self) -> None:
        api = ApiClient(self.port)
        try:
            while (item := self.todo.get()) is not None:
                order_id, received = item
                latency = self._probe(api, order_id, received)
                with self._lock:
                    if latency is None:
                        self.timed_out += 1
                    else:
                        self.latencies.append(latency)
        finally:
            api.close()

    def _probe(self, api: ApiClient, order_id: str, received: float) -> float | None:
        path = f"/orders/{order_id}"
        while True:
            status, _ = api.get(path)
            now = time.time()
            if status == 200:
                return now - received
            waited = now - received
            if waited > self.timeout_s or self._abort.is_set():
                return None
            time.sleep(max(0.005, 0.1 * waited))

    def finish(self, abort: bool = False) -> None:
        """Let the queued probes finish (or give up at once with ``abort``); join the threads."""
        if abort:
            self._abort.set()
        for _ in self._workers:
            self.todo.put(None)
        for t in self._workers:
            t.join(self.timeout_s + 30)


class WorkerGroup:
    """``n`` worker processes of one deployment (same app id and topics; own port and state)."""

    def __init__(self, dep: Deployment, log: Path, n: int) -> None:
        from tests.live import free_port

        self.dep = dep
        self.workers = [BenchWorker(dep.settings, log)]
        for i in range(1, n):
            own = {
                "web_port": free_port(),
                "data_dir": dep.settings.data_dir.with_name(f"{dep.settings.data_dir.name}-w{i}"),
            }
            self.workers.append(BenchWorker(dep.settings.model_copy(update=own), log.with_suffix(f".w{i}.log")))

    def start(self) -> WorkerGroup:
        for worker in self.workers:
            worker.start()
        return self

    def wait_settled(self, timeout: float) -> None:
        """Until every worker serves and the orders.events partitions are split among them,
        each exactly once (a rebalance during the measurement would be measured)."""
        topic = self.dep.catalogue.orders_events.name
        expected = {f"{topic}:{p}" for p in range(self.dep.settings.partitions)}
        deadline = time.monotonic() + timeout
        while True:
            owned: list[set[str]] = []
            for worker in self.workers:
                worker.check_alive()
                status, body = worker.process.get("/health")
                ok = status == 200 and body.get("status") == "ok"
                owned.append(
                    {tp for tp in body.get("active_partitions", []) if tp.startswith(f"{topic}:")} if ok else set()
                )
            if all(owned) and sum(len(o) for o in owned) == len(expected) and set().union(*owned) == expected:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not settle on the partitions within {timeout:.0f} s: {owned}")
            time.sleep(0.5)

    def counter(self, name: str) -> float:
        return sum(worker.counter(name) for worker in self.workers)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def offered_load(
    dep: Deployment,
    paced: list[Paced],
    rate: float,
    duration_s: float,
    log: Path,
    *,
    warmup_s: float = 2.0,
    probes_per_s: float = 5.0,
    max_backlog_s: float = 5.0,
    max_lag_s: float = 1.0,
    probe_timeout_s: float = 60.0,
    workers: int = 1,
) -> dict[str, Any]:
    """Publish at ``rate`` records/s for ``warmup_s + duration_s``; measure the new orders
    published after the warm-up. With ``workers`` > 1, that many worker processes share the
    partitions (one consumer group); probes ask the first, which routes to each key's owner."""
    settings = dep.settings
    needed = int(rate * (warmup_s + duration_s))
    if len(paced) < needed:
        raise ValueError(f"need {needed} records for {rate}/s over {warmup_s + duration_s} s, have {len(paced)}")
    group = WorkerGroup(dep, log, workers).start()
    worker = group.workers[0]
    producer = Producer({**settings.kafka_config(), **PRODUCER_DEFAULTS})  # as a connector publishes
    probes = Probes(settings.web_port, probe_timeout_s)
    sent_at: dict[str, float] = {}
    saturated = False
    finished = False
    try:
        group.wait_settled(timeout=180)
        probes.start()
        new_share = sum(1 for p in paced[:needed] if p.new_order is not None) / max(needed, 1)
        probe_every = max(1, round(rate * new_share / probes_per_s))
        new_seen = 0
        start = time.perf_counter()
        measure_from = warmup_s
        sent = 0
        next_check = start + 1.0
        for i, offset in schedule(needed, rate):
            due = start + offset
            now = time.perf_counter()
            if due > now:
                producer.poll(0)
                time.sleep(due - now)
            item = paced[i]
            received = time.time()
            stamp = datetime.fromtimestamp(received, UTC).isoformat().encode()
            topic = dep.catalogue.raw(item.raw.source).name
            produce(producer, topic, item.raw.key, item.raw.value, headers={"received_at": stamp})
            sent += 1
            if item.new_order is not None and offset >= measure_from:
                sent_at[item.new_order] = received
                new_seen += 1
                if new_seen % probe_every == 0:
                    probes.submit(item.new_order, received)
            if time.perf_counter() >= next_check:
                next_check += 1.0
                producer.poll(0)
                backlog = sent - group.counter(RAW_COUNTER)
                if backlog > rate * max_backlog_s:
                    saturated = True
                    break
        producer.flush(60)
        load_s = time.perf_counter() - start
        load_end = time.monotonic()
        if sent - group.counter(RAW_COUNTER) > rate * max_lag_s:
            saturated = True  # more than max_lag_s of load still queued: the worker did not keep up
        drain_s: float | None = None
        try:
            drained = worker.wait_until(
                "backlog drained", lambda: group.counter(RAW_COUNTER) >= sent, probe_timeout_s, every=0.1
            )
            drain_s = drained - load_end
        except TimeoutError:
            saturated = True
        probes.finish()
        finished = True
        by_worker = [int(w.counter(RAW_COUNTER)) for w in group.workers]  # raw records each normaliser read
        processed = sum(by_worker)
    finally:
        if not finished:
            probes.finish(abort=True)
        group.stop()
    stored = first_write_ms(settings, dep.catalogue.orders_twin.name, {k.encode() for k in sent_at})
    store_lat = [stored[k.encode()] / 1000 - t for k, t in sent_at.items() if k.encode() in stored]
    return {
        "offered_per_s": rate,
        "workers": workers,
        "achieved_offered_per_s": sent / load_s,
        "duration_s": load_s,
        "records_sent": sent,
        "records_processed": int(processed),
        "records_processed_by_worker": by_worker,
        "saturated": saturated,
        "drain_s_after_load": drain_s,
        "api": {**summary_ms(probes.latencies), "timed_out": probes.timed_out},
        "store": {**summary_ms(store_lat), "missing": len(sent_at) - len(store_lat)},
    }
