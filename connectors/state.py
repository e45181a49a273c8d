"""Durable connector cursors in the compacted ``connector.state`` topic.

Key = connector name, value = JSON ``{"cursor": iso, "updated_at": iso, ...}``. The topic has
one partition, so the latest value of a key is the last one in partition 0; compaction
keeps the topic small. Kafka is the only store, so a connector moved to another host resumes
where it stopped, and nothing outside the cluster needs backing up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from connectors.errors import StateError
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue

log = logging.getLogger(__name__)

PARTITION = 0
# Errors seen while a just-created topic's leader is elected: wait, do not fail.
_SETTLING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._UNKNOWN_TOPIC,
}


class CursorStore:
    """Read and write cursors synchronously (``aload``/``asave`` run them off the loop)."""

    def __init__(self, settings: Settings, *, topic: str | None = None, timeout: float = 30.0) -> None:
        self.topic = topic or Catalogue.from_settings(settings).connector_state.name
        self._kafka = settings.kafka_config()
        self._timeout = timeout
        self._producer: Producer | None = None

    def load(self, name: str) -> dict[str, Any] | None:
        """The last value stored for ``name`` (None if never saved or deleted).

        Reads partition 0 from the beginning up to the high watermark observed at the start,
        so the answer includes every save acknowledged before this call.
        """
        consumer = Consumer(
            {
                **self._kafka,
                "group.id": f"ordertwin-state-reader-{uuid.uuid4()}",
                "enable.auto.commit": "false",
                "enable.partition.eof": "true",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            low, high = self._watermarks(consumer)
            if high <= low:
                return None
            consumer.assign([TopicPartition(self.topic, PARTITION, OFFSET_BEGINNING)])
            latest: bytes | None = None
            found = False
            wanted = name.encode("utf-8")
            while True:
                msg: Message | None = consumer.poll(self._timeout)
                if msg is None:
                    raise StateError(f"timed out reading {self.topic!r} up to offset {high} (cursor {name!r})")
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if (msg.offset() or 0) >= high:
                            break
                        continue
                    raise StateError(f"reading {self.topic!r}: {err.str()}")
                if msg.key() == wanted:
                    latest = msg.value()
                    found = True
                if (msg.offset() or 0) >= high - 1:
                    break
            if not found or latest is None:
                return None
            try:
                value = json.loads(latest)
            except ValueError as exc:
                raise StateError(f"cursor {name!r} in {self.topic!r} is not JSON") from exc
            if not isinstance(value, dict):
                raise StateError(f"cursor {name!r} in {self.topic!r} is not a JSON object")
            return value
        finally:
            consumer.close()

    def _watermarks(self, consumer: Consumer) -> tuple[int, int]:
        """Low/high offsets of partition 0, retrying while a new topic's leader settles."""
        tp = TopicPartition(self.topic, PARTITION)
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                low, high = consumer.get_watermark_offsets(tp, timeout=self._timeout)
                return int(low), int(high)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                settling = isinstance(err, KafkaError) and (err.retriable() or err.code() in _SETTLING)
                if not settling or time.monotonic() > deadline:
                    hint = " (does the topic exist? `ordertwin topics create`)" if settling else ""
                    raise StateError(f"cannot read offsets of {self.topic!r}: {exc}{hint}") from exc
                time.sleep(0.2)

    def save(self, name: str, value: Mapping[str, Any]) -> None:
        """Write ``value`` for ``name`` and wait until Kafka acknowledged it."""
        if self._producer is None:
            self._producer = Producer({**self._kafka, "enable.idempotence": "true", "acks": "all", "linger.ms": "0"})
        errors: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err.str())

        payload = json.dumps(dict(value), separators=(",", ":"), sort_keys=True).encode()
        try:
            self._producer.produce(
                self.topic,
                key=name.encode("utf-8"),
                value=payload,
                partition=PARTITION,
                on_delivery=on_delivery,
            )
        except (BufferError, KafkaException) as exc:
            raise StateError(f"cannot enqueue cursor {name!r} to {self.topic!r}: {exc}") from exc
        remaining = self._producer.flush(self._timeout)
        if errors or remaining:
            reason = "; ".join(errors) or f"unacknowledged after {self._timeout}s"
            raise StateError(f"cursor {name!r} not saved to {self.topic!r}: {reason}")
        log.debug("saved cursor %s = %s", name, value.get("cursor"))

    async def aload(self, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.load, name)

    async def asave(self, name: str, value: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self.save, name, value)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._timeout)
            self._producer = None
