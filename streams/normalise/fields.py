"""Typed field readers shared by source mappings: each failure is a precise Reject."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from streams.normalise.model import INVALID_VALUE, MISSING_FIELD, WRONG_TYPE, Reject

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# re's \s is exactly str.isspace() (both use the Unicode whitespace table); one C-level
# search instead of a generator over every character of every id.
_SPACE = re.compile(r"\s")
# The canonical rendering of china_time, parsed without strptime (which is ~10x slower and
# was a tenth of the normaliser's time). Anything else still goes through strptime.
_CANONICAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def has_space(value: str) -> bool:
    """Whether any character of ``value`` is whitespace (as ``str.isspace`` defines it)."""
    return _SPACE.search(value) is not None


def parse_china_time(value: str) -> datetime:
    """``datetime.strptime(value, "%Y-%m-%d %H:%M:%S")`` in Beijing time, with a fast path
    for the canonical ``YYYY-MM-DD HH:MM:SS``; raises ValueError exactly when strptime does."""
    if len(value) == 19 and _CANONICAL_TIME.fullmatch(value):
        return datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=CHINA_TZ,
        )
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)


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
    if not out or has_space(out) or len(out) > 128:
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
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
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
        return parse_china_time(value)
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


# --- Readers added for the channel mappings (jd, pdd, douyin, kuaishou, shopee, shopify). ---
# Unlike ``integer``/``money_minor`` above, these bound magnitudes before converting, so a
# hostile value ("1e999999999", "²", "--5") ends as a Reject instead of a crash or a hang.

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone(timedelta(0), "UTC"))
_MAX_MAJOR_DIGITS = 15  # amounts up to 10**15 major units: far above any order, far below long overflow
INT32_MAX = 2**31 - 1

# ISO 4217 minor-unit exponents that are not 2. Deliberate deviation: IDR is 2 in ISO 4217
# but the rupiah has no sub-unit in circulation and Shopee/Shopify Indonesia price in whole
# rupiah, so IDR amounts are counted in rupiah (exponent 0), like VND. Finance must agree.
CURRENCY_EXPONENT: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "IDR", "ISK", "JPY", "KMF", "KRW",
            "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}  # fmt: skip


def strict_int(doc: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    """An integer given as JSON number or ASCII-digit string; floats with a fraction are refused."""
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, str):
        digits = value.strip()
        body = digits[1:] if digits.startswith("-") else digits
        if body.isascii() and body.isdigit() and len(body) <= 19:
            return int(digits)
    raise Reject(WRONG_TYPE, f"field {name!r} should be an integer, got {value!r:.40}")


def quantity(doc: Mapping[str, Any], name: str, where: str) -> int:
    """A line quantity: a positive integer that fits the canonical ``int``."""
    qty = strict_int(doc, name)
    assert qty is not None
    if not 0 < qty <= INT32_MAX:
        raise Reject(INVALID_VALUE, f"{where}.{name} must be a positive count, got {qty}")
    return qty


def minor_units(doc: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    """An amount the platform already gives in minor units (fen), as an integer >= 0."""
    value = strict_int(doc, name, required=required)
    if value is None:
        return None
    if not 0 <= value < 10 ** (_MAX_MAJOR_DIGITS + 3):
        raise Reject(INVALID_VALUE, f"field {name!r} is not a valid amount in minor units: {value}")
    return value


def currency_code(doc: Mapping[str, Any], name: str) -> str:
    """An ISO 4217 alphabetic code, e.g. 'CNY', 'IDR'."""
    value = require(doc, name)
    if not isinstance(value, str):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a currency code, got {type(value).__name__}")
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise Reject(INVALID_VALUE, f"field {name!r} is not an ISO 4217 currency code: {value!r:.20}")
    return value


def money(doc: Mapping[str, Any], name: str, currency: str, *, required: bool = True) -> int | None:
    """A major-unit amount ("128.00", 128.5, 150000) -> exact minor units of ``currency``.

    The exponent comes from :data:`CURRENCY_EXPONENT` (default 2): 12.34 CNY -> 1234 fen,
    150000 IDR -> 150000, 1.234 KWD -> 1234. Sub-unit precision is refused, never rounded.
    """
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an amount, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Reject(WRONG_TYPE, f"field {name!r} is not a number: {str(value)!r:.40}") from None
    if not amount.is_finite() or amount < 0 or (amount and amount.adjusted() >= _MAX_MAJOR_DIGITS):
        raise Reject(INVALID_VALUE, f"field {name!r} is not a valid amount: {str(value)!r:.40}")
    # Exact digit arithmetic (no Decimal context rounding): strip trailing zeros, then the
    # amount is whole in minor units iff the remaining exponent reaches the currency's.
    _, digits, exp = amount.as_tuple()
    assert isinstance(exp, int)
    coefficient = "".join(map(str, digits)).rstrip("0")
    if not coefficient:
        return 0
    exp += len(digits) - len(coefficient)
    shift = exp + CURRENCY_EXPONENT.get(currency, 2)
    if shift < 0:
        raise Reject(INVALID_VALUE, f"field {name!r} is finer than the minor unit of {currency}: {str(value)!r:.40}")
    return int(coefficient + "0" * shift)


def _epoch_offset(value: int, unit: str, name: str) -> datetime:
    if value <= 0:
        raise Reject(INVALID_VALUE, f"field {name!r} is not a timestamp: {value}")
    try:
        return _EPOCH + timedelta(**{unit: value})
    except OverflowError:
        raise Reject(INVALID_VALUE, f"field {name!r} is out of range: {value}") from None


def unix_seconds(doc: Mapping[str, Any], name: str, *, required: bool = True) -> datetime | None:
    """Unix time in seconds (Shopee, Douyin) -> UTC-aware datetime; 0 means 'not set'."""
    value = strict_int(doc, name, required=required)
    if value is None or (value == 0 and not required):
        return None
    return _epoch_offset(value, "seconds", name)


def unix_millis(doc: Mapping[str, Any], name: str, *, required: bool = True) -> datetime | None:
    """Unix time in milliseconds (Kuaishou) -> UTC-aware datetime; 0 means 'not set'."""
    value = strict_int(doc, name, required=required)
    if value is None or (value == 0 and not required):
        return None
    return _epoch_offset(value, "milliseconds", name)


def iso_time(doc: Mapping[str, Any], name: str, *, required: bool = True) -> datetime | None:
    """ISO-8601 with an explicit offset ('2026-11-11T09:00:00+08:00', Shopify); naive is refused."""
    value = require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a time string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Reject(INVALID_VALUE, f"field {name!r} is not an ISO-8601 time: {value!r:.40}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Reject(INVALID_VALUE, f"field {name!r} has no UTC offset: {value!r:.40}")
    return parsed


def optional_obj(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """An object that may be absent or null; any other type is a WRONG_TYPE."""
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an object, got {type(value).__name__}")
    return value


def optional_array(doc: Mapping[str, Any], name: str) -> list[Any]:
    """A list that may be absent or null (read as empty); any other type is a WRONG_TYPE."""
    value = doc.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a list, got {type(value).__name__}")
    return value


def element(items: list[Any], i: int, where: str) -> Mapping[str, Any]:
    """``items[i]`` as an object, or a WRONG_TYPE naming ``where[i]``."""
    item = items[i]
    if not isinstance(item, Mapping):
        raise Reject(WRONG_TYPE, f"{where}[{i}] should be an object, got {type(item).__name__}")
    return item


def single(values: list[str | None]) -> str | None:
    """The one distinct non-empty value, else None (e.g. a tracking number: several parcels
    cannot be compared with one WMS tracking number, so they are not reported as one)."""
    distinct = {v for v in values if v}
    return distinct.pop() if len(distinct) == 1 else None


def lines_key(lines: list[dict[str, Any]]) -> str:
    """What ``lines_fp`` fingerprints: sorted ``skuxqty`` pairs (same form as every source)."""
    return ",".join(f"{ln['sku']}x{ln['qty']}" for ln in sorted(lines, key=lambda x: (x["sku"], x["qty"])))


def address_text(parts: list[Any]) -> str | None:
    """Joined address identity from masked/region parts; None when the source gave none."""
    texts = ["" if p is None else str(p).strip() for p in parts]
    return "|".join(texts) if any(texts) else None
