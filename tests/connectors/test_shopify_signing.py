"""Shopify webhook HMAC: base64 HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from connectors.shopify import signing

BODY = b'{"id":820982911946154508,"email":"jon@example.com","financial_status":"paid"}'
# openssl dgst -sha256 -hmac hush -binary | base64 (computed independently of this code)
VECTOR = "qdbf4l++JpUUAlVOyF3rZoMjQ8C3aksJfQ3ibAywGnQ="


def test_signature_matches_an_independently_computed_vector() -> None:
    assert signing.webhook_hmac("hush", BODY) == VECTOR
    assert signing.webhook_hmac(b"hush", BODY) == VECTOR


def test_verify_accepts_only_the_exact_body_and_secret() -> None:
    assert signing.verify_webhook("hush", BODY, VECTOR)
    assert signing.verify_webhook("hush", BODY, f"  {VECTOR}\n")  # header whitespace is not the body
    assert not signing.verify_webhook("hush", BODY + b" ", VECTOR)  # re-serialised / altered body
    assert not signing.verify_webhook("hush", BODY.replace(b"paid", b"void"), VECTOR)
    assert not signing.verify_webhook("other", BODY, VECTOR)
    assert not signing.verify_webhook("hush", BODY, None)
    assert not signing.verify_webhook("hush", BODY, "")
    assert not signing.verify_webhook("hush", BODY, VECTOR.lower())  # base64 is case-sensitive
    assert not signing.verify_webhook("hush", BODY, "ø" * 44)


def test_verification_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    assert signing.verify_webhook("hush", BODY, VECTOR)
    assert not signing.verify_webhook("hush", BODY, "x" + VECTOR[1:])
    assert len(calls) == 2
