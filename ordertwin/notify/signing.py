"""Request signing: DingTalk robot 加签, and an HMAC header for generic webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Ordertwin-Signature"
TIMESTAMP_HEADER = "X-Ordertwin-Timestamp"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign``: urlencode(base64(hmac_sha256(secret, f"{timestamp}\\n{secret}"))).

    The result is already URL-encoded (as DingTalk documents it); append it to the URL verbatim.
    """
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def dingtalk_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with ``timestamp`` and ``sign`` added (replacing any already there)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("timestamp", "sign")]
    encoded = urlencode(query)
    extra = f"timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, f"{encoded}&{extra}" if encoded else extra, ""))


def webhook_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, f"{timestamp}." + body), for generic receivers."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"
