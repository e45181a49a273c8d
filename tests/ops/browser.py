"""Headless Chromium driven over the DevTools protocol (aiohttp websocket; no npm, no driver).

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it when missing).
Runs as root, hence ``--no-sandbox``; networking features that would call out are disabled, and
the browser only ever loads pages from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page, closed by :meth:`close`."""

    def __init__(self, executable: str, profile_dir: Path, *, width: int = 1400, height: int = 1000) -> None:
        self.executable = executable
        self.profile_dir = profile_dir
        self.width = width
        self.height = height
        self.proc: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._id = 0
        self.console: list[str] = []
        self.exceptions: list[str] = []

    async def start(self) -> Browser:
        self.proc = await asyncio.create_subprocess_exec(
            self.executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile_dir}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        port = None
        lines: list[str] = []
        async with asyncio.timeout(60):
            while port is None:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise RuntimeError("chromium exited early:\n" + "".join(lines))
                line = raw.decode(errors="replace")
                lines.append(line)
                found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
                if found:
                    port = int(found.group(1))
        asyncio.get_running_loop().create_task(self._drain_stderr())
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while await self.proc.stderr.readline():
            pass

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.ws is not None
        self._id += 1
        call_id = self._id
        await self.ws.send_str(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        while True:
            msg = await self.ws.receive(timeout=60)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"devtools connection ended: {msg.type}")
            doc = json.loads(msg.data)
            if doc.get("method") == "Runtime.consoleAPICalled":
                args = doc["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif doc.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(json.dumps(doc["params"].get("exceptionDetails", {}))[:500])
            if doc.get("id") == call_id:
                if "error" in doc:
                    raise RuntimeError(f"{method}: {doc['error']}")
                result: dict[str, Any] = doc.get("result", {})
                return result

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, within: float = 30.0) -> Any:
        """Poll ``expression`` in the page until it is truthy; return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        last: Any = None
        while loop.time() < deadline:
            try:
                last = await self.evaluate(expression)
            except RuntimeError:
                last = None  # page still navigating
            if last:
                return last
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expression!r} (last: {last!r})")

    async def screenshot(self) -> bytes:
        """A PNG of the whole page."""
        height = await self.evaluate("document.documentElement.scrollHeight") or self.height
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
        )
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
