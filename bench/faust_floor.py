"""The framework's floor: a Faust worker whose only agent forwards each raw record unchanged
to a sink topic, configured like the real worker (same broker settings, acks, linger).

What one Faust hop (consume, dispatch to an agent, send) costs per record bounds what any
pipeline of N such hops in one process can reach, whatever its agents do; compared with the
confluent-kafka passthrough it separates the framework's cost from ours.

Run by :func:`bench.throughput.faust_floor` as ``python -m bench.faust_floor`` with the
worker's ``ORDERTWIN_*`` environment.
"""

from __future__ import annotations

from typing import Any

import faust

from ordertwin.settings import Settings
from ordertwin.topics import SOURCES, Catalogue


def build(settings: Settings) -> faust.App:
    from bench.broker import FLOOR_SINK

    cat = Catalogue.from_settings(settings)
    app = faust.App(
        f"{settings.app_id}-floor",
        broker=[f"kafka://{h.strip()}" for h in settings.bootstrap_servers.split(",") if h.strip()],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.partitions,
        producer_acks=-1,
        producer_linger_ms=settings.producer_linger_ms,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
    )
    raw = app.topic(*[cat.raw(s).name for s in SOURCES], key_serializer="raw", value_serializer="raw")
    sink = app.topic(cat.name(FLOOR_SINK), key_serializer="raw", value_serializer="raw")

    async def forward(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value)

    app.agent(raw, name="forward")(forward)
    return app


def main() -> None:
    from streams.app import ServiceWorker

    settings = Settings()
    ServiceWorker(build(settings), loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
