"""The worker keeps the configured log level: no DEBUG records built on the hot path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ordertwin.settings import REPO_ROOT

# Run in a child process: Faust's worker rewires the root logger and redirects stdout.
PROBE = """
import logging, sys
import faust
from ordertwin.settings import Settings
from streams.app import ServiceWorker, build

worker_class = ServiceWorker if sys.argv[1] == "service" else faust.Worker
app = build(Settings(app_id="test-logging")).app
worker = worker_class(app, loglevel=sys.argv[2], quiet=True)
worker._setup_logging()
names = ("", "faust.topics", "aiokafka.producer.producer")
with open(sys.argv[3], "w") as out:
    out.write(" ".join(str(logging.getLogger(n).isEnabledFor(logging.DEBUG)) for n in names))
"""


def _debug_enabled(kind: str, level: str, tmp_path: Path) -> str:
    out = tmp_path / f"{kind}-{level}.txt"
    subprocess.run([sys.executable, "-c", PROBE, kind, level, str(out)], cwd=REPO_ROOT, check=True, timeout=120)
    return out.read_text()


@pytest.mark.parametrize("level", ["warning", "error", "info"])
def test_service_worker_leaves_debug_off(level: str, tmp_path: Path) -> None:
    assert _debug_enabled("service", level, tmp_path) == "False False False"


def test_faust_worker_turns_debug_on_at_warning(tmp_path: Path) -> None:
    """Why ServiceWorker exists: Faust's own worker sets the root logger to DEBUG for its
    terminal spinner at WARNING, so every logger.debug in aiokafka and Faust builds a record."""
    assert _debug_enabled("faust", "warning", tmp_path) == "True True True"
