"""Live-test helpers: a worker in its own process, and an independent topic reader."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from ordertwin.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that makes a child process build the same Settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(list(value) if isinstance(value, tuple) else value)
        env[f"ORDERTWIN_{name.upper()}"] = str(value)
    env.update(extra)
    return env


class WorkerProcess:
    """``ordertwin worker`` as a subprocess, so it can be killed like a real one."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{settings.web_port}"

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ordertwin.cli", "worker"],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_healthy(self, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}; log:\n{self.tail_log()}")
            status, body = self.get("/health")
            if status == 200 and body.get("status") == "ok" and body.get("active_partitions"):
                return body
            time.sleep(0.5)
        raise AssertionError(f"worker not healthy after {timeout}s; log:\n{self.tail_log()}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return 0, {}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail_log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def read_topic(settings: Settings, topic: str, *, idle_s: float = 3.0, max_s: float = 60.0) -> list[Any]:
    """Every record of a topic, by an independent consumer (no group, assign from start)."""
    consumer = Consumer(
        {**settings.kafka_config(), "group.id": "unused-independent-reader", "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        # Read to the end offsets as of now (plus idle wait for in-flight records).
        ends = {}
        for tp in tps:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            ends[tp.partition] = high
        consumer.assign(tps)
        out: list[Any] = []
        done = {p for p, h in ends.items() if h == 0}
        start = last = time.monotonic()
        while time.monotonic() - start < max_s:
            msg = consumer.poll(0.2)
            if msg is None:
                if len(done) == len(tps) and time.monotonic() - last > idle_s:
                    break
                continue
            if msg.error():
                continue
            out.append(msg)
            last = time.monotonic()
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return out
    finally:
        consumer.close()
