"""Logging for every ordertwin process: text or JSON lines, always through a PII redaction filter.

``ORDERTWIN_LOG_FORMAT=json`` makes the worker, the connectors and the notifier write one JSON
object per line (``ts``, ``level``, ``logger``, ``message``, ``service``, ``pid``, any ``extra=``
fields, ``exc``). Whatever the format, :class:`RedactFilter` masks receiver names, phone numbers
and addresses if they ever reach a log line (a raw payload in an error message, an ``extra``
field): by key (``receiver_name=…``, ``"receiver_mobile": "…"``, ``收货人：…``) and by shape
(mainland mobile and landline numbers, Chinese postal addresses). Platforms already mask most of
these fields; this is the net under that.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"

# Keys whose values are personal data. Matched case-insensitively as a whole key (JSON, k=v, k: v).
_PII_KEY = (
    r"(?:receiver|consignee|recipient|buyer|contact|shipping|ship_?to|post|to|sender)[_-]?"
    r"(?:name|nick|mobile|phone|tel|telephone|address|addr|detail|detail_?address|full_?address|"
    r"state|province|city|district|town|street|zip|zipcode|postcode)"
    r"|(?:post_)?receiver|consignee|recipient|addressee"
    r"|(?:full_?|detail_?|street_?)?address(?:[_-]?(?:line)?[12])?|addr"
    r"|mobile(?:[_-]?phone)?|(?:tele)?phone(?:[_-]?(?:number|no))?|tel"
    r"|full_?name|first_?name|last_?name|real_?name|id_?card(?:[_-]?no)?"
    r"|收货人|收件人|联系人|姓名|手机号?码?|电话|联系电话|收货地址|详细地址|地址"
)
_PII_KEY_RE = re.compile(rf"^(?:{_PII_KEY})$", re.IGNORECASE)
_KV_RE = re.compile(
    rf"""(?P<key>(?P<q>["']?)(?<![\w])(?:{_PII_KEY})(?P=q))"""
    r"""(?P<sep>\s*[:=：]\s*)"""
    # unquoted: up to 4 words ("Zhang San"), stopping before the next "key=" or "key:"
    r"""(?P<val>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}\])]+(?:\s(?![\w.-]+\s*[:=：])[^\s,;&}\]):=：]+){0,3})""",
    re.IGNORECASE,
)
# Mainland mobile numbers, also masked ones (138****1234) and +86 forms; not inside longer
# digit runs or ids (order ids look like "jd:13812345678", hence ':' in the look-behind).
_MOBILE_RE = re.compile(r"(?<![\w.:*])(?:\+?86[-\s]?)?1[3-9]\d[-\s]?[\d*]{4}[-\s]?\d{4}(?![\w*])")
_LANDLINE_RE = re.compile(r"(?<![\w.:-])0\d{2,3}-\d{7,8}(?:-\d{1,6})?(?![\w-])")
# Chinese postal addresses: province/city, then a district/street/number marker.
_ADDRESS_RE = re.compile(
    r"[\u4e00-\u9fff]{2,10}(?:省|自治区|特别行政区|市)"
    r"[\u4e00-\u9fff0-9A-Za-z\-*#（）()]{0,40}?"
    r"(?:区|县|旗|镇|乡|街道|路|街|巷|弄|村|号|栋|幢|室)"
    r"[\u4e00-\u9fff0-9A-Za-z\-*#]*"
)

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _kv(match: re.Match[str]) -> str:
    val = match.group("val")
    quote = val[0] if val[:1] in ("'", '"') else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """``text`` with personal data replaced by ``[REDACTED]``."""
    text = _KV_RE.sub(_kv, text)
    text = _ADDRESS_RE.sub(REDACTED, text)
    text = _MOBILE_RE.sub(REDACTED, text)
    return _LANDLINE_RE.sub(REDACTED, text)


def redact_value(key: str, value: Any) -> Any:
    if _PII_KEY_RE.match(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value("", v) for v in value]
    return value


class RedactFilter(logging.Filter):
    """Redacts the message, its arguments, ``extra`` fields and exception text of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, redact_value(key, value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, service: str = "ordertwin") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in doc and not key.startswith("_"):
                doc[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(log_format: str, level: str, service: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document (also handed to the Faust/mode worker)."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter", "service": service} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ordertwin": formatter},
        "filters": {"redact": {"()": f"{__name__}.RedactFilter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "ordertwin",
                "filters": ["redact"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["console"]},
    }


def setup_logging(log_format: str, level: str, service: str) -> None:
    logging.config.dictConfig(logging_config(log_format, level, service))
    logging.getLogger(__name__).debug("logging configured (%s, pid %d)", log_format, os.getpid())
