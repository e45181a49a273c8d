"""抖店 signatures: API ``sign`` (md5 and hmac-sha256) and push ``event-sign``, hand-computed vectors."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from connectors.douyin import signing

APP_KEY = "7000000000000000001"
SECRET = "douyin-dev-secret"
PARAMS = {"update_time_start": 1794466800, "update_time_end": 1794470400, "page": 0, "size": 100}
# printf '%s' "$SECRET""app_key...v2""$SECRET" | openssl dgst -md5 / -sha256 -hmac "$SECRET"
MD5_VECTOR = "144337b1f3b9c79dcd6e4ecad1a55435"
HMAC_VECTOR = "1ae16c47166ae4a20d24362d5c373bc60371a2b835572a3eb7273c25fd9baf17"
PUSH = b'[{"tag":"100","msg_id":"7123","data":"{\\"p_id\\":6936476692437474563}"}]'
PUSH_VECTOR = "5a46ffcafb1d650ee0eb687f2b642c5a"  # md5(app_key + body + secret)


def test_param_json_is_sorted_compact_and_unescaped() -> None:
    assert signing.param_json(PARAMS) == (
        '{"page":0,"size":100,"update_time_end":1794470400,"update_time_start":1794466800}'
    )
    assert signing.param_json({"b": {"z": 1, "a": "店"}, "a": False}) == '{"a":false,"b":{"a":"店","z":1}}'


def test_api_sign_vectors() -> None:
    body = signing.param_json(PARAMS)
    assert signing.string_to_sign(APP_KEY, "order.searchList", body, 1794466800) == (
        f"app_key{APP_KEY}methodorder.searchListparam_json{body}timestamp1794466800v2"
    )
    assert signing.api_sign(APP_KEY, SECRET, "order.searchList", body, 1794466800, sign_method="md5") == MD5_VECTOR
    assert (
        signing.api_sign(APP_KEY, SECRET, "order.searchList", body, 1794466800, sign_method="hmac-sha256")
        == HMAC_VECTOR
    )
    assert signing.verify_api_sign(
        HMAC_VECTOR, APP_KEY, SECRET, "order.searchList", body, 1794466800, sign_method="hmac-sha256"
    )
    assert not signing.verify_api_sign(MD5_VECTOR, APP_KEY, SECRET, "order.searchList", body, 1794466801)
    assert not signing.verify_api_sign(
        MD5_VECTOR, APP_KEY, SECRET, "order.searchList", body, 1794466800, sign_method="sha1"
    )
    with pytest.raises(ValueError, match="sign_method"):
        signing.api_sign(APP_KEY, SECRET, "order.searchList", body, 1, sign_method="sha1")


def test_push_event_sign() -> None:
    assert signing.push_sign(APP_KEY, SECRET, PUSH) == PUSH_VECTOR
    assert signing.verify_push(APP_KEY, SECRET, PUSH, PUSH_VECTOR)
    assert signing.verify_push(APP_KEY, SECRET, PUSH, PUSH_VECTOR.upper())
    assert not signing.verify_push(APP_KEY, SECRET, PUSH.replace(b"100", b"101"), PUSH_VECTOR)
    assert not signing.verify_push(APP_KEY, "other", PUSH, PUSH_VECTOR)
    assert not signing.verify_push(APP_KEY, SECRET, PUSH, None)


def test_push_verification_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert signing.verify_push(APP_KEY, SECRET, PUSH, PUSH_VECTOR)
    assert signing.verify_api_sign(
        MD5_VECTOR, APP_KEY, SECRET, "order.searchList", signing.param_json(PARAMS), 1794466800
    )
    assert len(calls) == 2
