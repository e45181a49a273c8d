"""Shopee v2 signatures: API ``sign`` and push ``Authorization``, against hand-computed vectors."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from connectors.shopee import signing

KEY = "shopee-dev-partner-key"
PUSH = (
    b'{"data":{"ordersn":"261111ABCD1241","status":"SHIPPED","completed_scenario":"","update_time":1794466800},'
    b'"shop_id":220123456,"code":3,"timestamp":1794466802}'
)
URL = "https://example.com/webhooks/shopee"
# Computed independently with: printf '%s' '<base string>' | openssl dgst -sha256 -hmac '<key>'
API_VECTOR = "0cb3bcccde7646df0c6f6acc42452dca32442c929623f1798b16bd7c08b12c4b"
PUSH_VECTOR = "3f7b73988413587902a93ff25c8723f8a6456616692471fd6bb5007ffe3b1af9"


def test_base_string_follows_the_documented_order() -> None:
    # The guide's example: partner_id, api path, timestamp, access_token, shop_id.
    assert (
        signing.base_string(
            2001887, "/api/v2/shop/get_shop_info", 1655714431, "59777174636562737266615546704c6d", 14701711
        )
        == "2001887/api/v2/shop/get_shop_info165571443159777174636562737266615546704c6d14701711"
    )
    assert signing.base_string(2001887, "/api/v2/public/get_shops_by_partner", 1655714431) == (
        "2001887/api/v2/public/get_shops_by_partner1655714431"
    )


def test_api_sign_vector_and_verification() -> None:
    args = (1000001, "/api/v2/order/get_order_list", 1794326400, "shopee-dev-access-token", 220123456)
    assert signing.api_sign(KEY, *args) == API_VECTOR
    assert signing.verify_api_sign(KEY, API_VECTOR, *args)
    assert signing.verify_api_sign(KEY, API_VECTOR.upper(), *args)  # hex: case does not matter
    assert not signing.verify_api_sign(KEY, API_VECTOR, 1000001, "/api/v2/order/get_order_detail", *args[2:])
    assert not signing.verify_api_sign("wrong", API_VECTOR, *args)
    assert not signing.verify_api_sign(KEY, None, *args)


def test_push_authorization_signs_url_bar_raw_body() -> None:
    assert signing.push_sign(KEY, URL, PUSH) == PUSH_VECTOR
    assert signing.verify_push(KEY, URL, PUSH, PUSH_VECTOR)
    assert not signing.verify_push(KEY, URL + "/", PUSH, PUSH_VECTOR)  # another URL
    assert not signing.verify_push(KEY, URL, PUSH.replace(b"SHIPPED", b"COMPLETED"), PUSH_VECTOR)
    assert not signing.verify_push(KEY, URL, PUSH + b"\n", PUSH_VECTOR)
    assert not signing.verify_push(KEY, URL, PUSH, None)


def test_push_verification_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert signing.verify_push(KEY, URL, PUSH, PUSH_VECTOR)
    assert not signing.verify_push(KEY, URL, PUSH, "0" * 64)
    assert len(calls) == 2
