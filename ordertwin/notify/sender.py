"""One HTTP delivery attempt to one target, classified: ok, or why not (and whether to slow down).

WeCom and DingTalk answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success and a non-zero
``errcode`` otherwise (WeCom 45009 / DingTalk 130101, 410100: sending too fast; DingTalk may also
answer a throttled robot with a redirect). A generic webhook succeeds with any 2xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ordertwin.notify.render import Message
from ordertwin.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, dingtalk_url, webhook_signature
from ordertwin.notify.targets import Target

RATE_LIMIT_ERRCODES = frozenset({45009, 130101, 410100})


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # http_5xx | http_4xx | errcode | rate_limited | timeout | connection
    detail: str = ""

    @property
    def rate_limited(self) -> bool:
        return self.reason == "rate_limited"


def classify(target: Target, status: int, text: str) -> Outcome:
    if status >= 500:
        return Outcome(False, "http_5xx", f"HTTP {status}")
    if status == 429:
        return Outcome(False, "rate_limited", "HTTP 429")
    if 300 <= status < 400:
        # DingTalk redirects a robot that sent too fast; nothing else should redirect.
        return Outcome(False, "rate_limited" if target.kind == "dingtalk" else "http_4xx", f"HTTP {status}")
    if status >= 400 or status < 200:
        return Outcome(False, "http_4xx", f"HTTP {status}")
    if target.kind == "webhook":
        return Outcome(True)
    try:
        doc: Any = json.loads(text)
        code = int(doc.get("errcode", -1))
        errmsg = str(doc.get("errmsg", ""))[:200]
    except (ValueError, AttributeError, TypeError):
        return Outcome(False, "errcode", f"not a robot answer: {text[:100]!r}")
    if code == 0:
        return Outcome(True)
    if code in RATE_LIMIT_ERRCODES:
        return Outcome(False, "rate_limited", f"errcode {code}: {errmsg}")
    return Outcome(False, "errcode", f"errcode {code}: {errmsg}")


def request_of(target: Target, message: Message, now_ms: int) -> tuple[URL, bytes, dict[str, str]]:
    """URL (signed for DingTalk), body and headers of one POST."""
    body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    url = target.url
    if target.kind == "dingtalk" and target.secret:
        url = dingtalk_url(url, target.secret, now_ms)
    if target.kind == "webhook" and target.secret:
        ts = now_ms // 1000
        headers[TIMESTAMP_HEADER] = str(ts)
        headers[SIGNATURE_HEADER] = webhook_signature(target.secret, ts, body)
    # encoded=True: the DingTalk sign is already URL-encoded and must reach the robot verbatim.
    return URL(url, encoded=True), body, headers


async def post(
    session: aiohttp.ClientSession, target: Target, message: Message, *, now_ms: int, timeout_s: float
) -> Outcome:
    url, body, headers = request_of(target, message, now_ms)
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            text = await resp.text(errors="replace")
            return classify(target, resp.status, text)
    except TimeoutError:
        return Outcome(False, "timeout", f"no answer within {timeout_s:.0f}s")
    except aiohttp.ClientError as exc:
        return Outcome(False, "connection", type(exc).__name__)
