"""Minimal downstream consumer of orders.events: confluent-kafka + fastavro, nothing else.

Usage: python docs/example_consumer.py [bootstrap] [topic] [max_records]
"""

import io
import json
import pathlib
import sys

import fastavro
from confluent_kafka import Consumer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "schemas"
named: dict = {}
pending = [json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.avsc"))]
while pending:  # files reference each other by name: parse until all resolve
    for doc in list(pending):
        try:
            parse_schema(doc, named)
            pending.remove(doc)
        except fastavro.schema.UnknownType:
            pass
raw = json.loads((SCHEMAS / "order_event.avsc").read_text())
schema = parse_schema(raw, dict(named))
fp = int(fingerprint(to_parsing_canonical_form(parse_schema(raw, dict(named), expand=True)), "CRC-64-AVRO"), 16)

bootstrap, topic = (sys.argv[1:3] + ["127.0.0.1:9092", "orders.events"][len(sys.argv[1:3]) :])[:2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "example-wms-sync", "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
seen = 0
while not limit or seen < limit:
    msg = consumer.poll(1.0)
    if msg is None or msg.error() or dict(msg.headers() or []).get("ordertwin-control"):
        continue  # nothing yet, an error to log, or a watermark control record
    value = msg.value()
    if value[:2] != b"\xc3\x01" or int.from_bytes(value[2:10], "little") != fp:
        continue  # not an OrderEvent of this schema version
    order = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
    print(order["order_id"], order["source"], order["status"], order["event_time"].isoformat(), flush=True)
    seen += 1
consumer.close()
