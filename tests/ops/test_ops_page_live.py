"""The ops page in a real browser against a real worker with a real open divergence.

A paid Taobao order that OMS, WMS and finance never hear of (while they vouch for their data up
to now) goes through the real broker; the real worker raises paid_not_in_*; headless Chromium
loads ``GET /ops`` from that worker and must render the divergences, filter them, and show the
order's twin as a timeline. The screenshot is kept (``docs/ops.png`` when
``ORDERTWIN_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from ordertwin.settings import REPO_ROOT, Settings
from tests.live import WorkerProcess, free_port
from tests.ops.browser import Browser, chromium_path
from tests.ops.faults import inject_divergence

pytestmark = [pytest.mark.live, pytest.mark.slow]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI must install it: apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return path


def _wait_open_alerts(worker: WorkerProcess, order_id: str, n: int, timeout: float = 90) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    mine: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        status, body = worker.get("/alerts?state=open&limit=10000")
        if status == 200:
            mine = [a for a in body["alerts"] if a["subject"] == order_id]
            if len(mine) >= n:
                return mine
        time.sleep(0.5)
    raise AssertionError(f"worker raised {mine} for {order_id}; log:\n{worker.tail_log()}")


def _js(value: object) -> str:
    return json.dumps(value)


async def test_ops_page_shows_the_open_divergence(live_settings: Settings, tmp_path: Path) -> None:
    executable = _chromium()
    settings = live_settings.model_copy(
        update={"web_port": free_port(), "divergence_threshold_s": 5.0, "store": "memory://", "log_format": "json"}
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    browser = Browser(executable, tmp_path / "profile")
    try:
        worker.wait_healthy()
        order_id = inject_divergence(settings, 4_100_000_000_000_001)
        alerts = _wait_open_alerts(worker, order_id, 3)
        assert {a["rule"] for a in alerts} == {"paid_not_in_oms", "paid_not_in_wms", "paid_not_in_finance"}
        wms = next(a for a in alerts if a["rule"] == "paid_not_in_wms")

        await browser.start()
        await browser.goto(worker.base + "/ops")
        # The divergence is rendered (polling /alerts), with its kind, subject and subsystem.
        row = await browser.wait_for(
            f"""(() => {{
                const tr = document.querySelector('#divergences tbody tr[data-alert-id={_js(wms["alert_id"])}]');
                return tr && [...tr.cells].map(td => td.textContent);
            }})()"""
        )
        assert row[0] == "paid_not_in_wms" and row[1] == "CRITICAL"
        assert row[2] == order_id and row[3] == "taobao" and row[4] == "WMS"
        assert "warehouse received the paid order" in row[6]
        assert row[5].endswith("min")  # age: the order was paid 20 minutes ago

        # Health indicators and worker status come from /ops/indicators and /health.
        open_count = await browser.wait_for(
            """(() => {
                const v = document.querySelector('#indicators .indicator[data-id="open_divergences"] .value');
                return v && Number(v.textContent) >= 3 && Number(v.textContent);
            })()"""
        )
        assert open_count >= 3
        assert await browser.evaluate("document.querySelector('#worker').dataset.status") == "ok"
        assert await browser.wait_for("document.querySelectorAll('#history li[data-kind=RAISED]').length >= 3")

        # Filters: by kind, by channel, by age (paid 20 min ago: hidden by "> 1 h").
        filtered = await browser.evaluate(
            """(() => {
                const pick = (id, v) => { const s = document.querySelector(id); s.value = v;
                                           s.dispatchEvent(new Event('change')); };
                pick('#f-rule', 'paid_not_in_wms');
                const rules = [...document.querySelectorAll('#divergences tbody tr')].map(tr => tr.dataset.rule);
                pick('#f-channel', 'taobao');
                const kept = document.querySelectorAll('#divergences tbody tr').length;
                pick('#f-age', '3600');
                const old = document.querySelectorAll('#divergences tbody tr').length;
                pick('#f-age', '0'); pick('#f-rule', ''); pick('#f-channel', '');
                return {rules, kept, old, empty: !document.querySelector('#divergences-empty').hidden};
            })()"""
        )
        assert set(filtered["rules"]) == {"paid_not_in_wms"}
        assert filtered["kept"] >= 1 and filtered["old"] == 0

        # Order lookup: the twin across subsystems, as a timeline, from GET /orders/{id}.
        await browser.evaluate(
            f"""(() => {{
                document.querySelector('#order-id').value = {_js(order_id)};
                document.querySelector('#lookup').requestSubmit();
            }})()"""
        )
        timeline = await browser.wait_for(
            """(() => {
                const items = [...document.querySelectorAll('#order-timeline li')].map(li => li.textContent);
                return items.length >= 4 && items;
            })()"""
        )
        text = "\n".join(timeline)
        assert "CHANNEL PAID" in text
        for rule in ("paid_not_in_oms", "paid_not_in_wms", "paid_not_in_finance"):
            assert f"divergence {rule} opened" in text
            assert f"alert RAISED: {rule}" in text
        systems = await browser.evaluate(
            "[...document.querySelectorAll('#order-systems tbody tr')].map(tr => tr.dataset.system)"
        )
        assert systems == ["CHANNEL"]
        summary = await browser.evaluate("document.querySelector('#order-summary').textContent")
        assert order_id in summary and "PAID" in summary and "257.00 CNY" in summary

        # An unknown order is an error message, not a broken page.
        await browser.evaluate(
            """(() => { document.querySelector('#order-id').value = 'taobao:404';
                        document.querySelector('#lookup').requestSubmit(); })()"""
        )
        assert (
            await browser.wait_for(
                "!document.querySelector('#order-error').hidden && document.querySelector('#order-error').textContent"
            )
            == "order not found"
        )
        await browser.evaluate(
            f"""(() => {{ document.querySelector('#order-id').value = {_js(order_id)};
                         document.querySelector('#lookup').requestSubmit(); }})()"""
        )
        await browser.wait_for(
            "!document.querySelector('#order').hidden && document.querySelector('#order-error').hidden"
        )
        assert browser.exceptions == [], browser.exceptions

        shot = await browser.screenshot()
        (tmp_path / "ops.png").write_bytes(shot)
        assert shot.startswith(PNG_MAGIC) and len(shot) > 20_000
        if os.environ.get("ORDERTWIN_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(tmp_path / "ops.png", REPO_ROOT / "docs" / "ops.png")
    finally:
        await browser.close()
        worker.stop()
    # ORDERTWIN_LOG_FORMAT=json: the worker (Faust included) wrote one JSON object per line.
    lines = (tmp_path / "worker.log").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines]
    assert len(docs) > 20 and all(d["service"] == "worker" and d["level"] and d["logger"] for d in docs)
