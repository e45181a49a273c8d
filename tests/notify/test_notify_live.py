"""``ordertwin notify`` end to end on the real broker: alerts on the alerts topic reach a WeCom
robot and a generic webhook (a local aiohttp receiver) -- none lost across a receiver outage and a
SIGKILL of the notifier, offsets committed only once delivered, a backlog sent as a digest.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from tests.helpers import CODEC
from tests.live import free_port, settings_env
from tests.notify.fakes import alert
from tests.notify.receiver import Receiver

pytestmark = [pytest.mark.live, pytest.mark.slow]


def _produce(settings: Settings, alerts: list[dict[str, Any]]) -> None:
    producer = Producer({**settings.kafka_config(), "acks": "all", "enable.idempotence": True})
    topic = Catalogue.from_settings(settings).alerts.name
    for a in alerts:
        producer.produce(topic, key=a["subject"].encode(), value=CODEC.encode("Alert", a))
    assert producer.flush(30) == 0


def _offsets(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    """(committed offset of the notifier group, end offset) per partition of the alerts topic."""
    topic = Catalogue.from_settings(settings).alerts.name
    probe = Consumer({**settings.kafka_config(), "group.id": settings.notify_group_id, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        committed = {tp.partition: tp.offset for tp in probe.committed(parts, timeout=10)}
        ends = {
            p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(settings.partitions)
        }
        return committed, ends
    finally:
        probe.close()


def _delivered_ids(receiver: Receiver) -> set[tuple[str, str]]:
    return {(a["alert_id"], a["state"]) for r in receiver.ok_requests("webhook") for a in r.json["alerts"]}


async def _until(check: Any, within: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


async def test_notify_delivers_every_alert_and_commits_only_after(live_settings: Settings, tmp_path: Path) -> None:
    receiver = await Receiver(webhook_secret="e2e-secret").start()
    settings = live_settings.model_copy(
        update={
            "notify_targets": receiver.targets("wecom", "webhook"),
            "notify_group_id": f"{live_settings.app_id}-notify",
            "notify_instance_id": "notify-e2e",  # static membership: a restart takes over at once
            "notify_batch_s": 0.5,
            "notify_retry_base_s": 0.1,
            "notify_retry_max_s": 0.5,
            "notify_metrics_port": free_port(),
            "log_format": "json",
        }
    )
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ordertwin.cli", "notify"],
            env=settings_env(settings),
            stdout=(tmp_path / f"notify-{len(procs)}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    first = [alert(i) for i in range(30)] + [alert(i, state="RESOLVED") for i in range(5)]
    try:
        # The robots are down: the notifier retries, and commits nothing.
        receiver.set_default("wecom", 503, {"error": "unavailable"})
        receiver.set_default("webhook", 502, {"error": "bad gateway"})
        _produce(settings, first)
        notify = start()
        await _until(lambda: len(receiver.requests) >= 6, 60, "delivery attempts")
        committed, ends = _offsets(settings)
        assert sum(ends.values()) == len(first)
        assert all(off < 0 for off in committed.values()), committed  # nothing committed

        # Crash while failing: nothing was committed, so nothing is lost.
        notify.send_signal(signal.SIGKILL)
        await asyncio.to_thread(notify.wait, 10)
        await asyncio.sleep(0.5)  # the receiver answers (503) what the dead process had already sent
        receiver.set_default("wecom", 200)
        receiver.set_default("webhook", 200)
        notify = start()
        await _until(lambda: _offsets(settings)[0] == _offsets(settings)[1], 60, "offsets committed to the end")
        assert _delivered_ids(receiver) == {(a["alert_id"], a["state"]) for a in first}
        wecom = [r.json["markdown"]["content"] for r in receiver.ok_requests("wecom")]
        assert len(wecom) == 1 and wecom[0].startswith("### ordertwin: 35 alerts (30 raised, 5 resolved)"), wecom

        # Steady state: a couple of new alerts go out one message each.
        later = [alert(100, rule="cancel_not_in_wms"), alert(101, rule="address_not_in_wms")]
        _produce(settings, later)
        await _until(lambda: len(receiver.ok_requests("wecom")) == 3, 60, "two individual messages")
        await _until(lambda: _offsets(settings)[0] == _offsets(settings)[1], 60, "offsets committed again")
        contents = [r.json["markdown"]["content"] for r in receiver.ok_requests("wecom")[1:]]
        assert sorted(c.split("\n")[0] for c in contents) == [
            '### ordertwin: <font color="warning">RAISED</font> address_not_in_wms (CRITICAL)',
            '### ordertwin: <font color="warning">RAISED</font> cancel_not_in_wms (CRITICAL)',
        ]
        assert _delivered_ids(receiver) >= {(a["alert_id"], "RAISED") for a in later}

        # Graceful stop; JSON logs never contain the robot key.
        notify.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(notify.wait, 30) == 0
        log = "".join((tmp_path / f"notify-{i}.log").read_text(errors="replace") for i in range(len(procs)))
        assert '"service": "notify"' in log and "693a91f6-test-key" not in log
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await receiver.close()
