"""Helpers shared by the merchant-subsystem mappings (``oms``, ``wms``, ``carrier``, ``finance``).

Private to ``streams.normalise.sources`` (the leading underscore keeps the dispatcher from
treating it as a source). Everything here is pure and raises only
:class:`streams.normalise.model.Reject`.

Conventions every subsystem shares, so their facts compare with the channels' facts:

- ``order_id`` is ``"<channel>:<platform order id>"``; a subsystem event always names the
  *channel* order (never the ERP's or the WMS's own document number).
- Address fingerprints fingerprint the same text the channel mappings do
  (``streams.normalise.sources.taobao._address_text``): ``"oaid:<oaid>"`` when the platform's
  privacy-safe address id is known, else ``"province|city|district|detail|zip"``. Names and
  phone numbers never enter the text, and the text itself never leaves this process.
- Lines fingerprints fingerprint ``"sku x qty"`` pairs sorted by ``(sku, qty)``, as the
  channel mappings do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ordertwin.topics import CHANNELS
from streams.normalise import fields as f
from streams.normalise.model import (
    INVALID_VALUE,
    MISSING_FIELD,
    UNSUPPORTED,
    WRONG_TYPE,
    Context,
    RawRecord,
    Reject,
    event_id,
)

CHANNEL_SET: frozenset[str] = frozenset(CHANNELS)

MAX_QTY = 1_000_000_000  # OrderLine.qty is an Avro int; no real line or stock move comes close
MAX_MINOR = 10**15  # amount_minor is an Avro long; 10^13 yuan is beyond any single order

# ISO 4217 minor-unit exponents of the currencies our channels settle in (CNY for the
# Chinese platforms; Shopee's markets SG/MY/TH/PH/ID/VN/TW/BR/MX/CL/CO; common Shopify
# store currencies). Minor units follow ISO, e.g. VND and JPY have none.
CURRENCY_EXPONENT: dict[str, int] = {
    "CNY": 2,
    "HKD": 2,
    "TWD": 2,
    "SGD": 2,
    "MYR": 2,
    "THB": 2,
    "PHP": 2,
    "IDR": 2,
    "VND": 0,
    "BRL": 2,
    "MXN": 2,
    "CLP": 0,
    "COP": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "JPY": 0,
    "KRW": 0,
}


# --- scalar readers -------------------------------------------------------------------


def ident_value(value: Any, what: str) -> str:
    """A platform/document id given as a value (string or integer)."""
    if value is None or value == "":
        raise Reject(MISSING_FIELD, f"{what} is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Reject(WRONG_TYPE, f"{what} should be an id, got {type(value).__name__}")
    out = str(value).strip()
    if not out or f.has_space(out) or len(out) > 128:
        raise Reject(INVALID_VALUE, f"{what} is not a usable id: {str(value)!r:.60}")
    return out


def id_list(value: Any, what: str) -> list[str]:
    """Comma-separated ids (how ERPs list the channel orders merged into one document)."""
    if value is None or value == "":
        raise Reject(MISSING_FIELD, f"{what} is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Reject(WRONG_TYPE, f"{what} should be an id or comma-separated ids, got {type(value).__name__}")
    out: list[str] = []
    for part in str(value).split(","):
        ref = ident_value(part.strip(), what)
        if ref not in out:
            out.append(ref)
    return out


def opt_text(doc: Mapping[str, Any], name: str) -> str | None:
    """An optional string (or number printed as one); empty means absent."""
    return f.text(doc, name, required=False)


def req_text(doc: Mapping[str, Any], name: str) -> str:
    value = f.text(doc, name)
    assert value is not None
    return value


def req_time(doc: Mapping[str, Any], name: str) -> datetime:
    value = f.china_time(doc, name)
    assert value is not None
    return value


def opt_obj(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, Mapping):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an object, got {type(value).__name__}")
    return value


def objects(doc: Mapping[str, Any], name: str, item: str, *, required: bool = True) -> list[Mapping[str, Any]]:
    """A repeated element as a list of objects.

    Accepts the three JSON renderings of an XML list seen in the wild: a plain list
    (``"packages": [...]``), TOP's wrapper object (``"packages": {"package": [...]}``) and a
    single child collapsed to an object (``"packages": {"package": {...}}``).
    """
    value = doc.get(name)
    if value is None or value == "" or value == []:
        if required:
            raise Reject(MISSING_FIELD, f"field {name!r} is missing")
        return []
    if isinstance(value, Mapping) and item in value:
        value = value[item]
        if value is None or value == "" or value == []:
            if required:
                raise Reject(MISSING_FIELD, f"field {name}.{item} is missing")
            return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a list of objects, got {type(value).__name__}")
    for i, element in enumerate(value):
        if not isinstance(element, Mapping):
            raise Reject(WRONG_TYPE, f"{name}[{i}] should be an object, got {type(element).__name__}")
    return value


def whole(doc: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    """An integral count, signed: ``3``, ``"3"``, ``"-3"``, ``"3.0000"`` (ERP Decimal(19,4))."""
    value = f.require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Reject(WRONG_TYPE, f"field {name!r} should be a number, got {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Reject(WRONG_TYPE, f"field {name!r} is not a number: {str(value)!r:.40}") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise Reject(INVALID_VALUE, f"field {name!r} is not a whole number: {str(value)!r:.40}")
    out = int(number)
    if abs(out) > MAX_QTY:
        raise Reject(INVALID_VALUE, f"field {name!r} is out of range: {out}")
    return out


def positive(doc: Mapping[str, Any], name: str) -> int:
    value = whole(doc, name)
    assert value is not None
    if value <= 0:
        raise Reject(INVALID_VALUE, f"field {name!r} must be positive, got {value}")
    return value


def currency_code(value: Any, what: str) -> str:
    if value is None or value == "":
        raise Reject(MISSING_FIELD, f"{what} is missing")
    if not isinstance(value, str):
        raise Reject(WRONG_TYPE, f"{what} should be a currency code, got {type(value).__name__}")
    code = value.strip().upper()
    if code not in CURRENCY_EXPONENT:
        raise Reject(INVALID_VALUE, f"{what} {value!r:.20} is not a currency we convert exactly")
    return code


def money(doc: Mapping[str, Any], name: str, currency: str, *, required: bool = True) -> int | None:
    """A decimal amount in major units (``"257.00"``) -> exact minor units of ``currency``."""
    value = f.require(doc, name) if required else doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Reject(WRONG_TYPE, f"field {name!r} should be an amount, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise Reject(WRONG_TYPE, f"field {name!r} is not a number: {str(value)!r:.40}") from None
    if not amount.is_finite() or amount < 0:
        raise Reject(INVALID_VALUE, f"field {name!r} is not a valid amount: {str(value)!r:.40}")
    minor = amount.scaleb(CURRENCY_EXPONENT[currency])
    if minor != minor.to_integral_value():
        raise Reject(INVALID_VALUE, f"field {name!r} has more decimals than {currency} allows: {str(value)!r:.40}")
    if minor > MAX_MINOR:
        raise Reject(INVALID_VALUE, f"field {name!r} is out of range: {str(value)!r:.40}")
    return int(minor)


# --- order references -----------------------------------------------------------------


def order_id(channel: str, platform_order_id: Any, what: str) -> str:
    """``"<channel>:<platform order id>"``; only the channels ordertwin tracks."""
    if channel not in CHANNEL_SET:
        raise Reject(UNSUPPORTED, f"{channel!r:.40} is not a tracked channel ({', '.join(CHANNELS)})")
    return f"{channel}:{ident_value(platform_order_id, what)}"


def parse_order_id(value: str, what: str) -> str:
    """A canonical order id written by a merchant system, checked and normalised."""
    channel, sep, ref = value.partition(":")
    if not sep:
        raise Reject(INVALID_VALUE, f"{what} {value!r:.60} is not '<channel>:<platform order id>'")
    return order_id(channel.strip(), ref, what)


# --- canonical text for fingerprints ------------------------------------------------------


def address_text(
    *,
    oaid: str | None,
    province: str | None,
    city: str | None,
    district: str | None,
    detail: str | None,
    zip_code: str | None,
) -> str | None:
    """Same canonical address text as the channel mappings (see the module docstring)."""
    if oaid:
        return f"oaid:{oaid}"
    parts = [province, city, district, detail, zip_code]
    if not any(parts):
        return None
    return "|".join("" if p is None else p.strip() for p in parts)


def lines_key(lines: Iterable[Mapping[str, Any]]) -> str:
    pairs = sorted((str(ln["sku"]), int(ln["qty"])) for ln in lines)
    return ",".join(f"{sku}x{qty}" for sku, qty in pairs)


# --- canonical records --------------------------------------------------------------------


def order_event(
    *,
    source: str,
    system: str,
    fact: Sequence[object],
    order: str,
    status: str,
    raw_status: str,
    event_time: datetime,
    ctx: Context,
    raw: RawRecord,
    partial: bool = False,
    amount_minor: int | None = None,
    currency: str | None = None,
    lines: Sequence[Mapping[str, Any]] = (),
    warehouse: str | None = None,
    carrier: str | None = None,
    tracking_no: str | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """An OrderEvent dict; ``fact`` are the fields that make this fact this fact."""
    return {
        "event_id": event_id(source, *fact),
        "order_id": order,
        "channel": order.split(":", 1)[0],
        "source": source,
        "system": system,
        "status": status,
        "raw_status": raw_status,
        "partial": partial,
        "event_time": event_time,
        "ingest_time": ctx.ingest_time,
        "amount_minor": amount_minor,
        "currency": currency,
        "lines": [dict(ln) for ln in lines],
        "warehouse": warehouse,
        "carrier": carrier,
        "tracking_no": tracking_no,
        "address_fp": ctx.fingerprint(address) if address else None,
        "lines_fp": ctx.fingerprint(lines_key(lines)) if lines else None,
        "raw_topic": raw.topic,
        "raw_partition": raw.partition,
        "raw_offset": raw.offset,
    }


def inventory_event(
    *,
    source: str,
    fact: Sequence[object],
    sku: str,
    warehouse: str,
    kind: str,
    reason: str,
    quantity: int,
    raw_type: str,
    event_time: datetime,
    ctx: Context,
    raw: RawRecord,
    movement_id: str | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    """An InventoryEvent dict (no ``status`` key: that is how the dispatcher tells the kinds apart).

    ``order_id`` is the channel order a movement ships or returns, when there is one.
    """
    return {
        "event_id": event_id(source, *fact),
        "sku": sku,
        "warehouse": warehouse,
        "source": source,
        "kind": kind,
        "reason": reason,
        "quantity": quantity,
        "raw_type": raw_type,
        "movement_id": movement_id,
        "order_id": order_id,
        "event_time": event_time,
        "ingest_time": ctx.ingest_time,
        "raw_topic": raw.topic,
        "raw_partition": raw.partition,
        "raw_offset": raw.offset,
    }
