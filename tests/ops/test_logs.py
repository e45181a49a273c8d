"""Structured logs (ORDERTWIN_LOG_FORMAT=json) and the PII redaction filter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ordertwin.logs import REDACTED, JsonFormatter, RedactFilter, logging_config, redact, setup_logging
from tests.helpers import fixture_bytes


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ('{"receiver_name": "张三", "receiver_mobile": "13812345678"}', ["张三", "13812345678"]),
        (
            '{"receiver_name":"张**","receiver_mobile":"138****1234","receiver_address":"文一西路***号"}',
            ["张**", "138****1234", "文一西路"],
        ),
        ("receiverName=Zhang San&receiverPhone=13812345678&x=1", ["Zhang", "San", "13812345678"]),
        ("'consignee': 'Li Si', 'tel': '0571-88886666'", ["Li Si", "0571-88886666"]),
        (
            "post_receiver=王五 post_tel=15900001111 post_addr=上海市浦东新区世纪大道100号",
            ["王五", "15900001111", "世纪大道"],
        ),
        ("收货人：张三 手机：13912345678 地址：浙江省杭州市余杭区文一西路969号", ["张三", "13912345678", "文一西路"]),
        ("buyer called from +86 138 1234 5678 about the parcel", ["138 1234 5678"]),
        ("deliver to 广东省深圳市南山区科技园路1号 today", ["科技园路", "南山区"]),
        ("fullAddress: 'Room 5, 1 Main St', phone: 555", ["Main St", "555"]),
    ],
)
def test_personal_data_is_redacted(text: str, leaked: list[str]) -> None:
    out = redact(text)
    assert REDACTED in out
    for value in leaked:
        assert value not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "order taobao:3987215540123456829 moved to PAID at 2026-11-25T10:00:00+08:00",
        "order jd:13812345678 is a JD order id, not a phone",
        "carrier SF tracking SF1234567890123, ZTO 731234567890123",
        "event_time_ms=1764100000000 offset=13912345678901",
        '{"address_fp": "4ad3654d9f", "lines_fp": "ab12", "warehouse": "WH-HZ-01", "source": "wms"}',
        "raw.taobao[3]@12345 dead-lettered: INVALID_JSON",
    ],
)
def test_operational_data_is_kept(text: str) -> None:
    assert redact(text) == text


def test_a_whole_raw_payload_in_a_log_line_loses_its_receiver_fields() -> None:
    raw = fixture_bytes("taobao", "wait_seller_send_goods.json").decode()
    out = redact(f"could not map {raw}")
    for value in ("张**", "138****1234", "文一西路***号"):
        assert value not in out
    for kept in ('"tid": 3987215540123456829', '"status": "WAIT_SELLER_SEND_GOODS"', '"payment": "257.00"'):
        assert kept in out


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _logger_to(stream: io.StringIO, formatter: logging.Formatter) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactFilter())
    log = logging.getLogger("ordertwin.test.logs")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def test_json_lines_with_extra_fields_and_exceptions_are_redacted() -> None:
    stream = io.StringIO()
    log = _logger_to(stream, JsonFormatter(service="connector:taobao"))
    try:
        raise ValueError("bad record receiver_mobile=13800001111")
    except ValueError:
        log.exception(
            "rejected %s from %s",
            '{"receiver_name": "张三"}',
            "raw.taobao",
            extra={"order_id": "taobao:1", "receiver_phone": "13900002222", "payload": {"receiver_address": "x路1号"}},
        )
    doc = json.loads(stream.getvalue())
    assert doc["level"] == "ERROR" and doc["service"] == "connector:taobao" and doc["logger"] == "ordertwin.test.logs"
    assert doc["message"] == f'rejected {{"receiver_name": "{REDACTED}"}} from raw.taobao'
    assert doc["order_id"] == "taobao:1"
    assert doc["receiver_phone"] == REDACTED
    assert doc["payload"] == {"receiver_address": REDACTED}
    assert "ValueError: bad record receiver_mobile=[REDACTED]" in doc["exc"]
    assert "13800001111" not in stream.getvalue() and "13900002222" not in stream.getvalue()
    assert doc["ts"].endswith("+00:00") and isinstance(doc["pid"], int)


def test_text_format_is_redacted_too() -> None:
    stream = io.StringIO()
    log = _logger_to(stream, logging.Formatter("%(levelname)s %(message)s"))
    log.warning("address changed to %s", "浙江省杭州市西湖区文三路90号")
    assert stream.getvalue() == f"WARNING address changed to {REDACTED}\n"


def test_setup_logging_json(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json", "info", "notify")
    logging.getLogger("ordertwin.anything").info("delivered %d alerts to %s", 3, "ops receiver_name=赵六")
    err = capsys.readouterr().err.strip().splitlines()
    doc = json.loads(err[-1])
    assert doc["message"] == f"delivered 3 alerts to ops receiver_name={REDACTED}"
    assert doc["service"] == "notify" and doc["level"] == "INFO"


def test_logging_config_shapes() -> None:
    text = logging_config("text", "debug", "worker")
    assert text["root"]["level"] == "DEBUG" and "format" in text["formatters"]["ordertwin"]
    assert text["handlers"]["console"]["filters"] == ["redact"]
    assert logging_config("json", "info", "worker")["formatters"]["ordertwin"]["service"] == "worker"
    with pytest.raises(ValueError, match="json"):
        logging_config("xml", "info", "worker")
