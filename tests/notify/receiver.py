"""A local aiohttp receiver playing WeCom robot, DingTalk robot and a generic webhook.

It checks what the real services check (DingTalk: timestamp within an hour and the HMAC sign;
webhook: our HMAC header), records every request, and answers from a script so tests can make
it fail (5xx, errcode, rate limit) and recover.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from ordertwin.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

OK = {"errcode": 0, "errmsg": "ok"}


@dataclass
class Request:
    kind: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        if self.status != 200:
            return False
        return self.kind == "webhook" or self._answer.get("errcode") == 0

    _answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Receiver:
    dingtalk_secret: str = ""
    webhook_secret: str = ""
    clock: Callable[[], float] = time.monotonic
    requests: list[Request] = field(default_factory=list)
    script: dict[str, deque[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    default: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    base: str = ""
    on_request: Callable[[Request], None] | None = None

    def fail_next(self, kind: str, *answers: tuple[int, dict[str, Any]]) -> None:
        self.script.setdefault(kind, deque()).extend(answers)

    def set_default(self, kind: str, status: int, body: dict[str, Any] | None = None) -> None:
        self.default[kind] = (status, body if body is not None else OK)

    def ok_requests(self, kind: str) -> list[Request]:
        return [r for r in self.requests if r.kind == kind and r.ok]

    def _answer(self, kind: str) -> tuple[int, dict[str, Any]]:
        queue = self.script.get(kind)
        if queue:
            return queue.popleft()
        return self.default.get(kind, (200, OK))

    def _check_dingtalk(self, request: web.Request) -> dict[str, Any] | None:
        if not self.dingtalk_secret:
            return None
        ts = request.query.get("timestamp", "")
        raw_sign = request.rel_url.raw_query_string.split("sign=", 1)[-1].split("&", 1)[0]
        if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3_600_000:
            return {"errcode": 310000, "errmsg": "timestamp invalid"}
        expected = base64.b64encode(
            hmac.new(self.dingtalk_secret.encode(), f"{ts}\n{self.dingtalk_secret}".encode(), hashlib.sha256).digest()
        ).decode()
        if unquote_plus(raw_sign) != expected:
            return {"errcode": 310000, "errmsg": "sign not match"}
        return None

    async def _handle(self, request: web.Request, kind: str) -> web.Response:
        body = await request.read()
        status, answer = self._answer(kind)
        if status == 200 and kind == "dingtalk":
            answer = self._check_dingtalk(request) or answer
        if status == 200 and kind == "webhook" and self.webhook_secret:
            ts = request.headers.get(TIMESTAMP_HEADER, "")
            mac = hmac.new(self.webhook_secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
            if request.headers.get(SIGNATURE_HEADER) != f"sha256={mac}":
                status, answer = 401, {"error": "bad signature"}
        record = Request(
            kind=kind,
            path=request.path,
            query=dict(request.query),
            raw_query=request.rel_url.raw_query_string,
            headers=dict(request.headers),
            body=body,
            status=status,
            at=self.clock(),
            _answer=answer,
        )
        self.requests.append(record)
        if self.on_request is not None:
            self.on_request(record)
        return web.json_response(answer, status=status)

    async def start(self) -> Receiver:
        async def wecom(request: web.Request) -> web.Response:
            return await self._handle(request, "wecom")

        async def dingtalk(request: web.Request) -> web.Response:
            return await self._handle(request, "dingtalk")

        async def webhook(request: web.Request) -> web.Response:
            return await self._handle(request, "webhook")

        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", wecom)
        app.router.add_post("/robot/send", dingtalk)
        app.router.add_post("/hooks/ordertwin", webhook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def targets(self, *kinds: str, **extra: Any) -> list[dict[str, Any]]:
        urls = {
            "wecom": f"{self.base}/cgi-bin/webhook/send?key=693a91f6-test-key",
            "dingtalk": f"{self.base}/robot/send?access_token=ding-test-token",
            "webhook": f"{self.base}/hooks/ordertwin",
        }
        out = []
        for kind in kinds:
            entry: dict[str, Any] = {"kind": kind, "name": kind, "url": urls[kind], **extra.get(kind, {})}
            if kind == "dingtalk" and self.dingtalk_secret:
                entry["secret"] = self.dingtalk_secret
            if kind == "webhook" and self.webhook_secret:
                entry["secret"] = self.webhook_secret
            out.append(entry)
        return out
