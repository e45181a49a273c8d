"""The normaliser's fast paths give exactly what the slow code they replace gave."""

from __future__ import annotations

import hashlib
import hmac
import sys
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.normalise.fields import CHINA_TZ, has_space, parse_china_time
from streams.normalise.model import keyed_fingerprint


def _strptime(value: str) -> datetime | type[ValueError]:
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return ValueError


def _fast(value: str) -> datetime | type[ValueError]:
    try:
        return parse_china_time(value)
    except ValueError:
        return ValueError


EDGES = [
    "2026-11-25 08:30:00",
    "2024-02-29 23:59:59",  # leap day
    "2026-02-29 12:00:00",  # not a leap year
    "2026-02-30 12:00:00",
    "2026-13-01 00:00:00",
    "2026-00-10 00:00:00",
    "2026-01-00 00:00:00",
    "2026-01-01 24:00:00",
    "2026-01-01 23:60:00",
    "2026-01-01 23:59:60",  # strptime's regex takes 60 and 61 for %S
    "2026-01-01 23:59:61",
    "0000-01-01 00:00:00",
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "2026-1-5 3:04:05",  # non-canonical, accepted by strptime: the slow path keeps it
    "2026-01-05  03:04:05",
    "2026-01-05T03:04:05",
    "２０２６-01-05 03:04:05",  # fullwidth digits: strptime's \\d takes them
    "2026-01-05 03:04:05 ",
    " 2026-01-05 03:04:05",
    "",
]


@pytest.mark.parametrize("value", EDGES)
def test_china_time_edges(value: str) -> None:
    assert _fast(value) == _strptime(value)


DIGITS = st.sampled_from("0123456789")


@settings(max_examples=3000, deadline=None)
@given(st.lists(DIGITS, min_size=14, max_size=14).map("".join), st.sampled_from(["-", "/", " ", ":"]))
def test_china_time_any_digits(digits: str, sep: str) -> None:
    d = digits
    value = f"{d[0:4]}-{d[4:6]}-{d[6:8]} {d[8:10]}:{d[10:12]}:{d[12:14]}"
    assert _fast(value) == _strptime(value)
    other = value.replace("-", sep, 1)
    assert _fast(other) == _strptime(other)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=25))
def test_china_time_any_text(value: str) -> None:
    assert _fast(value) == _strptime(value)


def test_has_space_is_isspace_for_every_code_point() -> None:
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        assert has_space(f"a{c}b") == c.isspace(), hex(cp)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_has_space_on_text(value: str) -> None:
    assert has_space(value) == any(c.isspace() for c in value)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.text(max_size=60))
def test_fingerprint_is_hmac_sha256(key: bytes, text: str) -> None:
    fp = keyed_fingerprint(key)
    expected = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        with pytest.raises(UnicodeEncodeError):
            fp(text)
        return
    assert fp(text) == expected
    assert fp(text) == expected  # the shared keyed state is not consumed by a call
