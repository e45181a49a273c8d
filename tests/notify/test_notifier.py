"""The notifier against a local aiohttp receiver (WeCom robot, DingTalk robot, generic webhook)
with an in-memory consumer: message formats, DingTalk signing, digests under a storm and the
per-robot rate limit, retry with backoff on 5xx / errcode, and no offset commit before delivery.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from ordertwin.errors import ConfigError
from ordertwin.notify import Notifier, NotifyConfig, parse_targets, send_test
from ordertwin.notify.metrics import NotifyMetrics
from ordertwin.notify.render import MAX_MARKDOWN_BYTES, zone
from ordertwin.notify.signing import dingtalk_sign, dingtalk_url
from ordertwin.notify.targets import redact_url
from ordertwin.settings import Settings
from tests.helpers import CODEC
from tests.notify.fakes import FakeConsumer, alert, encoded, identity_offsets
from tests.notify.receiver import Receiver

FAST = NotifyConfig(batch_s=0.05, individual_max=5, retry_base_s=0.02, retry_max_s=0.2, rate_limited_s=0.3)
TZ = zone("Asia/Shanghai")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver(dingtalk_secret="SEC0123456789abcdef", webhook_secret="hook-secret").start()
    yield r
    await r.close()


@asynccontextmanager
async def running(
    consumer: FakeConsumer,
    targets: list[dict[str, Any]],
    *,
    config: NotifyConfig = FAST,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[tuple[Notifier, NotifyMetrics]]:
    metrics = NotifyMetrics(CollectorRegistry())
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"clock": clock} if clock else {}
        notifier = Notifier(
            consumer=consumer,
            targets=parse_targets(targets),
            codec=CODEC,
            metrics=metrics,
            session=session,
            tz=TZ,
            config=config,
            jitter=lambda: 1.0,
            make_commit_offsets=identity_offsets,
            **kwargs,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop))
        try:
            yield notifier, metrics
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def until(check: Callable[[], Any], within: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {within}s")


# --- formats -----------------------------------------------------------------------------------


async def test_wecom_markdown_for_one_alert(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add(encoded(alert(1)))
    async with running(consumer, receiver.targets("wecom")):
        await until(lambda: consumer.commits)
    [req] = receiver.requests
    assert req.query == {"key": "693a91f6-test-key"}
    assert req.headers["Content-Type"].startswith("application/json")
    body = req.json
    assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"content"}
    content = body["markdown"]["content"]
    assert '<font color="warning">RAISED</font> paid_not_in_wms (CRITICAL)' in content
    assert "order `taobao:4000001` · channel taobao · subsystem WMS" in content
    assert "expected: the warehouse received the paid order" in content
    assert "observed: nothing (never reported this order)" in content
    assert "2026-11-25 18:00:01 CST" in content  # Beijing time
    assert "alert_id: a00001" in content
    assert len(content.encode()) <= 4096
    assert consumer.commits == [[("alerts", 0, 1)]]


async def test_dingtalk_markdown_is_signed_as_documented(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add(encoded(alert(2, state="RESOLVED", rule="outbound_not_picked_up", severity="WARNING")))
    async with running(consumer, receiver.targets("dingtalk")):
        await until(lambda: consumer.commits)
    [req] = receiver.requests
    assert req.ok, req._answer  # the receiver verified timestamp and sign
    assert req.query["access_token"] == "ding-test-token"
    ts = req.query["timestamp"]
    secret = "SEC0123456789abcdef"
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert f"sign={quote_plus(base64.b64encode(digest).decode())}" in req.raw_query
    body = req.json
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"].startswith("ordertwin RESOLVED outbound_not_picked_up")
    assert "**RESOLVED** outbound_not_picked_up (WARNING)" in body["markdown"]["text"]
    assert "resolved after 1800 s" in body["markdown"]["text"]


def test_dingtalk_sign_known_answer() -> None:
    secret, ts = "this is secret", 1_700_000_000_000
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    expected = quote_plus(base64.b64encode(digest).decode())
    assert dingtalk_sign(secret, ts) == expected
    assert "%" in expected or "+" not in expected  # URL-encoded base64
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=abc&sign=old", secret, ts)
    assert url == f"https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp={ts}&sign={expected}"


async def test_a_wrong_dingtalk_secret_is_retried_not_committed(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add(encoded(alert(3)))
    targets = receiver.targets("dingtalk")
    targets[0]["secret"] = "SECwrong"
    async with running(consumer, targets) as (_, metrics):
        await until(lambda: len(receiver.requests) >= 3)
        assert consumer.commits == []
        assert metrics.value("ordertwin_notify_failures_total", target="dingtalk", reason="errcode") >= 3
    assert all(r._answer["errmsg"] == "sign not match" for r in receiver.requests)
    assert consumer.commits == []


async def test_generic_webhook_gets_every_alert_signed(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add(encoded(*(alert(i) for i in range(12))))
    async with running(consumer, receiver.targets("webhook")):
        await until(lambda: consumer.commits)
    [req] = receiver.requests
    assert req.ok  # signature verified by the receiver
    body = req.json
    assert body["source"] == "ordertwin" and body["kind"] == "alerts" and body["count"] == 12
    assert [a["alert_id"] for a in body["alerts"]] == [f"a{i:05d}" for i in range(12)]
    assert body["alerts"][0]["episode_started_at"] == "2026-11-25T10:00:00+00:00"
    assert body["summary"] == {"states": {"RAISED": 12}, "rules": {"paid_not_in_wms": 12}}


# --- batching, digest, rate limit ----------------------------------------------------------


async def test_a_storm_becomes_one_digest_per_robot(receiver: Receiver) -> None:
    storm = [alert(i, rule="paid_not_in_wms") for i in range(400)]
    storm += [
        alert(1000 + i, rule="tracking_not_on_channel", severity="WARNING", subsystem="CHANNEL") for i in range(80)
    ]
    storm += [alert(i, state="RESOLVED") for i in range(20)]
    consumer = FakeConsumer()
    consumer.add(encoded(*storm[:250]), partition=0)
    consumer.add(encoded(*storm[250:]), partition=1)
    async with running(consumer, receiver.targets("wecom", "dingtalk", "webhook")) as (_, metrics):
        await until(lambda: consumer.committed_upto() == {("alerts", 0): 250, ("alerts", 1): 250})
    by_kind = {k: [r for r in receiver.requests if r.kind == k] for k in ("wecom", "dingtalk", "webhook")}
    assert len(by_kind["wecom"]) == 1 and len(by_kind["dingtalk"]) == 1 and len(by_kind["webhook"]) == 1
    content = by_kind["wecom"][0].json["markdown"]["content"]
    assert content.startswith("### ordertwin: 500 alerts (480 raised, 20 resolved)")
    assert '- <font color="warning">RAISED</font> paid_not_in_wms (CRITICAL): 400' in content
    assert '- <font color="warning">RAISED</font> tracking_not_on_channel (WARNING): 80' in content
    assert '- <font color="info">RESOLVED</font> paid_not_in_wms (CRITICAL): 20' in content
    assert "… and 485 more" in content
    assert len(content.encode()) <= MAX_MARKDOWN_BYTES
    ding = by_kind["dingtalk"][0].json["markdown"]
    assert ding["title"] == "ordertwin: 500 alerts (480 raised, 20 resolved)"
    assert by_kind["webhook"][0].json["count"] == 500
    assert metrics.value("ordertwin_notify_messages_total", target="wecom", kind="digest") == 1
    assert metrics.value("ordertwin_notify_alerts_total", outcome="delivered") == 500


async def test_a_trickle_respects_20_messages_per_minute(receiver: Receiver) -> None:
    """One alert per fake second for 3 fake minutes: never more than 20 messages in any 60 s
    window per robot; what cannot go out individually goes out as a digest; nothing is lost."""
    now = [0.0]
    receiver.clock = lambda: now[0]
    consumer = FakeConsumer(per_call=1)
    consumer.add(encoded(*(alert(i) for i in range(180))))

    def tick() -> None:
        now[0] += 1.0

    consumer.on_consume = tick
    config = NotifyConfig(batch_s=0.5, individual_max=5, retry_base_s=0.02, retry_max_s=0.2)
    async with running(consumer, receiver.targets("wecom"), config=config, clock=lambda: now[0]):
        await until(lambda: consumer.committed_upto() == {("alerts", 0): 180}, within=30)
    times = [r.at for r in receiver.requests]
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) <= 20
    alerts_seen = 0
    digests = 0
    for r in receiver.requests:
        content = r.json["markdown"]["content"]
        if content.startswith("### ordertwin: ") and " alerts (" in content.split("\n")[0]:
            digests += 1
            alerts_seen += int(content.split("### ordertwin: ")[1].split(" alerts")[0])
        else:
            alerts_seen += 1
    assert digests >= 1 and alerts_seen == 180


async def test_a_few_alerts_go_out_one_message_each(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add(encoded(alert(1), alert(2), alert(3)))
    async with running(consumer, receiver.targets("wecom")):
        await until(lambda: consumer.commits)
    assert len(receiver.requests) == 3
    assert [r.json["markdown"]["content"].count("alert_id: a0000") for r in receiver.requests] == [1, 1, 1]


# --- retries and commits -----------------------------------------------------------------


async def test_retry_with_exponential_backoff_on_5xx(receiver: Receiver) -> None:
    receiver.fail_next("wecom", (500, {"error": "x"}), (502, {"error": "x"}), (503, {"error": "x"}))
    consumer = FakeConsumer()
    consumer.add(encoded(alert(7)))
    async with running(consumer, receiver.targets("wecom")) as (_, metrics):
        await until(lambda: consumer.commits)
        assert metrics.value("ordertwin_notify_failures_total", target="wecom", reason="http_5xx") == 3
        assert metrics.value("ordertwin_notify_messages_total", target="wecom", kind="alert") == 1
    assert [r.status for r in receiver.requests] == [500, 502, 503, 200]
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08  # base 0.02 s, doubling
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1  # the same message each time


async def test_errcode_and_rate_limit_answers_are_retried(receiver: Receiver) -> None:
    receiver.fail_next(
        "wecom",
        (200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
        (200, {"errcode": -1, "errmsg": "system busy"}),
    )
    consumer = FakeConsumer()
    consumer.add(encoded(alert(8)))
    async with running(consumer, receiver.targets("wecom")) as (_, metrics):
        await until(lambda: consumer.commits)
        assert metrics.value("ordertwin_notify_failures_total", target="wecom", reason="rate_limited") == 1
        assert metrics.value("ordertwin_notify_failures_total", target="wecom", reason="errcode") == 1
    first, second, third = receiver.requests
    assert second.at - first.at >= FAST.rate_limited_s  # the robot said "too fast": wait its window
    assert third.ok


async def test_nothing_is_committed_before_every_target_has_it(receiver: Receiver) -> None:
    receiver.set_default("dingtalk", 503, {"error": "down"})
    consumer = FakeConsumer()
    consumer.add(encoded(alert(1), alert(2)))
    commits_seen_at: list[int] = []
    consumer.on_commit = lambda _o: commits_seen_at.append(len(receiver.ok_requests("dingtalk")))
    async with running(consumer, receiver.targets("wecom", "dingtalk")) as (_, metrics):
        await until(lambda: len([r for r in receiver.requests if r.kind == "dingtalk"]) >= 4)
        assert consumer.commits == []
        assert metrics.value("ordertwin_notify_pending_alerts") == 2
        assert metrics.value("ordertwin_notify_oldest_pending_seconds") > 0
        wecom_before = len(receiver.ok_requests("wecom"))
        assert wecom_before == 2  # delivered once; not re-sent while DingTalk is retried
        receiver.set_default("dingtalk", 200)
        await until(lambda: consumer.commits)
        assert len(receiver.ok_requests("wecom")) == wecom_before
        assert metrics.value("ordertwin_notify_pending_alerts") == 0
    assert consumer.commits == [[("alerts", 0, 2)]]
    assert commits_seen_at == [2]  # the commit came after DingTalk accepted both


async def test_stopping_mid_retry_commits_nothing(receiver: Receiver) -> None:
    receiver.set_default("wecom", 500, {"error": "down"})
    consumer = FakeConsumer()
    consumer.add(encoded(alert(1)))
    async with running(consumer, receiver.targets("wecom")):
        await until(lambda: len(receiver.requests) >= 2)
    assert consumer.commits == []  # a restart re-reads the alert from the last committed offset


async def test_undecodable_records_are_skipped_and_committed(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add([b"not avro", *encoded(alert(5))])
    async with running(consumer, receiver.targets("wecom")) as (_, metrics):
        await until(lambda: consumer.commits)
        assert metrics.value("ordertwin_notify_alerts_total", outcome="undecodable") == 1
    assert len(receiver.requests) == 1
    assert consumer.commits == [[("alerts", 0, 2)]]


async def test_re_emitted_alerts_are_sent_once(receiver: Receiver) -> None:
    consumer = FakeConsumer(per_call=1)
    consumer.add(encoded(alert(5), alert(5), alert(5, state="RESOLVED"), alert(5)))
    async with running(consumer, receiver.targets("webhook")):
        await until(lambda: consumer.committed_upto() == {("alerts", 0): 4})
    sent = [(a["alert_id"], a["state"]) for r in receiver.requests for a in r.json["alerts"]]
    assert sent == [("a00005", "RAISED"), ("a00005", "RESOLVED")]


async def test_min_severity_per_target(receiver: Receiver) -> None:
    consumer = FakeConsumer()
    consumer.add(encoded(alert(1, severity="WARNING"), alert(2, severity="CRITICAL"), alert(3, severity="INFO")))
    targets = receiver.targets("wecom", "webhook", wecom={"min_severity": "CRITICAL"})
    async with running(consumer, targets):
        await until(lambda: consumer.commits)
    wecom = [r.json["markdown"]["content"] for r in receiver.requests if r.kind == "wecom"]
    assert len(wecom) == 1 and "alert_id: a00002" in wecom[0]
    [hook] = [r.json for r in receiver.requests if r.kind == "webhook"]
    assert hook["count"] == 3


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "slack", "url": "https://x"}, "kind must be one of"),
        ({"kind": "wecom", "url": "ftp://x"}, r"http\(s\) URL"),
        ({"kind": "wecom", "url": "https://x", "min_severity": "LOUD"}, "min_severity"),
        ({"kind": "wecom", "url": "https://x", "rate_per_min": "0"}, "at least 1"),
        ({"kind": "wecom", "url": "https://x", "colour": "red"}, "unknown key"),
    ],
)
def test_bad_targets_are_config_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_targets([entry])


def test_targets_defaults_and_redacted_urls() -> None:
    targets = parse_targets(
        [
            {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY"},
            {"kind": "webhook", "url": "https://user:pw@itsm.example.com/hook?token=t", "name": "itsm"},
        ]
    )
    assert [(t.name, t.rate_per_min, t.min_severity) for t in targets] == [
        ("wecom-1", 20, "INFO"),
        ("itsm", 600, "INFO"),
    ]
    assert "SECRET-KEY" not in targets[0].safe_url and targets[0].safe_url.startswith("https://qyapi.weixin.qq.com/")
    assert redact_url("https://user:pw@itsm.example.com/hook?token=t") == "https://itsm.example.com/hook?…"
    with pytest.raises(ConfigError, match="duplicate name"):
        parse_targets(
            [{"kind": "wecom", "url": "https://a", "name": "x"}, {"kind": "webhook", "url": "https://b", "name": "x"}]
        )


async def test_send_test_posts_one_message_per_target(receiver: Receiver) -> None:
    settings = Settings(notify_targets=receiver.targets("wecom", "dingtalk", "webhook"))
    assert await send_test(settings) == {"wecom": "ok", "dingtalk": "ok", "webhook": "ok"}
    assert [r.kind for r in receiver.requests] == ["wecom", "dingtalk", "webhook"]
    assert "notify_test" in receiver.requests[0].json["markdown"]["content"]
    receiver.set_default("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    result = await send_test(settings)
    assert result["wecom"] == "errcode: errcode 93000: invalid webhook url" and result["webhook"] == "ok"
    with pytest.raises(ConfigError, match="no notify target"):
        await send_test(Settings())
