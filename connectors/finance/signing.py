"""Request signing of ordertwin's ledger query API (HMAC-SHA256 over a canonical request).

The scheme follows the shape of WeChat Pay APIv3's request signature ("如何生成请求签名",
https://pay.weixin.qq.com/docs/partner/development/interface-rules/signature-generation.html:
one line each for the HTTP method, the URL path, the timestamp and a random nonce, every
line ended by ``\\n``) with two changes, both so a merchant's finance team can implement and
debug it with a standard library alone:

* a shared secret and HMAC-SHA256 instead of WeChat's merchant RSA key pair;
* the query string is signed in a *canonical* form (below) instead of as sent, so an HTTP
  stack that re-encodes the URL (``+`` vs ``%20``, parameter order) cannot break signatures.

Canonical request (UTF-8, each line ends with ``\\n``, including the last)::

    <HTTP method, upper case>
    <URL path as sent, e.g. /v1/postings>
    <canonical query>
    <timestamp: Unix seconds, decimal>
    <nonce: 16-64 characters [A-Za-z0-9]>

Canonical query: every query parameter (``name``, ``value``) percent-encoded as RFC 3986
says (UTF-8 bytes; ``A-Z a-z 0-9 - . _ ~`` kept, everything else ``%XX`` with upper-case
hex, so a space is ``%20``), pairs sorted by encoded name then encoded value, written
``name=value`` and joined with ``&``. No parameters: an empty line.

``signature = lower-case hex(HMAC-SHA256(key = api_secret, message = canonical request))``,
sent as::

    Authorization: OT-HMAC-SHA256 key_id="<api key>",timestamp="<ts>",nonce="<nonce>",signature="<hex>"

The server recomputes the signature from the request it received (method, path, decoded
query parameters), refuses a timestamp more than :data:`TIMESTAMP_TOLERANCE` away from its
own clock, and refuses a nonce it has already seen from that key within twice that time
(a captured request cannot be replayed). Worked example (test vector, checked by
``tests/connectors/test_finance_signing.py``): key id ``fin-dev-key``, secret
``fin-dev-secret``, ``GET /v1/postings`` with ``posted_from=2026-11-11 00:00:00``,
``posted_to=2026-11-11 01:00:00``, ``page_size=200``, timestamp ``1794326400``, nonce
``5f2b8c1e9a7d4e3f8b6a1c0d2e4f6a8b``::

    GET
    /v1/postings
    page_size=200&posted_from=2026-11-11%2000%3A00%3A00&posted_to=2026-11-11%2001%3A00%3A00
    1794326400
    5f2b8c1e9a7d4e3f8b6a1c0d2e4f6a8b

    signature = 85ab2c7d33ac295fa677702bb391e7b3914794e0fd8eb62669ca51c932cefd04
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

SCHEME = "OT-HMAC-SHA256"
TIMESTAMP_TOLERANCE = timedelta(minutes=5)  # ordertwin's choice (clock skew + transit), not a cited figure
NONCE_PATTERN = re.compile(r"[A-Za-z0-9]{16,64}")
_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')

QueryParams = Mapping[str, str] | Iterable[tuple[str, str]]


class AuthError(Exception):
    """The server refuses a request's authentication; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _encode(text: str) -> str:
    return quote(text, safe="-._~")  # RFC 3986 unreserved characters only; UTF-8 bytes


def _pairs(params: QueryParams) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def canonical_query(params: QueryParams) -> str:
    """The signed (and, by ordertwin's client, sent) form of the query parameters."""
    encoded = sorted((_encode(name), _encode(value)) for name, value in _pairs(params))
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_request(method: str, path: str, params: QueryParams, timestamp: str, nonce: str) -> str:
    """The five-line message that is signed (see the module docstring)."""
    return f"{method.upper()}\n{path}\n{canonical_query(params)}\n{timestamp}\n{nonce}\n"


def sign(secret: str, method: str, path: str, params: QueryParams, timestamp: str, nonce: str) -> str:
    """Lower-case hex HMAC-SHA256 of the canonical request."""
    message = canonical_request(method, path, params, timestamp, nonce).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """The fields of an ``Authorization`` header."""

    key_id: str
    timestamp: str
    nonce: str
    signature: str

    def header(self) -> str:
        return (
            f'{SCHEME} key_id="{self.key_id}",timestamp="{self.timestamp}",'
            f'nonce="{self.nonce}",signature="{self.signature}"'
        )


def authorization(
    key_id: str, secret: str, method: str, path: str, params: QueryParams, *, timestamp: str, nonce: str
) -> str:
    """The ``Authorization`` header value of a request."""
    signature = sign(secret, method, path, params, timestamp, nonce)
    return Credentials(key_id, timestamp, nonce, signature).header()


def parse_authorization(header: str | None) -> Credentials:
    """Read an ``Authorization`` header; AuthError(``UNAUTHORIZED``) if it is not ours or incomplete."""
    if not header:
        raise AuthError("UNAUTHORIZED", "missing Authorization header")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        raise AuthError("UNAUTHORIZED", f"Authorization scheme must be {SCHEME}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        m = _PARAM.fullmatch(part)
        if m is None:
            raise AuthError("UNAUTHORIZED", f"malformed Authorization field {part.strip()!r:.60}")
        fields[m.group(1)] = m.group(2)
    missing = [n for n in ("key_id", "timestamp", "nonce", "signature") if not fields.get(n)]
    if missing:
        raise AuthError("UNAUTHORIZED", f"Authorization lacks {', '.join(missing)}")
    return Credentials(fields["key_id"], fields["timestamp"], fields["nonce"], fields["signature"])


def verify(
    method: str,
    path: str,
    params: QueryParams,
    header: str | None,
    *,
    secret_for: Callable[[str], str | None],
    now: datetime,
    tolerance: timedelta = TIMESTAMP_TOLERANCE,
) -> Credentials:
    """The server side: check key, freshness and signature (constant-time); return the
    credentials (the caller checks the nonce for replays). Raises :class:`AuthError` with
    ``UNAUTHORIZED``, ``UNKNOWN_KEY``, ``TIMESTAMP_EXPIRED`` or ``SIGN_ERROR``."""
    creds = parse_authorization(header)
    secret = secret_for(creds.key_id)
    if secret is None:
        raise AuthError("UNKNOWN_KEY", f"unknown key_id {creds.key_id!r:.40}")
    if not creds.timestamp.isdigit() or len(creds.timestamp) > 12:
        raise AuthError("UNAUTHORIZED", "timestamp must be Unix seconds")
    sent = datetime.fromtimestamp(int(creds.timestamp), UTC)
    if abs(sent - now) > tolerance:
        raise AuthError("TIMESTAMP_EXPIRED", f"timestamp {creds.timestamp} is more than {tolerance} from server time")
    if NONCE_PATTERN.fullmatch(creds.nonce) is None:
        raise AuthError("UNAUTHORIZED", "nonce must be 16-64 characters [A-Za-z0-9]")
    expected = sign(secret, method, path, params, creds.timestamp, creds.nonce)
    if not hmac.compare_digest(expected, creds.signature.lower()):
        raise AuthError("SIGN_ERROR", "signature does not match the canonical request")
    return creds
