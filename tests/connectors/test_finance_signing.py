r"""Ledger API signing against a vector computed independently with OpenSSL::

    Q='page_size=200&posted_from=2026-11-11%2000%3A00%3A00&posted_to=2026-11-11%2001%3A00%3A00'
    printf 'GET\n/v1/postings\n%s\n1794326400\n5f2b8c1e9a7d4e3f8b6a1c0d2e4f6a8b\n' "$Q" \
      | openssl dgst -sha256 -hmac fin-dev-secret

and the server-side checks: tampering with any signed part, stale or future timestamps,
unknown keys, malformed headers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from connectors.finance import signing
from connectors.finance.signing import AuthError

PARAMS = {"posted_from": "2026-11-11 00:00:00", "posted_to": "2026-11-11 01:00:00", "page_size": "200"}
TS, NONCE = "1794326400", "5f2b8c1e9a7d4e3f8b6a1c0d2e4f6a8b"
NOW = datetime.fromtimestamp(int(TS), UTC)  # 2026-11-11 00:00:00 Beijing time
EXPECTED = "85ab2c7d33ac295fa677702bb391e7b3914794e0fd8eb62669ca51c932cefd04"
CANONICAL = (
    "GET\n/v1/postings\n"
    "page_size=200&posted_from=2026-11-11%2000%3A00%3A00&posted_to=2026-11-11%2001%3A00%3A00\n"
    "1794326400\n5f2b8c1e9a7d4e3f8b6a1c0d2e4f6a8b\n"
)


def secret_for(key_id: str) -> str | None:
    return "fin-dev-secret" if key_id == "fin-dev-key" else None


def header(**kw: str) -> str:
    args = {"method": "GET", "path": "/v1/postings", "timestamp": TS, "nonce": NONCE}
    args.update(kw)
    return signing.authorization(
        "fin-dev-key",
        "fin-dev-secret",
        args["method"],
        args["path"],
        PARAMS,
        timestamp=args["timestamp"],
        nonce=args["nonce"],
    )


def test_canonical_request_and_signature_match_the_vector() -> None:
    assert signing.canonical_request("get", "/v1/postings", PARAMS, TS, NONCE) == CANONICAL
    assert signing.sign("fin-dev-secret", "GET", "/v1/postings", PARAMS, TS, NONCE) == EXPECTED


def test_the_documented_example_is_the_vector() -> None:
    """The worked example a finance team checks its implementation against is not stale."""
    doc = signing.__doc__ or ""
    assert f"signature = {EXPECTED}" in doc
    assert CANONICAL.splitlines()[2] in doc


def test_canonical_query_encodes_rfc3986_and_sorts() -> None:
    assert signing.canonical_query({}) == ""
    assert signing.canonical_query([("b", "2"), ("a", "x y"), ("a", "1")]) == "a=1&a=x%20y&b=2"
    # Unreserved characters stay, everything else is %XX of the UTF-8 bytes, upper-case hex.
    assert signing.canonical_query({"t": "AZaz09-._~+/=&é"}) == "t=AZaz09-._~%2B%2F%3D%26%C3%A9"
    # Sorting is by the encoded name, so it does not depend on the order sent.
    assert signing.canonical_query(list(reversed(list(PARAMS.items())))) == signing.canonical_query(PARAMS)


def test_header_round_trip_and_verify() -> None:
    value = header()
    assert value == (f'OT-HMAC-SHA256 key_id="fin-dev-key",timestamp="{TS}",nonce="{NONCE}",signature="{EXPECTED}"')
    creds = signing.verify("GET", "/v1/postings", PARAMS, value, secret_for=secret_for, now=NOW)
    assert (creds.key_id, creds.timestamp, creds.nonce, creds.signature) == ("fin-dev-key", TS, NONCE, EXPECTED)
    spaced = value.replace(",", ", ")  # optional whitespace between the fields
    assert signing.verify("GET", "/v1/postings", PARAMS, spaced, secret_for=secret_for, now=NOW) == creds


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("POST", "/v1/postings", PARAMS),
        ("GET", "/v1/postings/", PARAMS),
        ("GET", "/v2/postings", PARAMS),
        ("GET", "/v1/postings", {**PARAMS, "posted_to": "2026-11-11 01:00:01"}),
        ("GET", "/v1/postings", {**PARAMS, "page_token": "abc"}),
        ("GET", "/v1/postings", {k: v for k, v in PARAMS.items() if k != "page_size"}),
    ],
)
def test_any_change_to_the_signed_request_is_refused(method: str, path: str, params: dict[str, str]) -> None:
    with pytest.raises(AuthError) as err:
        signing.verify(method, path, params, header(), secret_for=secret_for, now=NOW)
    assert err.value.code == "SIGN_ERROR"


def test_tampered_header_fields_are_refused() -> None:
    good = header()
    other_nonce = good.replace(NONCE, "0" * 32)
    later = good.replace(f'timestamp="{TS}"', f'timestamp="{int(TS) + 1}"')
    flipped = good.replace(EXPECTED, EXPECTED[:-1] + ("0" if EXPECTED[-1] != "0" else "1"))
    for bad in (other_nonce, later, flipped):
        with pytest.raises(AuthError) as err:
            signing.verify("GET", "/v1/postings", PARAMS, bad, secret_for=secret_for, now=NOW)
        assert err.value.code == "SIGN_ERROR"
    wrong_secret = signing.authorization("fin-dev-key", "not-the-secret", "GET", "/v1/postings", PARAMS,
                                         timestamp=TS, nonce=NONCE)  # fmt: skip
    with pytest.raises(AuthError, match="signature"):
        signing.verify("GET", "/v1/postings", PARAMS, wrong_secret, secret_for=secret_for, now=NOW)
    upper = good.replace(EXPECTED, EXPECTED.upper())  # hex case is not significant
    assert signing.verify("GET", "/v1/postings", PARAMS, upper, secret_for=secret_for, now=NOW)


@pytest.mark.parametrize("skew_s", [-301, 301, 3600, -86400])
def test_stale_or_future_timestamps_are_refused(skew_s: int) -> None:
    with pytest.raises(AuthError) as err:
        signing.verify(
            "GET", "/v1/postings", PARAMS, header(), secret_for=secret_for, now=NOW + timedelta(seconds=skew_s)
        )
    assert err.value.code == "TIMESTAMP_EXPIRED"


@pytest.mark.parametrize("skew_s", [-300, -1, 0, 299, 300])
def test_timestamps_within_five_minutes_pass(skew_s: int) -> None:
    now = NOW + timedelta(seconds=skew_s)
    assert signing.verify("GET", "/v1/postings", PARAMS, header(), secret_for=secret_for, now=now)


def test_unknown_key_and_malformed_headers() -> None:
    unknown = header().replace('key_id="fin-dev-key"', 'key_id="someone-else"')
    cases = {
        unknown: "UNKNOWN_KEY",
        "": "UNAUTHORIZED",
        "Bearer abc": "UNAUTHORIZED",
        header().replace("OT-HMAC-SHA256", "OT-HMAC-SHA1"): "UNAUTHORIZED",
        header().replace(f',nonce="{NONCE}"', ""): "UNAUTHORIZED",
        header().replace('"', ""): "UNAUTHORIZED",
        header(timestamp="17943264OO"): "UNAUTHORIZED",
        header(nonce="short"): "UNAUTHORIZED",
        header(nonce="has-dashes-0123456789"): "UNAUTHORIZED",
    }
    for value, code in cases.items():
        with pytest.raises(AuthError) as err:
            signing.verify("GET", "/v1/postings", PARAMS, value, secret_for=secret_for, now=NOW)
        assert err.value.code == code, value
    with pytest.raises(AuthError) as missing:
        signing.verify("GET", "/v1/postings", PARAMS, None, secret_for=secret_for, now=NOW)
    assert missing.value.code == "UNAUTHORIZED"


def test_nonce_pattern_matches_the_client_nonces() -> None:
    from connectors.finance.client import new_nonce

    nonces = {new_nonce() for _ in range(50)}
    assert len(nonces) == 50 and all(signing.NONCE_PATTERN.fullmatch(n) for n in nonces)
    assert re.fullmatch(r"[0-9a-f]{32}", next(iter(nonces)))
