"""Kuaishou signing: the documented sort/join example ("API调用说明" section 4) and vectors
computed independently with coreutils/openssl:

printf '%s' '<string>&signSecret=xxxxxx' | md5sum
printf '%s' '<string>&signSecret=xxxxxx' | openssl dgst -sha256 -hmac xxxxxx -binary | base64
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from connectors.kuaishou import signing
from connectors.kuaishou.client import KuaishouClient

DOC_PARAM = '{"title":"短袖", "relItemId":123456, "categoryId":12}'
DOC = {
    "appkey": "ks123",
    "method": "open.xxx.xxx",
    "version": "1",
    "param": DOC_PARAM,
    "access_token": "xxx",
    "timestamp": "1583271919000",
}


def test_string_to_sign_follows_the_documented_example() -> None:
    params = {**DOC, "signMethod": "MD5"}
    assert signing.string_to_sign(params, "xxxxxx") == (
        f"access_token=xxx&appkey=ks123&method=open.xxx.xxx&param={DOC_PARAM}"
        "&signMethod=MD5&timestamp=1583271919000&version=1&signSecret=xxxxxx"
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [("MD5", "3bb2bbfcb6ea74a2f90014c1d6a9b91f"), ("HMAC_SHA256", "lT+1bTf+6YFHwVOZMaNgUfGZnMfN0hhfFc6GXH3Jq2w=")],
)
def test_sign_matches_hand_computed_vectors(method: str, expected: str) -> None:
    assert signing.sign({**DOC, "signMethod": method}, "xxxxxx", method) == expected


def test_only_documented_parameters_are_signed() -> None:
    params = {**DOC, "signMethod": "MD5", "sign": "whatever", "extra": "ignored"}
    assert signing.sign(params, "xxxxxx", "MD5") == "3bb2bbfcb6ea74a2f90014c1d6a9b91f"
    with pytest.raises(ValueError, match="access_token"):
        signing.sign({**DOC, "access_token": ""}, "xxxxxx", "MD5")
    with pytest.raises(ValueError, match="signMethod"):
        signing.sign(DOC, "xxxxxx", "SHA1")


def test_verify_uses_the_request_sign_method() -> None:
    md5 = {**DOC, "signMethod": "MD5", "sign": "3BB2BBFCB6EA74A2F90014C1D6A9B91F"}
    assert signing.verify(md5, "xxxxxx")  # hex case does not matter
    hmac_params = {**DOC, "signMethod": "HMAC_SHA256", "sign": "lT+1bTf+6YFHwVOZMaNgUfGZnMfN0hhfFc6GXH3Jq2w="}
    assert signing.verify(hmac_params, "xxxxxx")
    assert not signing.verify({**hmac_params, "signMethod": "MD5"}, "xxxxxx")
    assert not signing.verify({**md5, "timestamp": "1583271919001"}, "xxxxxx")
    assert not signing.verify({**md5, "signMethod": "SHA1"}, "xxxxxx")


@pytest.mark.parametrize(
    ("method", "expected"),
    [("HMAC_SHA256", "VO7nxuIYBu/HmbLQh8Hhk8nLrLwiaFNtljxvIiingPo="), ("MD5", "a721db5e78fd4d8d0da82af0ec00f043")],
)
async def test_client_request_vector(method: str, expected: str) -> None:
    async with aiohttp.ClientSession() as http:
        client = KuaishouClient(
            http,
            base_url="http://127.0.0.1:1",
            app_key="ks-dev-app-key",
            sign_secret="ks-dev-sign-secret",
            access_token="ks-dev-token",
            sign_method=method,
            clock=lambda: datetime.fromtimestamp(1794362000, UTC),
        )
        query = client.signed_params(
            "open.order.cursor.list",
            {
                "orderViewStatus": 1,
                "pageSize": 100,
                "sort": 1,
                "queryType": 2,
                "beginTime": 1794360000000,
                "endTime": 1794361800000,
                "cursor": "",
            },
        )
        assert client.url("open.order.cursor.list") == "http://127.0.0.1:1/open/order/cursor/list"
    assert query["sign"] == expected and query["version"] == "1" and query["timestamp"] == "1794362000000"
