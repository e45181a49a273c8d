"""Table stores are opened with bounded RocksDB memory, not Faust's 2 GiB cache per partition."""

from __future__ import annotations

from pathlib import Path

from ordertwin.settings import Settings
from streams.app import build


def test_tables_open_rocksdb_with_the_configured_memory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store="rocksdb://", store_block_cache_mib=8, store_write_buffer_mib=4)
    tables = build(settings).tables
    assert set(tables) == {"order_twin", "stock"}
    for table in tables.values():
        options = table.data.rocksdb_options
        assert options.block_cache_size == 8 << 20
        assert options.write_buffer_size == 4 << 20
        assert options.max_write_buffer_number == 2
