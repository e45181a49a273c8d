"""A Faust sensor that measures the order flow as the twin sees it, without touching the agents.

After the twin agent has processed an ``orders.events`` record (``on_stream_event_out``), it
observes:

- ``ordertwin_event_to_twin_seconds{system}``: the fact's event time (the source's own clock)
  to now, i.e. *channel to twin* for ``system="CHANNEL"`` -- the order sync delay indicator;
- ``ordertwin_twin_facts_total{system,status}``: facts by reporting system and canonical
  status (``WMS``/``OUTBOUND`` is the outbound volume the shipping-status gap is relative to).

Watermark control records are skipped. Each (partition, offset) is observed once even if
another stream ever reads the same topic. A record that does not decode is ignored here (the
agent counts it as ``undecodable``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from faust.sensors import Sensor

from ordertwin.avro import Codec
from ordertwin.errors import OrdertwinError
from streams.control import headers_of, is_watermark
from streams.metrics import PipelineMetrics

log = logging.getLogger(__name__)


class TwinFlowSensor(Sensor):
    """Observes each orders.events record once, after the stream has processed it."""

    def __init__(
        self,
        *,
        topic: str,
        codec: Codec,
        metrics: PipelineMetrics,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.codec = codec
        self.metrics = metrics
        self.clock = clock
        self._last: dict[int, int] = {}  # partition -> last observed offset

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: dict[str, Any] | None = None
    ) -> None:
        if tp.topic != self.topic:
            return
        if offset <= self._last.get(tp.partition, -1):
            return
        self._last[tp.partition] = offset
        try:
            self.observe(headers_of(event.message), event.value)
        except Exception:  # a sensor must never break the stream
            log.debug("flow sensor could not observe %s[%s]@%s", tp.topic, tp.partition, offset, exc_info=True)

    def observe(self, headers: dict[str, bytes], value: Any) -> bool:
        """Record one processed fact; False when it is not an order event."""
        if not isinstance(value, bytes) or is_watermark(headers):
            return False
        try:
            # Plain: the agent has decoded this record already; three fields are needed here.
            record = self.codec.decode_plain("OrderEvent", value)
        except OrdertwinError:
            try:
                record = self.codec.decode_as("OrderEvent", value)  # an older release's event
            except OrdertwinError:
                return False
        system = str(record["system"])
        self.metrics.twin_facts.labels(system, str(record["status"])).inc()
        at = record["event_time"]
        delay = self.clock() - (at / 1000 if isinstance(at, int) else at.timestamp())
        self.metrics.event_to_twin.labels(system).observe(max(delay, 0.0))
        return True
