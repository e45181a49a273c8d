"""TOP signing against vectors computed independently (coreutils md5sum / openssl dgst).

printf '%s' 'helloworldbar2foo1foo_bar3foobar4helloworld' | md5sum
printf '%s' 'bar2foo1foo_bar3foobar4' | openssl dgst -md5 -hmac helloworld
printf '%s' 'bar2foo1foo_bar3foobar4' | openssl dgst -sha256 -hmac helloworld
"""

from __future__ import annotations

import pytest

from connectors.taobao import signing

# TOP's documented example: foo=1, bar=2, foo_bar=3, foobar=4 -> "bar2foo1foo_bar3foobar4".
DOC_PARAMS = {"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4"}
SECRET = "helloworld"


def test_string_to_sign_follows_the_documented_example() -> None:
    assert signing.string_to_sign(DOC_PARAMS) == "bar2foo1foo_bar3foobar4"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5", "5AAF1C690262A24768F5478B084C2C8A"),
        ("hmac", "E687005F819D6F9E6ED085311C8ACC75"),
        ("hmac-sha256", "339676BF36C50A8BD3D8F6B4A81B2F9AA614B05BFCFEBEFC169CB830D6B77D3B"),
    ],
)
def test_sign_matches_hand_computed_vectors(method: str, expected: str) -> None:
    assert signing.sign(DOC_PARAMS, SECRET, method) == expected


def test_full_request_vector() -> None:
    """A realistic increment.get request, signed by hand with md5sum."""
    params = {
        "method": "taobao.trades.sold.increment.get",
        "app_key": "12345678",
        "session": "taobao-dev-session",
        "timestamp": "2026-11-11 09:00:00",
        "format": "json",
        "v": "2.0",
        "sign_method": "md5",
        "fields": "tid,status,modified",
        "start_modified": "2026-11-11 00:30:00",
        "end_modified": "2026-11-11 01:00:00",
        "page_no": "1",
        "page_size": "50",
        "use_has_next": "true",
    }
    assert signing.sign(params, "taobao-dev-secret") == "F33444F7F4DBA95A2C5761D46CB7AA57"


def test_sign_bytes_and_empty_params_are_excluded() -> None:
    base = signing.sign(DOC_PARAMS, SECRET)
    extra = {**DOC_PARAMS, "sign": "WHATEVER", "image": b"\x89PNG", "empty": "", "absent": None}
    assert signing.string_to_sign(extra) == "bar2foo1foo_bar3foobar4"
    assert signing.sign(extra, SECRET) == base


def test_utf8_values_and_ascii_order() -> None:
    # 'Z' (0x5A) sorts before 'a'; values are hashed as UTF-8: md5("s" + "name张三v2.0" + "s").
    assert signing.string_to_sign({"v": "2.0", "name": "张三", "Zeta": "1"}) == "Zeta1name张三v2.0"
    assert signing.sign({"v": "2.0", "name": "张三"}, "s") == "53107B6D15336B6340E54579F1A174E5"


def test_booleans_and_ints_are_signed_as_sent() -> None:
    assert signing.string_to_sign({"use_has_next": True, "page_no": 2}) == "page_no2use_has_nexttrue"


def test_verify() -> None:
    params = {**DOC_PARAMS, "sign_method": "hmac"}
    params["sign"] = signing.sign(params, SECRET, "hmac")
    assert signing.verify(params, SECRET)
    assert not signing.verify(params, "other-secret")
    assert not signing.verify({**params, "foo": "2"}, SECRET)
    assert not signing.verify({k: v for k, v in params.items() if k != "sign"}, SECRET)
    assert not signing.verify({**params, "sign_method": "sha1"}, SECRET)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="sign_method"):
        signing.sign(DOC_PARAMS, SECRET, "sha1")
