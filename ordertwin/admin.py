"""Apply the topic catalogue through the Kafka Admin API (safe to re-run)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from ordertwin.errors import OrdertwinError
from ordertwin.topics import TopicSpec

log = logging.getLogger(__name__)


def create_topics(
    kafka_config: dict[str, Any],
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create missing topics; existing ones are left alone. Returns name -> outcome."""
    admin = AdminClient(kafka_config)
    specs = list(specs)
    existing = set(admin.list_topics(timeout=timeout).topics)
    outcome: dict[str, str] = {s.name: "exists" for s in specs if s.name in existing}
    todo = [s for s in specs if s.name not in existing]
    if not todo:
        return outcome
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, replication_factor=replication_factor, config=s.config()) for s in todo],
        request_timeout=timeout,
    )
    errors = []
    for name, fut in futures.items():
        try:
            fut.result()
            outcome[name] = "created"
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() == 36:  # TOPIC_ALREADY_EXISTS: a concurrent creator won
                outcome[name] = "exists"
            else:
                errors.append(f"{name}: {err.str()}")
    if errors:
        raise OrdertwinError("could not create topics: " + "; ".join(errors))
    return outcome


def delete_topics(kafka_config: dict[str, Any], names: Iterable[str], timeout: float = 30.0) -> None:
    """Delete topics (used by tests to clean up their throwaway topics)."""
    admin = AdminClient(kafka_config)
    names = [n for n in names if n in admin.list_topics(timeout=timeout).topics]
    if not names:
        return
    for fut in admin.delete_topics(names, operation_timeout=timeout).values():
        try:
            fut.result()
        except KafkaException as exc:  # already gone is fine
            log.warning("delete topic: %s", exc)
