"""Control records: in-band watermarks that travel with the data they vouch for.

A connector that knows its source's data is complete up to time T (a pull window was
fully published) writes a control record to every partition of ``raw.<source>``, after
the data. The normaliser forwards it, per raw partition, to every partition of
``orders.events``, again after the events it derived from that raw partition. Per-partition
ordering in Kafka then guarantees the twin stage has seen every fact before the
watermark that says there are no more of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

CONTROL_HEADER = "ordertwin-control"
WATERMARK = b"watermark"


def is_watermark(headers: Mapping[str, bytes]) -> bool:
    return headers.get(CONTROL_HEADER) == WATERMARK


def headers_of(message: Any) -> dict[str, bytes]:
    """Faust/aiokafka headers (list of pairs or dict) -> dict of bytes."""
    headers = message.headers or {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {str(k): (v if isinstance(v, bytes) else str(v).encode()) for k, v in pairs if v is not None}


def raw_watermark_value(watermark: datetime, partitions: int, connector: str) -> bytes:
    """The JSON body a connector writes to ``raw.<source>`` (see ``parse_raw_watermark``)."""
    if watermark.tzinfo is None:
        raise ValueError("watermark must be timezone-aware")
    return json.dumps({"watermark": watermark.isoformat(), "partitions": partitions, "connector": connector}).encode()


def parse_raw_watermark(value: bytes | None) -> tuple[datetime, int, str]:
    """Raise ValueError with a reason when the control record is malformed."""
    if value is None:
        raise ValueError("watermark control record has no value")
    doc = json.loads(value)
    if not isinstance(doc, dict):
        raise ValueError("watermark control record is not a JSON object")
    wm = datetime.fromisoformat(str(doc["watermark"]))
    if wm.tzinfo is None:
        raise ValueError("watermark time has no timezone")
    partitions = doc["partitions"]
    if not isinstance(partitions, int) or partitions < 1:
        raise ValueError("watermark 'partitions' must be a positive integer")
    return wm, partitions, str(doc.get("connector", ""))
