"""Kuaidi100 push signature: upper-case hex MD5 of ``param + salt`` over UTF-8.

The vectors were computed independently with coreutils, e.g.
``printf '%s' '<param><salt>' | md5sum``, then upper-cased."""

from __future__ import annotations

import pytest

from connectors.carrier.signing import push_sign, verify_push

PARAM = '{"status":"polling","lastResult":{"nu":"YT1234567890123","state":"0"}}'
SALT = "kd100-dev-salt"
SIGN = "E4F79E6CB8B9F26117771A3CE1CC82BE"

# Non-ASCII in both param and salt: pins UTF-8 (GBK would give another digest).
PARAM_CN = '{"message":"3天查询无记录","status":"abort"}'
SALT_CN = "salt-中文"
SIGN_CN = "D2662ED2E1E3F5E29A40C3E27E0345BD"


@pytest.mark.parametrize(
    ("param", "salt", "sign"),
    [(PARAM, SALT, SIGN), (PARAM_CN, SALT_CN, SIGN_CN), ("a", "bc", "900150983CD24FB0D6963F7D28E17F72")],
)
def test_vectors(param: str, salt: str, sign: str) -> None:
    assert push_sign(param, salt) == sign
    assert verify_push(param, salt, sign)


def test_sign_is_upper_case_hex_and_lower_case_is_tolerated() -> None:
    assert push_sign(PARAM, SALT).isupper()
    assert verify_push(PARAM, SALT, SIGN.lower())
    assert verify_push(PARAM, SALT, f" {SIGN}\n")  # form values may carry stray whitespace


def test_param_text_is_signed_exactly_not_its_json_meaning() -> None:
    # Same JSON value, other text: not the signed param.
    respaced = PARAM.replace(",", ", ")
    assert not verify_push(respaced, SALT, SIGN)


@pytest.mark.parametrize(
    "tampered",
    [
        PARAM.replace('"state":"0"', '"state":"3"'),  # the state changed after signing
        PARAM.replace("YT1234567890123", "YT1234567890124"),  # another waybill
        PARAM + " ",
        PARAM[:-1],
        "",
    ],
)
def test_tampered_param_is_refused(tampered: str) -> None:
    assert not verify_push(tampered, SALT, SIGN)


@pytest.mark.parametrize("salt", ["", "kd100-dev-salt ", "KD100-DEV-SALT", "other"])
def test_wrong_salt_is_refused(salt: str) -> None:
    assert not verify_push(PARAM, salt, SIGN)


@pytest.mark.parametrize(
    "sign",
    [None, "", SIGN[:-1], SIGN + "0", SIGN[:-1] + "F", "0" * 32, "签名" * 16, push_sign(PARAM, "")],
)
def test_bad_sign_is_refused(sign: str | None) -> None:
    assert not verify_push(PARAM, SALT, sign)
