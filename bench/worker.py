"""One ``ordertwin worker`` process under measurement: RSS and CPU from /proc, counters
from its /metrics, twins from its API.

Wraps :class:`tests.live.WorkerProcess` (the same subprocess the live tests kill and
restart), adding what the benchmarks read about it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ordertwin.settings import Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS = resident now, VmHWM = peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of one metric (all label sets) in Prometheus text format."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text))


class ApiClient:
    """A keep-alive HTTP client for the worker API (one per thread)."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self._conn.request("GET", path)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    return 0, b""
        return 0, b""

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class BenchWorker:
    """A worker subprocess with the readings the benchmarks need."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        from tests.live import WorkerProcess

        self.settings = settings
        self.process = WorkerProcess(settings, log_path)
        self.api = ApiClient(settings.web_port)

    def start(self) -> BenchWorker:
        self.process.start()
        return self

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def alive(self) -> bool:
        return self.process.proc is not None and self.process.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"worker exited; log:\n{self.process.tail_log()}")

    def rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmHWM") / 1024

    def cpu_s(self) -> float:
        return proc_cpu_s(self.pid)

    def metrics(self) -> str:
        status, body = self.api.get("/metrics")
        return body.decode() if status == 200 else ""

    def counter(self, name: str) -> float:
        return metric_sum(self.metrics(), name)

    def twin_status(self, order_id: str) -> int:
        """HTTP status of GET /orders/{id}: 200 once the twin is visible, 404 before."""
        return self.api.get(f"/orders/{order_id}")[0]

    def twin(self, order_id: str) -> dict[str, Any] | None:
        status, body = self.api.get(f"/orders/{order_id}")
        return json.loads(body) if status == 200 else None

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float, every: float = 0.5) -> float:
        """Poll ``check`` until true; returns the monotonic time it became true."""
        deadline = time.monotonic() + timeout
        while True:
            if check():
                return time.monotonic()
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f} s; log:\n{self.process.tail_log(20)}")
            time.sleep(every)

    def wait_quiet(self, cpu_share: float = 0.05, window: float = 1.0, timeout: float = 600.0) -> float:
        """Wait until the worker uses less than ``cpu_share`` of a core over ``window`` seconds
        (its backlog is done); returns the monotonic time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_s()
            time.sleep(window)
            self.check_alive()
            if self.cpu_s() - before < cpu_share * window:
                return time.monotonic()
        raise TimeoutError(f"worker still busy after {timeout:.0f} s")

    def stop(self) -> None:
        self.api.close()
        self.process.stop(timeout=60)
