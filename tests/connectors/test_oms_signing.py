"""旺店通旗舰版 signing against vectors computed independently with coreutils (no published
example with its result was found):

TS=$(( $(date -d '2026-11-11 09:05:00 +0800' +%s) - 1325347200 ))   # 469011900
printf '%s' "wdt-dev-secretbody${BODY}calc_total1keywdt-dev-app-keymethodsales.TradeQuery.queryWithDetail
page_no0page_size100saltsaltsidwdt-dev-sidtimestamp${TS}v1.0wdt-dev-secret" | md5sum

and a second one with a UTF-8 body and the documentation's example appsecret
``testsecret:testsalt`` ("secret为testsecret, salt为testsalt").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import pytest

from connectors.oms import signing
from connectors.oms.client import METHOD, OmsClient, dumps_body

BEIJING = timezone(timedelta(hours=8))
BODY = '[{"start_time":"2026-11-11 08:00:00","end_time":"2026-11-11 09:00:00","time_type":1,"order_type":1}]'
PARAMS: dict[str, str | int] = {
    "sid": "wdt-dev-sid",
    "key": "wdt-dev-app-key",
    "salt": "salt",
    "method": METHOD,
    "timestamp": 469011900,
    "v": "1.0",
    "page_size": 100,
    "page_no": 0,
    "calc_total": 1,
    "body": BODY,
}
EXPECTED = "fb12046af7df4d5058201da0d90365e3"

BODY_UTF8 = '[{"trade_no":"JY2026111100001","备注":"合并订单"}]'
PARAMS_UTF8: dict[str, str | int] = {
    "sid": "wdtapi3",
    "key": "appkey",
    "salt": "testsalt",
    "method": METHOD,
    "timestamp": 0,
    "v": "1.0",
    "body": BODY_UTF8,
}
EXPECTED_UTF8 = "e1de8d35a780be723f1ca574e0434af1"


def test_documented_vectors() -> None:
    assert signing.sign(PARAMS, "wdt-dev-secret") == EXPECTED
    assert signing.sign(PARAMS_UTF8, "testsecret") == EXPECTED_UTF8


def test_string_to_sign_is_sorted_names_and_values_without_sign() -> None:
    text = signing.string_to_sign({**PARAMS_UTF8, "sign": "ignored"})
    assert text.startswith("body[{") and text.endswith("timestamp0v1.0")
    assert "ignored" not in text
    reordered = dict(reversed(list(PARAMS.items())))
    assert signing.sign(reordered, "wdt-dev-secret") == EXPECTED  # insertion order is irrelevant


def test_timestamp_counts_seconds_since_2012_in_beijing() -> None:
    assert signing.wdt_timestamp(datetime(2012, 1, 1, tzinfo=BEIJING)) == 0
    assert signing.wdt_timestamp(datetime(2026, 11, 11, 9, 5, tzinfo=BEIJING)) == 469011900
    assert signing.from_wdt_timestamp(469011900) == datetime(2026, 11, 11, 1, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        signing.wdt_timestamp(datetime(2026, 11, 11))


def test_appsecret_is_secret_colon_salt() -> None:
    assert signing.split_app_secret("testsecret:testsalt") == ("testsecret", "testsalt")
    assert signing.split_app_secret("s3cr3t:sa:lt") == ("s3cr3t", "sa:lt")  # split at the first colon
    for bad in ("nocolon", ":salt", "secret:"):
        with pytest.raises(ValueError, match="secret:salt"):
            signing.split_app_secret(bad)


def test_verify_accepts_the_right_sign_in_either_case() -> None:
    assert signing.verify({**PARAMS, "sign": EXPECTED}, "wdt-dev-secret")
    assert signing.verify({**PARAMS, "sign": EXPECTED.upper()}, "wdt-dev-secret")


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": 469011901},
        {"page_no": 1},
        {"sid": "other-sid"},
        {"salt": "salt2"},
        {"body": BODY.replace("09:00:00", "09:00:01")},
        {"body": BODY + " "},  # the body is signed byte for byte
        {"extra": ""},  # an added parameter takes part, even empty
    ],
)
def test_tampering_with_any_signed_parameter_breaks_the_sign(change: dict[str, str | int]) -> None:
    assert not signing.verify({**PARAMS, **change, "sign": EXPECTED}, "wdt-dev-secret")


def test_wrong_secret_missing_or_garbage_sign_fail() -> None:
    assert not signing.verify({**PARAMS, "sign": EXPECTED}, "wdt-dev-secreT")
    without_body = {k: v for k, v in PARAMS.items() if k != "body"}
    assert not signing.verify({**without_body, "sign": EXPECTED}, "wdt-dev-secret")
    assert not signing.verify(PARAMS, "wdt-dev-secret")
    assert not signing.verify({**PARAMS, "sign": ""}, "wdt-dev-secret")
    assert not signing.verify({**PARAMS, "sign": EXPECTED[:-1]}, "wdt-dev-secret")
    assert not signing.verify({**PARAMS, "sign": "é" * 32}, "wdt-dev-secret")


async def test_client_signs_the_query_and_the_exact_body() -> None:
    moment = datetime(2026, 11, 11, 9, 5, tzinfo=BEIJING)
    async with aiohttp.ClientSession() as http:
        client = OmsClient(
            http,
            base_url="http://127.0.0.1:1/openapi",
            sid="wdt-dev-sid",
            app_key="wdt-dev-app-key",
            app_secret="wdt-dev-secret:salt",
            clock=lambda: moment,
        )
        body = dumps_body(
            {"start_time": "2026-11-11 08:00:00", "end_time": "2026-11-11 09:00:00", "time_type": 1, "order_type": 1}
        )
        query = client.signed_query(METHOD, body, {"page_size": 100, "page_no": 0, "calc_total": 1})
    assert body == BODY
    assert query["sign"] == EXPECTED
    assert query["salt"] == "salt" and "wdt-dev-secret" not in query.values()  # the secret never travels
    assert "body" not in query  # signed, but sent as the HTTP body
