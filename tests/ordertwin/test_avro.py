"""Avro contracts: schema files compile, single-object framing is standard, round trips."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import avro.io
import avro.schema
import pytest

from ordertwin.avro import MAGIC, Codec, compile_schemas, load_schema_files
from ordertwin.errors import DecodeError, SchemaError
from ordertwin.settings import REPO_ROOT
from tests.helpers import CODEC

T = datetime(2026, 11, 11, 0, 5, tzinfo=UTC)
EVENT = {
    "event_id": "e1",
    "order_id": "taobao:1",
    "channel": "taobao",
    "source": "taobao",
    "system": "CHANNEL",
    "status": "PAID",
    "raw_status": "WAIT_SELLER_SEND_GOODS",
    "partial": False,
    "event_time": T,
    "ingest_time": T,
    "amount_minor": 25700,
    "currency": "CNY",
    "lines": [{"line_id": "9", "sku": "A-1", "qty": 2, "unit_price_minor": 100, "raw_status": None}],
    "warehouse": None,
    "carrier": None,
    "tracking_no": None,
    "address_fp": "ab",
    "lines_fp": "cd",
    "raw_topic": "raw.taobao",
    "raw_partition": 0,
    "raw_offset": 5,
}


def test_every_schema_file_is_one_documented_record_or_enum() -> None:
    docs = load_schema_files(REPO_ROOT / "schemas")
    for name, doc in docs.items():
        assert doc["namespace"] == "ordertwin", name
        assert doc.get("doc"), name
        for fld in doc.get("fields", []):
            assert fld.get("doc"), f"{name}: field {fld['name']} has no doc"
        if doc["type"] == "enum":
            assert doc.get("default") in doc["symbols"], f"{name}: enums need a default for evolution"


def test_round_trip_order_event() -> None:
    data = CODEC.encode("OrderEvent", EVENT)
    assert data[:2] == MAGIC
    name, back = CODEC.decode(data)
    assert name == "ordertwin.OrderEvent"
    assert back == EVENT


def test_framing_is_decodable_by_the_apache_avro_library() -> None:
    """A standard tool (Apache Avro) computes the same fingerprint and reads the body."""
    compiled = CODEC.schema("OrderEvent")
    apache = avro.schema.parse(compiled.canonical)
    # Apache returns the CRC-64-AVRO value big-endian; single-object framing is little-endian.
    assert apache.fingerprint("CRC-64-AVRO")[::-1] == compiled.fingerprint
    data = CODEC.encode("OrderEvent", EVENT)
    assert data[2:10] == compiled.fingerprint
    record = avro.io.DatumReader(apache).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert record["order_id"] == "taobao:1" and record["lines"][0]["qty"] == 2


def test_record_not_matching_the_schema_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="OrderEvent"):
        CODEC.encode("OrderEvent", {**EVENT, "status": "TELEPORTED"})
    with pytest.raises(SchemaError):
        CODEC.encode("OrderEvent", {k: v for k, v in EVENT.items() if k != "order_id"})


@pytest.mark.parametrize("data", [b"", b"{}", b"\xc3\x01" + b"\x00" * 8 + b"x", MAGIC + b"short"])
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(data)


def test_unresolvable_reference_is_reported() -> None:
    with pytest.raises(SchemaError, match="unresolvable"):
        compile_schemas(
            {
                "x.avsc": {
                    "type": "record",
                    "name": "X",
                    "namespace": "n",
                    "fields": [{"name": "y", "type": "n.Missing"}],
                }
            }
        )


def test_codec_reads_with_a_reader_schema() -> None:
    """Backward compatibility mechanics: an old writer, a newer reader with a defaulted field."""
    old = {"type": "record", "name": "R", "namespace": "t", "fields": [{"name": "a", "type": "int"}]}
    new = {
        "type": "record",
        "name": "R2",
        "namespace": "t",
        "aliases": ["t.R"],
        "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": "x"}],
    }
    codec = Codec(compile_schemas({"r.avsc": old, "r2.avsc": json.loads(json.dumps(new))}))
    _, rec = codec.decode(codec.encode("R", {"a": 1}), reader="R2")
    assert rec == {"a": 1, "b": "x"}


def _epoch_ms(value: object) -> object:
    """Every datetime in a decoded record as epoch milliseconds (what a plain decode gives)."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _epoch_ms(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch_ms(v) for v in value]
    return value


def test_plain_decode_is_the_record_with_timestamps_as_epoch_ms() -> None:
    data = CODEC.encode("OrderEvent", EVENT)
    plain = CODEC.decode_plain("OrderEvent", data)
    assert plain["event_time"] == int(T.timestamp() * 1000)
    assert plain == _epoch_ms(CODEC.decode_as("OrderEvent", data))


def test_plain_decode_refuses_other_schemas_and_old_versions() -> None:
    data = CODEC.encode("OrderEvent", EVENT)
    assert CODEC.is_current("OrderEvent", data) and not CODEC.is_current("OrderTwin", data)
    with pytest.raises(DecodeError):
        CODEC.decode_plain("OrderTwin", data)  # another schema's fingerprint
    with pytest.raises(DecodeError):
        CODEC.decode_plain("OrderEvent", data[:-3])  # truncated body
