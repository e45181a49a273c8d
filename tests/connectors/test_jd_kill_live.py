"""Crash safety of a real connector process: ``python -m ordertwin.cli connector jd`` is
killed with SIGKILL while it waits on a (slow) JOS answer, then started again.

No order is lost (every id is in ``raw.jd``, byte-identical), and the restarted process
resumed from the cursor stored in ``connector.state``: its first window starts at that cursor
minus the overlap, not at ``pull_start``, and only the window in flight at the kill (plus
the overlap) was published twice.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.jd.simulator import FaultConfig, RunningSimulator
from connectors.pull import floor_time
from connectors.runner import start_simulator
from connectors.state import CursorStore
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from streams.control import is_watermark
from tests.live import read_topic, settings_env

pytestmark = pytest.mark.live

N_ORDERS = 400
WINDOW = timedelta(minutes=15)
OVERLAP = timedelta(seconds=5)
KILL_AFTER_WINDOWS = 6


def spawn(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ordertwin.cli", "connector", "jd"],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


async def stored_cursor(store: CursorStore) -> datetime | None:
    value = await asyncio.to_thread(store.load, "jd")
    return None if value is None else datetime.fromisoformat(value["cursor"])


async def wait_for(condition: Any, proc: subprocess.Popen[bytes], log: Path, *, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"connector exited {proc.returncode} while waiting for {what}; log:\n{tail(log)}")
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; log:\n{tail(log)}")


async def test_sigkill_mid_run_loses_nothing_and_the_restart_resumes_from_the_stored_cursor(
    live_settings: Settings, tmp_path: Path
) -> None:
    data_end = datetime.now(UTC) - timedelta(minutes=2)
    running: RunningSimulator = await start_simulator(
        "jd",
        live_settings,
        n_orders=N_ORDERS,
        seed=7,
        start=data_end - timedelta(hours=6),
        end=data_end,
        faults=FaultConfig(slow_every=1, slow_seconds=0.3, rate_limit_every=9),  # every answer is slow
        host="127.0.0.1",
        port=0,
    )
    sim = running.simulator
    pull_start = floor_time(datetime.now(UTC) - timedelta(hours=7), timedelta(seconds=1))
    settings = live_settings.model_copy(
        update={
            "jd_base_url": running.url,
            "jd_page_size": 20,
            "pull_start": pull_start.isoformat(),
            "pull_window_s": WINDOW.total_seconds(),
            "pull_overlap_s": OVERLAP.total_seconds(),
            "pull_safety_lag_s": 2.0,
            "poll_interval_s": 0.5,
            "backoff_s": (0.05, 0.1, 0.2),
            "connector_metrics_port": 0,
        }
    )
    store = CursorStore(settings)
    log = tmp_path / "connector-jd.log"
    first = spawn(settings, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        # 1. Let it save a few windows, then kill it while a JOS call is being answered.
        threshold = pull_start - OVERLAP + KILL_AFTER_WINDOWS * (WINDOW - OVERLAP)

        async def mid_run() -> bool:
            cursor = await stored_cursor(store)
            return cursor is not None and cursor >= threshold and sim.in_flight > 0

        await wait_for(mid_run, first, log, within_s=120, what=f"{KILL_AFTER_WINDOWS} windows")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        killed_at = await stored_cursor(store)
        assert killed_at is not None and killed_at < data_end  # it really was mid-run
        calls_before_restart = sim.stats["calls"]

        # 2. Restart; it must catch up to the end of the data.
        second = spawn(settings, log)

        async def caught_up() -> bool:
            cursor = await stored_cursor(store)
            return cursor is not None and cursor > data_end

        await wait_for(caught_up, second, log, within_s=180, what="the restarted connector to catch up")
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
        assert sim.stats["calls"] > calls_before_restart
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        await running.close()

    # 3. No record lost: every order id, byte for byte.
    catalogue = Catalogue.from_settings(settings)
    messages = read_topic(settings, catalogue.raw("jd").name)
    data = [m for m in messages if not is_watermark(dict(m.headers() or []))]
    current = sim.store.raw_by_key()
    seen: dict[str, list[bytes]] = {}
    for m in data:
        seen.setdefault(m.key().decode(), []).append(m.value())
    assert set(seen) == set(current)
    assert all(value == current[key] for key, values in seen.items() for value in values)

    # 4. The restart resumed from the stored cursor instead of starting over.
    saves = [json.loads(m.value()) for m in read_topic(settings, catalogue.connector_state.name) if m.key() == b"jd"]
    cursors = [datetime.fromisoformat(s["cursor"]) for s in saves]
    assert cursors == sorted(cursors) and killed_at in cursors
    resumed = saves[max(i for i, c in enumerate(cursors) if c == killed_at) + 1]  # the first save after the kill
    assert datetime.fromisoformat(resumed["window_start"]) == floor_time(killed_at - OVERLAP, timedelta(seconds=1))
    assert datetime.fromisoformat(resumed["window_start"]) >= threshold - OVERLAP > pull_start + 5 * WINDOW
    # Published twice: at most the orders of the window in flight at the kill and the overlap.
    lo, hi = killed_at - OVERLAP - timedelta(seconds=1), killed_at + WINDOW + timedelta(seconds=1)
    repeatable = sum(1 for order in sim.store if lo <= order.modified <= hi)
    assert len(data) - N_ORDERS <= repeatable < N_ORDERS // 4
