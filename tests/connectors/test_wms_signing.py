"""奇门 signatures against Qimen's documented string to sign and vectors computed by hand.

Each digest below was computed independently with coreutils, e.g.::

    printf '%s' 'testapp_keytesterp_appkey...v2.0<request>...</request>test' | md5sum
"""

from __future__ import annotations

import pytest

from connectors.wms import signing

# Qimen's documented example ("签名算法"): its system parameters, secret "test".
DOC_PARAMS = {
    "method": "taobao.qimen.entryorder.query",
    "timestamp": "2015-04-26 00:00:07",
    "format": "xml",
    "app_key": "testerp_appkey",
    "v": "2.0",
    "sign": "abc",
    "sign_method": "md5",
    "customerId": "stub-cust-code",
}
DOC_STRING = (
    "app_keytesterp_appkeycustomerIdstub-cust-codeformatxmlmethodtaobao.qimen.entryorder.query"
    "sign_methodmd5timestamp2015-04-26 00:00:07v2.0"
)
XML_BODY = b"<request><entryOrderCode>E1234</entryOrderCode></request>"

PROCESS_PARAMS = {
    "method": "taobao.qimen.orderprocess.report",
    "timestamp": "2026-11-11 10:00:00",
    "format": "json",
    "v": "2.0",
    "customerId": "ot-dev-customer",
    "app_key": "qimen-dev-app-key",
    "sign_method": "md5",
}
PROCESS_BODY = (
    b'{"order":{"orderCode":"DO2026111100001","orderType":"JYCK","warehouseCode":"HZ01"},'
    b'"process":{"processStatus":"ACCEPT","operateTime":"2026-11-11 09:59:58"},'
    b'"extendProps":{"sourcePlatformCode":"TB","sourceOrderCode":"3987215540123500001"}}'
)


def test_string_to_sign_is_the_documented_one() -> None:
    """Sorted by name (ASCII: upper case before lower, so customerId after app_key), sign left out."""
    assert signing.string_to_sign(DOC_PARAMS) == DOC_STRING


def test_documented_example_with_a_body() -> None:
    assert signing.sign(DOC_PARAMS, XML_BODY, "test") == "4B41313E5B26D3D984528C1AAD4F5F8D"


def test_json_call_vector() -> None:
    assert signing.sign(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret") == "506D4DD96F2DC1FC96BB15B2C7345C63"


def test_utf8_values_and_empty_parameters() -> None:
    """Values and body are UTF-8; an empty parameter contributes its name (as SpiUtils)."""
    params = {
        "method": "x",
        "app_key": "仓库app",
        "empty": "",
        "sign_method": "md5",
        "timestamp": "2026-11-11 10:00:00",
    }
    body = '{"备注":"加急"}'.encode()
    assert signing.sign(params, body, "secret") == "B7F7027BB55A7DFFF1B0190C7E17DBC5"


def test_verify_accepts_lower_case_and_padding_and_refuses_tampering() -> None:
    good = signing.sign(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret")
    assert signing.verify(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret", good)
    assert signing.verify(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret", f" {good.lower()} ")
    assert not signing.verify(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret", None)
    assert not signing.verify(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret", "")
    assert not signing.verify(PROCESS_PARAMS, PROCESS_BODY, "other-secret", good)
    assert not signing.verify(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret", "非ASCII")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timestamp", "2026-11-11 10:00:01"),  # a replay with a fresh timestamp
        ("method", "taobao.qimen.deliveryorder.confirm"),
        ("customerId", "someone-else"),
        ("extra", "1"),  # an added parameter is signed too
    ],
)
def test_any_changed_parameter_breaks_the_signature(name: str, value: str) -> None:
    good = signing.sign(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret")
    assert not signing.verify({**PROCESS_PARAMS, name: value}, PROCESS_BODY, "qimen-dev-secret", good)


@pytest.mark.parametrize(
    "body",
    [
        PROCESS_BODY.replace(b"ACCEPT", b"CANCEL"),
        PROCESS_BODY + b" ",  # even whitespace: the raw bytes are signed
        PROCESS_BODY[:-1],
        b"",
    ],
)
def test_any_changed_body_breaks_the_signature(body: bytes) -> None:
    good = signing.sign(PROCESS_PARAMS, PROCESS_BODY, "qimen-dev-secret")
    assert not signing.verify(PROCESS_PARAMS, body, "qimen-dev-secret", good)


def test_signed_query_round_trips_through_the_url() -> None:
    query = signing.signed_query({**PROCESS_PARAMS, "sign": "stale"}, PROCESS_BODY, "qimen-dev-secret")
    assert "timestamp=2026-11-11%2010%3A00%3A00" in query and "stale" not in query
    params = signing.query_params(f"http://erp.example/qimen?{query}")
    assert params["sign"] == "506D4DD96F2DC1FC96BB15B2C7345C63"
    assert signing.verify(params, PROCESS_BODY, "qimen-dev-secret", params["sign"])


def test_query_params_decode_like_java_urldecoder_and_refuse_repeats() -> None:
    params = signing.query_params("http://h/p?timestamp=2026-11-11+10:00:00&a=x%2By&b=%E4%BB%93&c=")
    assert params == {"timestamp": "2026-11-11 10:00:00", "a": "x+y", "b": "仓", "c": ""}
    with pytest.raises(ValueError, match="repeated"):
        signing.query_params("http://h/p?method=a&method=b")
    with pytest.raises(UnicodeDecodeError):
        signing.query_params("http://h/p?method=%FF")  # not UTF-8


def test_top_sign_list_headers_are_signed() -> None:
    headers = {"top-sign-list": "x-qimen-route, x-extra", "x-qimen-route": "hz%2001", "x-extra": ""}
    assert signing.header_params(headers) == {"x-qimen-route": "hz 01", "x-extra": ""}
    assert signing.header_params({}) == {}
    with_headers = {**signing.header_params(headers), **PROCESS_PARAMS}
    assert signing.string_to_sign(with_headers).endswith("v2.0x-extrax-qimen-routehz 01")
    assert signing.sign(with_headers, PROCESS_BODY, "s") != signing.sign(PROCESS_PARAMS, PROCESS_BODY, "s")
