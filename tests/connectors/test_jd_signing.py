"""JOS signing against vectors computed independently with coreutils:

printf '%s' 'jd-dev-secret360buy_param_json{...}access_tokenjd-dev-tokenapp_keyjd-dev-app-key
methodjingdong.pop.order.enSearchtimestamp2026-11-11 09:05:00v2.0jd-dev-secret' | md5sum
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp

from connectors.jd import signing
from connectors.jd.client import JdClient

BUSINESS: dict[str, Any] = {
    "start_date": "2026-11-11 08:30:00",
    "end_date": "2026-11-11 09:00:00",
    "order_state": "WAIT_SELLER_STOCK_OUT,FINISHED_L",
    "optional_fields": "orderId,orderState,modified",
    "page": "1",
    "page_size": "100",
    "sortType": 1,
    "dateType": 0,
}
PARAM_JSON = (
    '{"start_date":"2026-11-11 08:30:00","end_date":"2026-11-11 09:00:00",'
    '"order_state":"WAIT_SELLER_STOCK_OUT,FINISHED_L","optional_fields":"orderId,orderState,modified",'
    '"page":"1","page_size":"100","sortType":1,"dateType":0}'
)
PARAMS = {
    "method": "jingdong.pop.order.enSearch",
    "app_key": "jd-dev-app-key",
    "access_token": "jd-dev-token",
    "timestamp": "2026-11-11 09:05:00",
    "v": "2.0",
    "360buy_param_json": PARAM_JSON,
}
EXPECTED = "109625034C5FA9F8BB1207E206A29663"


def test_string_to_sign_is_sorted_name_value_pairs() -> None:
    # '3' (0x33) sorts before 'a': 360buy_param_json comes first.
    assert signing.string_to_sign(PARAMS) == (
        "360buy_param_json" + PARAM_JSON + "access_tokenjd-dev-tokenapp_keyjd-dev-app-key"
        "methodjingdong.pop.order.enSearchtimestamp2026-11-11 09:05:00v2.0"
    )


def test_sign_matches_the_hand_computed_vector() -> None:
    assert signing.sign(PARAMS, "jd-dev-secret") == EXPECTED


def test_sign_and_empty_values_take_no_part() -> None:
    assert signing.sign({**PARAMS, "sign": "X", "empty": "", "absent": None}, "jd-dev-secret") == EXPECTED


def test_verify() -> None:
    signed = {**PARAMS, "sign": EXPECTED.lower()}
    assert signing.verify(signed, "jd-dev-secret")
    assert not signing.verify(signed, "other")
    assert not signing.verify({**signed, "v": "1.0"}, "jd-dev-secret")
    assert not signing.verify(PARAMS, "jd-dev-secret")  # no sign at all


async def test_client_signs_exactly_the_json_it_sends() -> None:
    async with aiohttp.ClientSession() as http:
        client = JdClient(
            http,
            base_url="http://127.0.0.1:1/routerjson",
            app_key="jd-dev-app-key",
            app_secret="jd-dev-secret",
            access_token="jd-dev-token",
            clock=lambda: datetime(2026, 11, 11, 1, 5, tzinfo=UTC),  # 09:05 Beijing
        )
        form = client.signed_params("jingdong.pop.order.enSearch", BUSINESS)
    assert form["360buy_param_json"] == PARAM_JSON
    assert form["timestamp"] == "2026-11-11 09:05:00" and form["v"] == "2.0"
    assert form["sign"] == EXPECTED
