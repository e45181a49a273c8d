"""Shared fixtures. Live tests run against the real local broker (never a mock).

``make test`` starts the broker; when pytest runs alone, the ``kafka`` fixture starts it
on first use and stops it at the end of the session (only if it started it).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from ordertwin.admin import create_topics, delete_topics
from ordertwin.settings import REPO_ROOT, Settings
from ordertwin.topics import Catalogue

BOOTSTRAP = os.environ.get("ORDERTWIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"


def broker_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    try:
        AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000}).list_topics(timeout=timeout)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap address of a running broker; starts the local one if nothing answers."""
    started = False
    if not broker_answers(BOOTSTRAP):
        subprocess.run(["bash", str(KAFKA_SH), "up"], check=True)
        started = True
        assert broker_answers(BOOTSTRAP, timeout=20), "local Kafka did not come up"
    yield BOOTSTRAP
    if started:
        subprocess.run(["bash", str(KAFKA_SH), "down"], check=False)


@pytest.fixture
def live_settings(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings on throwaway topics (uuid prefix) and a fresh consumer group; topics created."""
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=kafka,
        topic_prefix=f"t{run}.",
        app_id=f"ordertwin-test-{run}",
        data_dir=tmp_path_factory.mktemp(f"worker-{run}"),
        connector_instance=f"test-{run}",
    )
    catalogue = Catalogue.from_settings(settings)
    create_topics(settings.kafka_config(), catalogue.all())
    yield settings
    if os.environ.get("ORDERTWIN_KEEP_TEST_TOPICS"):
        return  # for post-mortems of a failed live test
    names = [s.name for s in catalogue.all()]
    admin = AdminClient(settings.kafka_config())
    names += [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.app_id)]
    delete_topics(settings.kafka_config(), names)
