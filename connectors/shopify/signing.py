"""Shopify webhook signatures.

Shopify (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries, "Verify webhook
deliveries"): every HTTPS delivery carries ``X-Shopify-Hmac-SHA256`` = base64 of
HMAC-SHA256 over the *raw* request body, keyed with the app's client secret. Compute it
over the bytes as received (never a re-serialised parse) and compare in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

HMAC_HEADER = "X-Shopify-Hmac-Sha256"


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def webhook_hmac(secret: str | bytes, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value Shopify sends with ``body``."""
    digest = hmac.new(_key(secret), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the right signature of ``body`` (constant-time comparison)."""
    if not header:
        return False
    expected = webhook_hmac(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))
