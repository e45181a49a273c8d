"""Typed field readers shared by source mappings: each failure is a precise Reject."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from streams.normalise.model import INVALID_VALUE, MISSING_FIELD, WRONG_TYPE, Reject

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def require(doc: Mapping[str, Any], name: str) -> Any:
    value = doc.get(name)
    if value is None or value == "":
        raise Reject(MISSING_FIELD, f"field {name!r} is missing")
    return value


def text(doc: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a string, got {type(value).__name__}")
    return str(value)


def ident(doc: Mapping[str, Any], name: str) -> str:
    """A platform id: digits as number or string (TOP returns Number tids)."""
    value = require(doc, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an id, got {type(value).__name__}")
    out = str(value).strip()
    if not out or any(c.isspace() for c in out) or len(out) > 128:
        raise Reject(INVALID_VALUE, f"field {name!r} is not a usable id")
    return out


def integer(doc: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise Reject(WRONG_TYPE, f"field {name!r} should be an integer, got {value!r:.40}")


def money_minor(doc: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    """Yuan amount as string/number ("128.00") -> fen, exactly (no float rounding)."""
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an amount, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise Reject(WRONG_TYPE, f"field {name!r} is not a number: {str(value)!r:.40}") from None
    if not amount.is_finite() or amount < 0:
        raise Reject(INVALID_VALUE, f"field {name!r} is not a valid amount: {value!r:.40}")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise Reject(INVALID_VALUE, f"field {name!r} has sub-fen precision: {value!r:.40}")
    return int(fen)


def china_time(doc: Mapping[str, Any], name: str, *, required: bool = True) -> datetime | None:
    """'YYYY-MM-DD HH:MM:SS' in Beijing time (how TOP, JD and PDD print times)."""
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a time string, got {type(value).__name__}")
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise Reject(INVALID_VALUE, f"field {name!r} is not 'YYYY-MM-DD HH:MM:SS': {value!r:.40}") from None


def obj(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = require(doc, name)
    if not isinstance(value, Mapping):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an object, got {type(value).__name__}")
    return value


def array(doc: Mapping[str, Any], name: str) -> list[Any]:
    value = require(doc, name)
    if not isinstance(value, list):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a list, got {type(value).__name__}")
    return value
