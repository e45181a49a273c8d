"""``ordertwin notify``: deliver divergence alerts to WeCom / DingTalk group robots and webhooks.

See :mod:`ordertwin.notify.service` for the delivery guarantees (commit only after delivery,
batching into digests under a storm, per-robot rate limit, retries with exponential backoff).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, start_http_server

from ordertwin.avro import Codec
from ordertwin.errors import ConfigError
from ordertwin.notify.metrics import NotifyMetrics
from ordertwin.notify.render import Message, payload, zone
from ordertwin.notify.sender import post
from ordertwin.notify.service import Notifier, NotifyConfig, install_stop_signals
from ordertwin.notify.targets import Target, parse_targets
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue

log = logging.getLogger(__name__)

__all__ = ["Notifier", "NotifyConfig", "Target", "config_of", "parse_targets", "run_notify", "send_test"]


def config_of(settings: Settings) -> NotifyConfig:
    return NotifyConfig(
        batch_s=settings.notify_batch_s,
        individual_max=settings.notify_individual_max,
        retry_base_s=settings.notify_retry_base_s,
        retry_max_s=settings.notify_retry_max_s,
        http_timeout_s=settings.notify_http_timeout_s,
    )


def targets_of(settings: Settings) -> list[Target]:
    targets = parse_targets(settings.notify_targets, default_rate_per_min=settings.notify_rate_per_min)
    if not targets:
        raise ConfigError("no notify target configured: set ORDERTWIN_NOTIFY_TARGETS (JSON list)")
    return targets


def consumer_config(settings: Settings) -> dict[str, Any]:
    static = {"group.instance.id": settings.notify_instance_id} if settings.notify_instance_id else {}
    return {
        **settings.kafka_config(),
        **static,
        "group.id": settings.notify_group_id,
        "client.id": "ordertwin-notify",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.notify_offset_reset,
        # Blocking on a down receiver is by design: keep the partitions meanwhile (librdkafka max).
        "max.poll.interval.ms": 86_400_000,
    }


async def run_notify(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    registry: CollectorRegistry | None = None,
    config: NotifyConfig | None = None,
) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM when ``stop`` is None)."""
    from confluent_kafka import Consumer

    targets = targets_of(settings)
    tz = zone(settings.notify_timezone)
    codec = Codec.from_dir(settings.schemas_dir)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = NotifyMetrics(registry)
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    server = None
    if settings.notify_metrics_port > 0:
        server, _thread = start_http_server(
            settings.notify_metrics_port, addr=settings.notify_metrics_host, registry=registry
        )
    topic = Catalogue.from_settings(settings).alerts.name
    consumer = Consumer(consumer_config(settings))
    try:
        async with aiohttp.ClientSession() as session:
            notifier = Notifier(
                consumer=consumer,
                targets=targets,
                codec=codec,
                metrics=metrics,
                session=session,
                tz=tz,
                config=config or config_of(settings),
            )
            consumer.subscribe([topic], on_revoke=notifier.on_revoke)
            log.info(
                "notifying %s from %s (group %s)",
                ", ".join(f"{t.name} ({t.kind} {t.safe_url})" for t in targets),
                topic,
                settings.notify_group_id,
            )
            await notifier.run(stop)
    finally:
        await asyncio.to_thread(consumer.close)
        if server is not None:
            server.shutdown()
            server.server_close()


def sample_alert(now: datetime | None = None) -> dict[str, Any]:
    """A harmless test alert (``ordertwin notify --send-test``)."""
    now = now or datetime.now(UTC)
    return {
        "alert_id": "test-" + now.strftime("%Y%m%d%H%M%S"),
        "state": "RAISED",
        "rule": "notify_test",
        "severity": "INFO",
        "subject_type": "source",
        "subject": "ordertwin-notify",
        "channel": None,
        "subsystem": None,
        "expected": "this group receives ordertwin alerts",
        "observed": "a test message",
        "message": "ordertwin notify test message",
        "episode_started_at": now,
        "deadline": now + timedelta(seconds=0),
        "emitted_at": now,
        "resolved_at": None,
        "duration_ms": None,
        "details": {},
    }


async def send_test(settings: Settings) -> dict[str, str]:
    """Post one test message to every target; target name -> "ok" or why not."""
    tz = zone(settings.notify_timezone)
    results: dict[str, str] = {}
    alert = sample_alert()
    async with aiohttp.ClientSession() as session:
        for target in targets_of(settings):
            message = Message("alert", payload(target, "alert", [alert], tz), (alert,))
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            outcome = await post(session, target, message, now_ms=now_ms, timeout_s=settings.notify_http_timeout_s)
            results[target.name] = "ok" if outcome.ok else f"{outcome.reason}: {outcome.detail}"
    return results
