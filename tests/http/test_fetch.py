"""fetch_all and fetch_iter against real loopback servers.

The server (a standard-library ``http.server`` in a thread) counts the
requests it serves at once, so every concurrency claim is checked where it
matters: on the server side. Slow endpoints sleep on the server; the tests
themselves only wait on results and on the server's condition variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import math
import socket
import time
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet import FetchResult, fetch_all, fetch_iter
from asyncnet._cli._demo_server import DemoHTTPServer, body_of
from asyncnet._fetch import _retry
from tests.support.servers import RawServer, response

# Seconds a "stuck" endpoint sleeps: far beyond every deadline and timeout used here.
STUCK = 30.0
# How long a test waits for the server to see requests arrive before failing.
WAIT = 10.0


def dead_url() -> str:
    """A loopback URL on a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_fetch_result_takes_every_field_by_position_and_name_and_stays_frozen() -> None:
    # FetchResult's __init__ is written out (see _results.py): each field,
    # by position in declaration order and by name, lands in its own slot.
    names = [f.name for f in dataclasses.fields(FetchResult)]
    values = [f"value-{i}" for i in range(len(names))]
    by_position = FetchResult(*values)  # type: ignore[arg-type]
    by_name = FetchResult(**dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
    assert [getattr(by_position, n) for n in names] == values
    assert by_name == by_position
    assert repr(by_name).startswith("FetchResult(url='value-0', ok='value-1'")
    minimal = FetchResult("u", True, 200, "OK", None, b"", 0.5, 1, None)
    assert (minimal.truncated, minimal.index, minimal.final_url, minimal.size) == (
        False, 0, None, 0,
    )
    assert dataclasses.replace(minimal, status=404).status == 404
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'ok'"):
        minimal.ok = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'error'"):
        FetchResult("u", True, 200, "OK", None, b"", 0.5, 1)  # type: ignore[call-arg]


async def test_results_come_back_in_input_order_with_bodies() -> None:
    with DemoHTTPServer() as server:
        urls = [
            server.url("/slow?delay=0.05&size=10"),
            server.url("/fast?size=3000"),
            server.url("/chunked?chunks=3&size=100"),
            server.url("/gzip?size=5000"),
            server.url("/redirect?n=2"),
            server.url("/fast?size=0"),
        ]
        results = await fetch_all(urls, concurrency=3)
    assert [r.url for r in results] == urls
    assert [r.index for r in results] == list(range(len(urls)))
    assert all(r.ok and r.error is None and r.attempts == 1 for r in results), results
    assert [r.status for r in results] == [200] * 6
    assert results[0].body == body_of(10)
    assert results[1].body == body_of(3000)
    assert results[2].body == body_of(100) * 3
    assert results[3].body == body_of(5000)  # content-decoded
    assert results[4].body == body_of(64)
    assert results[4].final_url == server.url("/fast")
    assert results[5].body == b""
    assert all(r.headers is not None for r in results)
    # The server holds the slow reply back for 0.05 s, so the request took at least that.
    assert results[0].elapsed >= 0.05


async def test_one_url_failing_never_disturbs_the_others() -> None:
    with DemoHTTPServer() as server:
        urls = [
            server.url("/fast?size=1"),
            dead_url(),
            server.url("/malformed"),
            server.url("/loop"),
            "ftp://127.0.0.1/nope",
            "not a url at all",
            server.url("/status?code=404"),
            server.url("/status?code=500"),
            server.url("/hangup"),
            server.url("/fast?size=2"),
        ]
        results = await fetch_all(urls, concurrency=4)
    assert len(results) == len(urls)
    ok, refused, malformed, loop, ftp, junk, missing, broken, hangup, ok2 = results
    assert ok.ok and ok.body == body_of(1)
    assert ok2.ok and ok2.body == body_of(2)
    assert isinstance(refused.error, asyncnet.ConnectError)
    assert isinstance(malformed.error, asyncnet.RemoteProtocolError)
    assert isinstance(loop.error, asyncnet.TooManyRedirects)
    assert isinstance(ftp.error, asyncnet.InvalidURL)
    assert isinstance(junk.error, asyncnet.InvalidURL)
    assert isinstance(hangup.error, (asyncnet.ReadError, asyncnet.RemoteProtocolError))
    for failed in (refused, malformed, loop, ftp, junk, hangup):
        assert not failed.ok and failed.status is None and failed.headers is None
        assert failed.body == b""
    # An HTTP error status is an answer, not an exception.
    assert (missing.ok, missing.status, missing.error) == (False, 404, None)
    assert (broken.ok, broken.status, broken.error) == (False, 500, None)


async def test_concurrency_limit_holds_at_the_server() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/slow?delay=0.02&size={i}") for i in range(40)]
        results = await fetch_all(urls, concurrency=4)
        peak = server.counters().peak_in_flight
    assert all(r.ok for r in results)
    assert 1 < peak <= 4


async def test_per_host_limit_holds_on_every_host() -> None:
    with DemoHTTPServer() as a, DemoHTTPServer() as b:
        urls = []
        for i in range(20):
            urls.append(a.url(f"/slow?delay=0.02&size={i}"))
            urls.append(b.url(f"/slow?delay=0.02&size={i}"))
        results = await fetch_all(urls, concurrency=10, per_host=2)
        peaks = a.counters().peak_in_flight, b.counters().peak_in_flight
    assert all(r.ok for r in results)
    assert all(peak <= 2 for peak in peaks), peaks


async def test_deadline_reports_unfinished_urls_and_stops_everything() -> None:
    with DemoHTTPServer() as server:
        urls = [
            server.url("/fast"),
            server.url(f"/slow?delay={STUCK}"),
            server.url(f"/slow?delay={STUCK}"),
            server.url("/fast?size=1"),
            server.url("/fast?size=2"),
        ]
        # Long enough for the first fast URL even on a loaded machine.
        results = await fetch_all(urls, concurrency=2, deadline=1.0)
    first, stuck1, stuck2, never1, never2 = results
    assert first.ok
    for r in (stuck1, stuck2):
        assert isinstance(r.error, asyncnet.TotalTimeout)
        assert isinstance(r.error, TimeoutError)
        assert r.attempts == 1
    # Both workers were stuck, so these were never requested.
    for r in (never1, never2):
        assert isinstance(r.error, asyncnet.TotalTimeout)
        assert r.attempts == 0
    # The test runner fails the test if any task is still pending here.


async def test_cancelling_the_caller_cancels_everything_and_leaks_nothing() -> None:
    with DemoHTTPServer() as server:
        async with asyncnet.HTTPClient() as client:
            urls = [server.url(f"/slow?delay={STUCK}") for _ in range(6)]
            task = asyncio.create_task(fetch_all(urls, client=client, concurrency=3))
            assert await asyncio.to_thread(server.wait_in_flight, 3, WAIT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.statistics().connections_open == 0
            # The client is still usable afterwards.
            again = await fetch_all([server.url("/fast?size=5")], client=client)
            assert again[0].ok and again[0].body == body_of(5)


async def test_cancelling_with_an_owned_client_leaks_nothing() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/slow?delay={STUCK}")] * 4 + [server.url("/fast")] * 4
        task = asyncio.create_task(fetch_all(urls, concurrency=4, per_host=4))
        assert await asyncio.to_thread(server.wait_in_flight, 4, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Pending tasks and unclosed transports fail the test in the runner.


async def test_on_result_sees_each_result_as_it_lands() -> None:
    seen: list[FetchResult] = []
    seen_async: list[int] = []

    async def record(result: FetchResult) -> None:
        await asyncio.sleep(0)
        seen_async.append(result.index)

    with DemoHTTPServer() as server:
        urls = [server.url(f"/fast?size={i}") for i in range(12)]
        results = await fetch_all(urls, concurrency=3, on_result=seen.append)
        await fetch_all(urls, concurrency=3, on_result=record)
    assert sorted(r.index for r in seen) == list(range(12))
    assert {id(r) for r in seen} == {id(r) for r in results}
    assert sorted(seen_async) == list(range(12))


async def test_on_result_error_propagates_after_cleanup() -> None:
    def explode(result: FetchResult) -> None:
        raise RuntimeError("callback bug")

    with DemoHTTPServer() as server:
        urls = [server.url("/fast")] * 3 + [server.url(f"/slow?delay={STUCK}")] * 3
        with pytest.raises(RuntimeError, match="callback bug"):
            await fetch_all(urls, concurrency=6, on_result=explode)


async def test_retries_on_5xx_then_succeeds() -> None:
    with DemoHTTPServer() as server:
        url = server.url("/flaky?key=a&fails=2&code=503")
        [result] = await fetch_all([url], retries=2, retry_backoff=0.001)
    assert result.ok and result.attempts == 3 and result.status == 200


async def test_retry_gives_up_after_retries_with_the_last_answer() -> None:
    with DemoHTTPServer() as server:
        url = server.url("/flaky?key=b&fails=5&code=502")
        [result] = await fetch_all([url], retries=1, retry_backoff=0.001)
    assert (result.ok, result.status, result.attempts, result.error) == (False, 502, 2, None)


async def test_429_with_retry_after_is_honoured_up_to_the_cap() -> None:
    with DemoHTTPServer() as server:
        zero = server.url("/flaky?key=c&fails=1&code=429&retry_after=0")
        # An hour is far beyond the cap: the wait is cut to retry_after_max.
        hour = server.url("/flaky?key=d&fails=1&code=429&retry_after=3600")
        results = await fetch_all([zero, hour], retries=1, retry_after_max=0.01)
    assert [(r.ok, r.attempts) for r in results] == [(True, 2), (True, 2)]


async def test_non_idempotent_methods_are_not_retried() -> None:
    with DemoHTTPServer() as server:
        url = server.url("/flaky?key=e&fails=1&code=503")
        [result] = await fetch_all([url], method="POST", retries=3, retry_backoff=0.001)
        assert server.counters().paths["/flaky"] == 1
    assert (result.status, result.attempts) == (503, 1)


async def test_connection_errors_are_retried() -> None:
    [result] = await fetch_all([dead_url()], retries=2, retry_backoff=0.001)
    assert isinstance(result.error, asyncnet.ConnectError)
    assert result.attempts == 3


async def test_protocol_errors_are_not_retried() -> None:
    with DemoHTTPServer() as server:
        [result] = await fetch_all([server.url("/malformed")], retries=3, retry_backoff=0.001)
    assert isinstance(result.error, asyncnet.RemoteProtocolError)
    assert result.attempts == 1


async def test_per_request_timeout_is_a_result_not_an_exception() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/slow?delay={STUCK}"), server.url("/fast")]
        results = await fetch_all(urls, timeout=asyncnet.Timeout(read=0.1))
    assert isinstance(results[0].error, asyncnet.ReadTimeout)
    assert results[1].ok


async def test_max_body_keeps_a_prefix_and_says_so() -> None:
    with DemoHTTPServer() as server:
        urls = [
            server.url("/fast?size=100000"),
            server.url("/fast?size=1000"),
            server.url("/fast?size=999"),
            server.url("/gzip?size=50000"),
            server.url("/chunked?chunks=10&size=500"),
        ]
        big, exact, small, gz, chunked = await fetch_all(urls, max_body=1000)
    assert (big.body, big.truncated, big.ok) == (body_of(1000), True, True)
    assert (exact.body, exact.truncated) == (body_of(1000), False)
    assert (small.body, small.truncated) == (body_of(999), False)
    assert (gz.body, gz.truncated) == (body_of(1000), True)
    assert (chunked.body, chunked.truncated) == ((body_of(500) * 2)[:1000], True)


async def test_fetch_iter_yields_in_completion_order() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url("/slow?delay=1.0"), server.url("/fast?size=7")]
        got = [r async for r in fetch_iter(urls, concurrency=2)]
    assert [r.index for r in got] == [1, 0]
    assert got[0].body == body_of(7)


async def test_fetch_iter_awaits_an_async_on_result_before_yielding_each_result() -> None:
    seen: list[int] = []

    async def record(result: FetchResult) -> None:
        await asyncio.sleep(0)
        seen.append(result.index)

    with DemoHTTPServer() as server:
        urls = [server.url(f"/fast?size={i}") for i in range(12)]
        yielded = []
        async for result in fetch_iter(urls, concurrency=3, on_result=record):
            # on_result ran for this result before the iterator handed it out.
            assert result.index in seen
            yielded.append(result)
    assert sorted(seen) == list(range(12))
    assert sorted(r.index for r in yielded) == list(range(12))
    assert all(r.body == body_of(r.index) for r in yielded)


async def test_fetch_iter_closed_early_cancels_the_rest() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url("/fast")] + [server.url(f"/slow?delay={STUCK}")] * 4
        results = fetch_iter(urls, concurrency=5)
        async with contextlib.aclosing(results):
            async for result in results:
                assert result.ok
                break
    # Nothing pending and no unclosed transport: checked by the test runner.


async def test_fetch_iter_deadline() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/slow?delay={STUCK}")] * 3 + [server.url("/fast")] * 3
        got = [r async for r in fetch_iter(urls, concurrency=3, deadline=0.2)]
    assert sorted(r.index for r in got) == list(range(6))
    assert all(isinstance(r.error, asyncnet.TotalTimeout) for r in got)


async def test_a_pool_of_workers_not_a_task_per_url() -> None:
    concurrency = 8
    most_tasks = 0

    def watch(result: FetchResult) -> None:
        nonlocal most_tasks
        most_tasks = max(most_tasks, len(asyncio.all_tasks()))

    with DemoHTTPServer() as server:
        url = server.url("/fast?size=3")
        urls = (url for _ in range(200))  # a generator: consumed lazily
        results = await fetch_all(urls, concurrency=concurrency, on_result=watch)
    assert len(results) == 200 and all(r.ok for r in results)
    # The test's own task plus the workers, whatever the number of URLs.
    assert most_tasks <= concurrency + 1


async def test_a_given_client_is_left_open() -> None:
    with DemoHTTPServer() as server:
        async with asyncnet.HTTPClient() as client:
            await fetch_all([server.url("/fast")], client=client)
            response = await client.get(server.url("/fast?size=4"))
            assert response.content == body_of(4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concurrency": 0},
        {"per_host": 0},
        {"retries": -1},
        {"deadline": -1.0},
        {"deadline": math.nan},
        {"max_body": -1},
        {"retry_backoff": -0.1},
        {"retry_backoff": math.nan},
        {"retry_backoff": math.inf},
        {"retry_after_max": -1.0},
        {"retry_after_max": math.nan},
    ],
)
async def test_bad_arguments_raise_usage_error(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    # The refusal names the argument it is about.
    with pytest.raises(asyncnet.UsageError, match=rf"^{name} must be "):
        await fetch_all(["http://127.0.0.1/"], **kwargs)  # type: ignore[arg-type]


async def test_empty_input() -> None:
    assert await fetch_all([]) == []
    assert [r async for r in fetch_iter([])] == []


async def test_per_host_does_not_starve_other_hosts() -> None:
    # Host A is stuck and at its limit; B's URLs, queued behind A's, must
    # still be fetched by the free worker instead of it waiting on A.
    with DemoHTTPServer() as a, DemoHTTPServer() as b:
        urls = [a.url(f"/slow?delay={STUCK}")] * 5 + [b.url(f"/fast?size={i}") for i in range(5)]
        results = fetch_iter(urls, concurrency=2, per_host=1)
        done_b = 0
        async with contextlib.aclosing(results):
            async for result in results:
                assert result.ok and result.index >= 5
                done_b += 1
                if done_b == 5:
                    break
        assert a.counters().peak_in_flight <= 1


async def test_no_more_workers_than_urls() -> None:
    most_tasks = 0

    def watch(result: FetchResult) -> None:
        nonlocal most_tasks
        most_tasks = max(most_tasks, len(asyncio.all_tasks()))

    with DemoHTTPServer() as server:
        urls = [server.url("/fast"), server.url("/fast?size=1")]
        results = await fetch_all(urls, concurrency=1000, on_result=watch)
    assert all(r.ok for r in results)
    assert most_tasks <= len(urls) + 1


def test_retry_after_parsing() -> None:
    assert _retry._retry_after(None) is None
    assert _retry._retry_after("0") == 0.0
    assert _retry._retry_after(" 120 ") == 120.0
    assert _retry._retry_after("soon") is None
    assert _retry._retry_after("-5") is None
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert 3500 < (_retry._retry_after(future) or 0) <= 3600
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert _retry._retry_after(past) == 0.0


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    for attempt in range(1, 12):
        full = min(_retry._BACKOFF_MAX, 0.1 * 2 ** (attempt - 1))
        for _ in range(20):
            assert full / 2 <= _retry._backoff(attempt, 0.1) <= full


def test_host_keys_group_by_scheme_host_and_port() -> None:
    from asyncnet._fetch._limits import host_key as _host_key

    assert _host_key("http://A.example/x") == _host_key("http://a.example/y?z")
    assert _host_key("http://a.example/") != _host_key("https://a.example/")
    assert _host_key("http://a.example:81/") != _host_key("http://a.example/")
    assert _host_key("http://[::1]:80x/") == "http://[::1]:80x/"  # unparsable: alone


def test_host_keys_treat_the_default_port_as_given() -> None:
    # http://h/ and http://h:80/ reach the same server, so they share one
    # per_host limit; told apart, twice the limit could be in flight to it.
    from asyncnet._fetch._limits import host_key as _host_key

    assert _host_key("http://a.example/") == _host_key("http://a.example:80/")
    assert _host_key("https://a.example/") == _host_key("https://a.example:443/")


async def test_a_name_that_does_not_resolve_fails_alone() -> None:
    # A real failed lookup would query a DNS server beyond loopback, so the
    # loop's resolver is replaced for names under the reserved .test domain
    # (RFC 6761), answering as a resolver would: socket.gaierror.
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if isinstance(host, str) and host.endswith(".test"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
    try:
        with DemoHTTPServer() as server:
            urls = [
                server.url("/fast?size=5"),
                "http://no-such-host.test/",
                server.url("/fast?size=6"),
            ]
            first, unresolved, last = await fetch_all(urls, concurrency=3)
    finally:
        del loop.getaddrinfo  # type: ignore[method-assign]
    assert asked == ["no-such-host.test"]
    assert isinstance(unresolved.error, asyncnet.ConnectError)
    assert isinstance(unresolved.error.__cause__, socket.gaierror)
    assert not unresolved.ok and unresolved.status is None
    assert first.ok and first.body == body_of(5)
    assert last.ok and last.body == body_of(6)


# -- whatever one server sends, every URL gets a result ----------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",  # isdigit() is true, float() refuses it
        "\u0663",  # ARABIC-INDIC DIGIT THREE: float() reads it as 3
        "1\u00b9",
        "Fri, 31 Dec 99999999999999999999 23:59:59 GMT",  # the year overflows a C long
        "Fri, 31 Dec 99999 23:59:59 GMT",  # beyond datetime's year 9999
        "Fri, 31 Dec 9999 23:59:59 GMT",  # a real date, thousands of years away
        "9" * 11,  # 3,000 years of seconds
        "9" * 5000,  # more digits than int() converts
        "-1",
        "1.5",
        "1e3",
        "inf",
        "nan",
        "",
    ],
)
def test_an_unusable_retry_after_is_none(value: str) -> None:
    assert _retry._retry_after(value) is None


def test_a_retry_after_up_to_a_year_is_honoured() -> None:
    assert _retry._retry_after(" 0 ") == 0.0
    assert _retry._retry_after(str(int(_retry._RETRY_AFTER_ABSURD))) == _retry._RETRY_AFTER_ABSURD
    assert _retry._retry_after(str(int(_retry._RETRY_AFTER_ABSURD) + 1)) is None


@settings(max_examples=500, deadline=None)
@given(st.text())
@example("\u00b2")
@example("Fri, 31 Dec 99999999999999999999 23:59:59 GMT")
@example("Mon, 01 Jan 0001 00:00:00 +2359")
@example("Fri, 31 Dec 9999 23:59:59 -2359")
def test_any_retry_after_text_is_a_sane_wait_or_none(value: str) -> None:
    wait = _retry._retry_after(value)
    assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= _retry._RETRY_AFTER_ABSURD)


def test_backoff_never_overflows_however_many_retries() -> None:
    # 2.0 ** 1100 raises OverflowError; a caller may allow that many retries.
    for attempt in (1024, 1100, 10**6):
        assert _retry._BACKOFF_MAX / 2 <= _retry._backoff(attempt, 0.1) <= _retry._BACKOFF_MAX
    assert _retry._backoff(10**6, 0.0) == 0.0


def _run_checked(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` in a fresh loop; fail on anything the loop reports or leaves pending."""
    errors: list[dict[str, Any]] = []

    async def wrapper() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: errors.append(ctx))
        await main
        me = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not me] == []

    asyncio.run(wrapper())
    assert errors == []


# What a server can put in a field value: HTAB, SP, visible ASCII and obs-text
# (bytes 0x80-0xFF, read as latin-1: "\xb2" arrives as "²").
_FIELD_CHARS = "".join(map(chr, [9, *range(0x20, 0x7F), *range(0x80, 0x100)]))
_RETRY_AFTER_TEXT = st.text(alphabet=_FIELD_CHARS, max_size=60) | st.sampled_from(
    ["\u00b2", "1\u00b3", "9" * 400, "-5", "1e999", "nan", "99999999999",
     "Fri, 31 Dec 99999999999999999999 23:59:59 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"]
)


@settings(max_examples=60, deadline=None)
@given(value=_RETRY_AFTER_TEXT, streaming=st.booleans())
@example(value="\u00b2", streaming=False)
@example(value="Fri, 31 Dec 99999999999999999999 23:59:59 GMT", streaming=True)
def test_any_retry_after_from_a_server_gives_every_url_a_result(
    value: str, streaming: bool
) -> None:
    # A real server answers 503 with this Retry-After to every request; the
    # batch must end with one result per URL, every retry made, nothing raised.
    async def scenario() -> None:
        busy = response(503, b"busy", [("Retry-After", value)])
        async with RawServer(responses=[busy], repeat=True) as srv:
            urls = [srv.url(f"/{i}") for i in range(3)]
            options: dict[str, Any] = {
                "concurrency": 2, "retries": 2, "retry_backoff": 0.001, "retry_after_max": 0.001
            }
            if streaming:
                async with contextlib.aclosing(fetch_iter(urls, **options)) as results:
                    got = sorted([r async for r in results], key=lambda r: r.index)
            else:
                got = await fetch_all(urls, **options)
            assert srv.requests == 9
        assert [r.url for r in got] == urls
        for result in got:
            assert (result.status, result.error, result.attempts) == (503, None, 3), result
            assert result.headers is not None and result.body == b"busy"

    _run_checked(scenario())


async def test_a_url_whose_str_raises_is_a_result_under_per_host() -> None:
    # per_host groups URLs by origin outside the per-URL error handling; a
    # value that is no URL must still end as that URL's InvalidURL.
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no text here")

    with DemoHTTPServer() as server:
        urls: list[Any] = [Hostile(), server.url("/fast?size=1")]
        bad, good = await fetch_all(urls, per_host=1)
    assert isinstance(bad.error, asyncnet.InvalidURL) and bad.attempts == 1
    assert good.ok and good.body == body_of(1)


async def test_a_long_dns_label_is_invalid_url_in_a_result() -> None:
    [result] = await fetch_all(["http://" + "a" * 64 + ".localhost:1/"])
    assert isinstance(result.error, asyncnet.InvalidURL), result.error
    assert "label is longer than 63 octets" in str(result.error)
