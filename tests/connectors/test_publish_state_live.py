"""RawPublisher and CursorStore against the real local broker (never a mock)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.errors import PublishError
from connectors.publish import RawPublisher
from connectors.state import CursorStore
from ordertwin.admin import delete_topics
from ordertwin.settings import Settings
from ordertwin.topics import Catalogue
from tests.live import read_topic

pytestmark = pytest.mark.live


def test_cursor_store_round_trip(live_settings: Settings) -> None:
    store = CursorStore(live_settings, timeout=15)
    try:
        assert store.load("taobao") is None
        store.save("taobao", {"cursor": "2026-11-11T00:00:00+00:00", "updated_at": "x"})
        store.save("jd", {"cursor": "2026-11-10T00:00:00+00:00", "updated_at": "y"})
        store.save("taobao", {"cursor": "2026-11-11T00:30:00+00:00", "updated_at": "z", "records": 3})
        assert store.load("taobao") == {"cursor": "2026-11-11T00:30:00+00:00", "updated_at": "z", "records": 3}
        assert store.load("jd") == {"cursor": "2026-11-10T00:00:00+00:00", "updated_at": "y"}
        assert store.load("pdd") is None
        # A fresh store (another process) sees the same thing.
        assert CursorStore(live_settings).load("taobao") == store.load("taobao")
    finally:
        store.close()


def test_publisher_headers_and_acknowledged_count(live_settings: Settings) -> None:
    topic = Catalogue.from_settings(live_settings).raw("taobao").name
    publisher = RawPublisher(live_settings, source="taobao")
    received = datetime(2026, 11, 11, 0, 0, 0, 123000, tzinfo=UTC)
    for i in range(5):
        publisher.publish(topic, f"{i}".encode(), b'{"tid":%d}' % i, {"x-extra": "1"}, received_at=received)
    assert publisher.flush(30) == 5
    msgs = read_topic(live_settings, topic, idle_s=1)
    assert sorted(m.key() for m in msgs) == [b"0", b"1", b"2", b"3", b"4"]
    headers = dict(msgs[0].headers())
    assert headers["source"] == b"taobao"
    assert headers["received_at"] == b"2026-11-11T00:00:00.123+00:00"
    assert headers["connector"] == live_settings.connector_instance.encode()
    assert len(headers["delivery_id"]) == 36 and headers["x-extra"] == b"1"


def test_failed_delivery_is_raised_not_forgotten(live_settings: Settings) -> None:
    topic = f"{live_settings.topic_prefix}tiny"
    admin = AdminClient(live_settings.kafka_config())
    for fut in admin.create_topics([NewTopic(topic, 1, config={"max.message.bytes": "1024"})]).values():
        fut.result()
    publisher = RawPublisher(live_settings, source="taobao")
    try:
        publisher.publish(topic, b"ok", b"small")
        assert publisher.flush(30) == 1
        publisher.publish(topic, b"big", os.urandom(8192))  # incompressible, over the topic limit
        with pytest.raises(PublishError) as info:
            publisher.flush(30)
        assert [f.key for f in info.value.failures] == [b"big"]
        assert "too large" in str(info.value).lower()
        publisher.publish(topic, b"after", b"small")
        assert publisher.flush(30) == 1  # failures are reported once; the publisher goes on
    finally:
        delete_topics(live_settings.kafka_config(), [topic])
