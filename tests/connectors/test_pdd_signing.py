"""PDD signing against a vector computed independently with coreutils:

printf '%s' 'pdd-dev-secretaccess_tokenpdd-dev-tokenclient_idpdd-dev-client-iddata_typeJSON
end_updated_at1794361800is_lucky_flag0order_status5page1page_size100refund_status5
start_updated_at1794360000timestamp1794362000typepdd.order.number.list.increment.get
use_has_nextfalsepdd-dev-secret' | md5sum
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp

from connectors.pdd import signing
from connectors.pdd.client import PddClient

EXPECTED = "107235B3FAC9CBCB15F7FA0283F711CD"
PARAMS = {
    "type": "pdd.order.number.list.increment.get",
    "client_id": "pdd-dev-client-id",
    "access_token": "pdd-dev-token",
    "timestamp": "1794362000",
    "data_type": "JSON",
    "start_updated_at": "1794360000",
    "end_updated_at": "1794361800",
    "is_lucky_flag": "0",
    "order_status": "5",
    "refund_status": "5",
    "page": "1",
    "page_size": "100",
    "use_has_next": "false",
}


def test_sign_matches_the_hand_computed_vector() -> None:
    assert signing.sign(PARAMS, "pdd-dev-secret") == EXPECTED


def test_ints_and_booleans_are_signed_as_sent_and_empty_values_skipped() -> None:
    typed = {**PARAMS, "page": 1, "use_has_next": False, "trade_type": None, "sign": "X", "blank": ""}
    assert signing.sign(typed, "pdd-dev-secret") == EXPECTED


def test_verify() -> None:
    signed = {**PARAMS, "sign": EXPECTED.lower()}
    assert signing.verify(signed, "pdd-dev-secret")
    assert not signing.verify(signed, "other")
    assert not signing.verify({**signed, "page": "2"}, "pdd-dev-secret")
    assert not signing.verify(PARAMS, "pdd-dev-secret")


async def test_client_form_is_signed_like_the_vector() -> None:
    async with aiohttp.ClientSession() as http:
        client = PddClient(
            http,
            base_url="http://127.0.0.1:1/api/router",
            client_id="pdd-dev-client-id",
            client_secret="pdd-dev-secret",
            access_token="pdd-dev-token",
            clock=lambda: datetime.fromtimestamp(1794362000, UTC),
        )
        form = client.signed_params(
            "pdd.order.number.list.increment.get",
            {
                "start_updated_at": 1794360000,
                "end_updated_at": 1794361800,
                "is_lucky_flag": 0,
                "order_status": 5,
                "refund_status": 5,
                "page": 1,
                "page_size": 100,
                "use_has_next": False,
            },
        )
    assert form["sign"] == EXPECTED and form["data_type"] == "JSON" and form["timestamp"] == "1794362000"
