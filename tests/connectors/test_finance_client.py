"""FinanceClient against the in-process ledger API over real HTTP on 127.0.0.1 (ephemeral
port): paging, window bounds, exact bytes, and every error mapped to its kind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.errors import PermanentError, RateLimited, TransientError
from connectors.finance.client import (
    MAX_WINDOW,
    FinanceClient,
    ceil_second,
    classify,
    from_ledger_time,
    posting_key,
    posting_time,
    retry_after_seconds,
    to_ledger_time,
)
from connectors.finance.simulator import FaultConfig, FinanceSimulator, RunningSimulator, generate_postings, serve
from ordertwin.settings import Settings

KEY, SECRET = "fin-key", "fin-secret"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await serve(FinanceSimulator(api_key=KEY, api_secret=SECRET), "127.0.0.1", 0)
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(http: aiohttp.ClientSession, url: str, **kw: Any) -> FinanceClient:
    args: dict[str, Any] = {"base_url": url, "api_key": KEY, "api_secret": SECRET, "timeout": 5.0}
    args.update(kw)
    return FinanceClient(http, **args)


def posting_at(at: datetime, voucher: str, entry: int = 1) -> dict[str, Any]:
    doc = generate_postings(1, seed=entry, start=at, end=at + timedelta(seconds=1))[0]
    doc.update(voucher_no=voucher, entry_no=entry, posted_at=to_ledger_time(at))
    return doc


def test_ledger_times_are_beijing_time() -> None:
    assert to_ledger_time(T0) == "2026-11-11 08:00:00"
    assert from_ledger_time("2026-11-11 08:00:00") == T0
    assert to_ledger_time(T0 + timedelta(microseconds=999_999)) == "2026-11-11 08:00:00"
    assert ceil_second(T0 + timedelta(microseconds=1)) == T0 + timedelta(seconds=1) and ceil_second(T0) == T0
    with pytest.raises(ValueError, match="naive"):
        to_ledger_time(datetime(2026, 11, 11))


def test_posting_key_and_time() -> None:
    doc = {"voucher_no": "JZ-202611-000381", "entry_no": 2, "posted_at": "2026-11-11 00:06:10"}
    assert posting_key(doc) == b"JZ-202611-000381/2"
    assert posting_time(doc) == datetime(2026, 11, 10, 16, 6, 10, tzinfo=UTC)
    for bad in ({"entry_no": 1}, {"voucher_no": "V", "entry_no": True}, {"voucher_no": " ", "entry_no": 1}, [1], None):
        assert posting_key(bad) is None
    assert posting_time({"posted_at": "2026-11-11T00:06:10"}) is None and posting_time({}) is None


async def test_pages_are_oldest_first_with_exact_bytes_and_keyset_tokens(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    store = sim.simulator.store
    store.add_many(generate_postings(230, seed=1, start=T0, end=T0 + timedelta(hours=2)))
    client = make_client(http, sim.url)
    pages = []
    token: str | None = None
    while True:
        page = await client.postings(T0, T0 + timedelta(hours=2), page_size=100, page_token=token)
        pages.append(page)
        if not page.has_next:
            break
        token = page.next_page_token
    assert [len(p.postings) for p in pages] == [100, 100, 30]
    raw = store.raw_by_key()
    seen = [posting_key(d) for p in pages for d in p.postings]
    assert len(seen) == len(set(seen)) == 230 and {k.decode() for k in seen if k} == set(raw)
    for page in pages:
        for doc, value in zip(page.postings, page.raw, strict=True):
            key = posting_key(doc)
            assert key is not None and value == raw[key.decode()] and json.loads(value) == doc
    order = [(posting_time(d), d["voucher_no"], d["entry_no"]) for p in pages for d in p.postings]
    assert order == sorted(order)  # (posted_at, voucher_no, entry_no) ascending
    first = sim.simulator.queries[0]
    assert first == {"posted_from": "2026-11-11 08:00:00", "posted_to": "2026-11-11 10:00:00", "page_size": "100"}


async def test_a_posting_booked_behind_the_token_does_not_shift_the_pages(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    store = sim.simulator.store
    for i in range(6):
        store.add(posting_at(T0 + timedelta(seconds=10 * i), f"JZ-202611-{i:06d}"))
    client = make_client(http, sim.url)
    first = await client.postings(T0, T0 + timedelta(minutes=5), page_size=3)
    store.add(posting_at(T0, "JZ-202611-000000", entry=2))  # sorts before everything on page 2
    second = await client.postings(T0, T0 + timedelta(minutes=5), page_size=3, page_token=first.next_page_token)
    assert [d["voucher_no"] for d in second.postings] == [f"JZ-202611-{i:06d}" for i in (3, 4, 5)]
    assert not second.has_next


async def test_window_is_from_inclusive_to_exclusive(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add(posting_at(T0, "JZ-202611-000001"))
    client = make_client(http, sim.url)
    assert len((await client.postings(T0, T0 + timedelta(minutes=1))).postings) == 1
    assert (await client.postings(T0 - timedelta(minutes=1), T0)).postings == []  # posted_to excluded
    assert len((await client.postings(T0 - timedelta(minutes=1), T0 + timedelta(seconds=1))).postings) == 1
    assert (await client.postings(T0 + timedelta(seconds=1), T0 + timedelta(minutes=1))).postings == []
    # A sub-second exclusive end is rounded up, never down past a posting.
    assert len((await client.postings(T0 - timedelta(minutes=1), T0 + timedelta(milliseconds=1))).postings) == 1


async def test_window_cap_is_31_days(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim.url)
    await client.postings(T0, T0 + MAX_WINDOW)
    with pytest.raises(PermanentError, match="31 days") as err:
        await client.postings(T0, T0 + MAX_WINDOW + timedelta(seconds=1))
    assert err.value.code == "PARAM_ERROR" and err.value.http_status == 400
    with pytest.raises(PermanentError, match="after posted_from"):
        await client.postings(T0, T0)


async def test_page_size_and_tokens_are_checked(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    sim.simulator.store.add_many(generate_postings(5, seed=2, start=T0, end=T0 + timedelta(minutes=5)))
    client = make_client(http, sim.url)
    for size in (0, 501):
        with pytest.raises(ValueError, match="page_size"):
            await client.postings(T0, T0 + timedelta(hours=1), page_size=size)
    page = await client.postings(T0, T0 + timedelta(hours=1), page_size=2)
    with pytest.raises(PermanentError) as other:  # a token of another query
        await client.postings(T0, T0 + timedelta(hours=2), page_size=2, page_token=page.next_page_token)
    assert other.value.code == "INVALID_PAGE_TOKEN"
    with pytest.raises(PermanentError) as garbage:
        await client.postings(T0, T0 + timedelta(hours=1), page_token="not-a-token")
    assert garbage.value.code == "INVALID_PAGE_TOKEN"


async def test_credentials_errors_are_permanent(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    end = T0 + timedelta(hours=1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"api_secret": "wrong"}, "SIGN_ERROR"),
        ({"api_key": "someone"}, "UNKNOWN_KEY"),
        ({"clock": lambda: datetime.now(UTC) - timedelta(minutes=6)}, "TIMESTAMP_EXPIRED"),
    ]
    for kw, code in cases:
        with pytest.raises(PermanentError) as err:
            await make_client(http, sim.url, **kw).postings(T0, end)
        assert err.value.code == code and err.value.http_status == 401
        assert not err.value.retryable
    assert sim.simulator.stats["error_SIGN_ERROR"] == 1 and sim.simulator.stats["ok"] == 0


async def test_a_replayed_nonce_is_refused_and_retryable(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    client = make_client(http, sim.url, nonce=lambda: "0123456789abcdef0123456789abcdef")
    await client.postings(T0, T0 + timedelta(hours=1))
    with pytest.raises(TransientError) as err:
        await client.postings(T0, T0 + timedelta(hours=1))
    assert err.value.code == "NONCE_REPLAYED" and err.value.retryable
    await make_client(http, sim.url).postings(T0, T0 + timedelta(hours=1))  # fresh nonces pass


async def test_rate_limits_5xx_and_timeouts(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    simulator = sim.simulator
    end = T0 + timedelta(hours=1)
    simulator.faults = FaultConfig(http_429_every=1, retry_after_s=7)
    with pytest.raises(RateLimited) as limited:
        await make_client(http, sim.url).postings(T0, end)
    assert limited.value.retry_after == 7.0 and limited.value.code == "FREQUENCY_LIMITED"
    simulator.faults = FaultConfig(error_500_every=1)
    with pytest.raises(TransientError) as failed:
        await make_client(http, sim.url).postings(T0, end)
    assert failed.value.http_status == 500
    simulator.faults = FaultConfig(slow_every=1, slow_seconds=0.5)
    with pytest.raises(TransientError, match="Timeout"):
        await make_client(http, sim.url, timeout=0.1).postings(T0, end)
    simulator.faults = FaultConfig()
    assert (await make_client(http, sim.url).postings(T0, end)).postings == []
    assert (simulator.stats["http_429"], simulator.stats["http_500"], simulator.stats["slow"]) == (1, 1, 1)


async def test_connection_refused_is_transient(http: aiohttp.ClientSession) -> None:
    from tests.live import free_port

    client = make_client(http, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="ClientConnectorError"):
        await client.postings(T0, T0 + timedelta(hours=1))


async def _serve(handler: Any, path: str = "/v1/postings") -> web.AppRunner:
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.mark.parametrize(
    ("status", "body", "kind", "match"),
    [
        (200, b'{"detail_list": [{"voucher_no": "V"', TransientError, "not JSON"),
        (200, b"\xff\xfe garbage", TransientError, "not UTF-8"),
        (200, b'{"postings": []}', PermanentError, "detail_list"),
        (200, b'{"detail_list": [], "next_page_token": 7}', PermanentError, "next_page_token"),
        (503, b"<html>Service Unavailable</html>", TransientError, "HTTP 503"),
        (404, b"not found", PermanentError, "HTTP 404"),
        (403, b'{"code": "FORBIDDEN", "message": "key not allowed"}', PermanentError, "key not allowed"),
    ],
)
async def test_odd_answers_are_mapped(
    http: aiohttp.ClientSession, status: int, body: bytes, kind: type[Exception], match: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    runner = await _serve(handler)
    try:
        port = runner.addresses[0][1]
        with pytest.raises(kind, match=match):
            await make_client(http, f"http://127.0.0.1:{port}").postings(T0, T0 + timedelta(hours=1))
    finally:
        await runner.cleanup()


async def test_base_url_with_a_path_prefix_signs_the_full_path(http: aiohttp.ClientSession) -> None:
    simulator = FinanceSimulator(api_key=KEY, api_secret=SECRET)
    simulator.store.add(posting_at(T0, "JZ-202611-000009"))
    root = web.Application()
    root.add_subapp("/erp/finance/", simulator.app())
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/erp/finance/"
        client = make_client(http, url)
        assert client.url.raw_path == "/erp/finance/v1/postings"
        assert len((await client.postings(T0, T0 + timedelta(minutes=1))).postings) == 1
    finally:
        await runner.cleanup()


def test_classify_and_retry_after() -> None:
    now = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("3", now) == 3.0 and retry_after_seconds("0", now) == 0.0
    assert retry_after_seconds("Wed, 11 Nov 2026 00:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Tue, 10 Nov 2026 23:00:00 GMT", now) == 0.0  # already past
    assert retry_after_seconds(None, now) is None and retry_after_seconds("soon", now) is None
    limited = classify(429, b'{"code":"FREQUENCY_LIMITED","message":"slow down"}', retry_after=2.0)
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.0 and "slow down" in str(limited)
    assert isinstance(classify(502, b""), TransientError) and isinstance(classify(408, b""), TransientError)
    assert isinstance(classify(401, b'{"code":"NONCE_REPLAYED"}'), TransientError)
    for status, body in ((400, b'{"code":"PARAM_ERROR"}'), (401, b'{"code":"SIGN_ERROR"}'), (404, b"")):
        err = classify(status, body)
        assert isinstance(err, PermanentError) and err.http_status == status


def test_from_settings_reads_the_finance_settings() -> None:
    settings = Settings(
        finance_base_url="https://ledger.example.com/api",
        finance_api_key="k1",
        finance_api_secret="s1",  # type: ignore[arg-type]
        connector_http_timeout_s=12.0,
    )

    class NoHttp:
        pass

    client = FinanceClient.from_settings(NoHttp(), settings)  # type: ignore[arg-type]
    assert str(client.url) == "https://ledger.example.com/api/v1/postings"
    assert client.api_key == "k1" and client._secret == "s1" and client._timeout.total == 12.0
    url, headers = client.signed_request({"posted_from": "2026-11-11 00:00:00", "page_size": "5"})
    assert str(url).endswith("/v1/postings?page_size=5&posted_from=2026-11-11%2000%3A00%3A00")
    assert headers["Authorization"].startswith('OT-HMAC-SHA256 key_id="k1",timestamp="')
