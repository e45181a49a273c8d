"""The inventory stage's records on the wire: standalone-decodable by a standard Avro library.

StockState nests records whose own fields use other named types (ReservationChange ->
ReservationState); its canonical form must define each at first use, so Apache Avro
computes the same single-object fingerprint from it.
"""

from __future__ import annotations

import io

import avro.io
import avro.schema
import pytest

from tests.helpers import CODEC
from tests.streams.inventory.facts import change, snapshot

INVENTORY = ("ReservationChange", "StockState", "InventoryLevel", "ChannelStockLock", "InventoryEvent")


@pytest.mark.parametrize("name", INVENTORY)
def test_apache_avro_computes_our_fingerprint(name: str) -> None:
    compiled = CODEC.schema(name)
    apache = avro.schema.parse(compiled.canonical)
    assert apache.fingerprint("CRC-64-AVRO")[::-1] == compiled.fingerprint


def test_a_stock_row_round_trips_and_apache_reads_it() -> None:
    from streams.inventory import stock

    row = stock.apply_change(
        stock.apply_event(stock.empty("A"), snapshot("HZ01", 3, 0, sku="A")),
        change("jd:1", "RESERVED", 1, version=1, sku="A"),
    )
    data = CODEC.encode("StockState", row)
    assert CODEC.decode_as("StockState", data) == row
    apache = avro.schema.parse(CODEC.schema("StockState").canonical)
    back = avro.io.DatumReader(apache).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert back["open"]["jd:1|0"]["state"] == "RESERVED"
