"""Event hooks, trace events and DEBUG log lines, against real loopback servers."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import asyncnet
from asyncnet import HTTPClient, Request, Response
from asyncnet import tracing as t
from tests.support.servers import (
    DROP,
    RawServer,
    client_ssl_context,
    response,
    server_ssl_context,
)


async def test_request_hooks_add_headers_on_every_hop() -> None:
    seen: list[str] = []

    def sync_hook(request: Request) -> None:
        seen.append(f"sync {request.method} {request.url.path}")
        request.headers["X-Trace-Id"] = "abc"

    async def async_hook(request: Request) -> None:
        seen.append(f"async {request.url.path}")

    responses_seen: list[int] = []

    async def on_response(resp: Response) -> None:
        responses_seen.append(resp.status)

    async with RawServer(
        responses=[response(302, headers=[("Location", "/next")]), response(200, b"done")]
    ) as srv, HTTPClient(
        event_hooks={"request": [sync_hook, async_hook], "response": [on_response]}
    ) as client:
        resp = await client.get(srv.url("/first"))
        assert resp.content == b"done"
    assert seen == ["sync GET /first", "async /first", "sync GET /next", "async /next"]
    assert responses_seen == [302, 200]
    assert all(b"\r\nX-Trace-Id: abc\r\n" in request for request in srv.request_log)


async def test_request_hooks_see_retries_on_a_stale_connection() -> None:
    calls: list[str] = []
    # The second request finds its kept-alive connection closed without an
    # answer and is retried on a new one: the hook sees both attempts.
    hooks = {"request": [lambda r: calls.append(r.url.path)]}
    async with (
        RawServer(responses=[response(200, b"a"), DROP, response(200, b"b")]) as srv,
        HTTPClient(event_hooks=hooks) as client,
    ):
        assert (await client.get(srv.url("/one"))).content == b"a"
        assert (await client.get(srv.url("/two"))).content == b"b"
    assert calls == ["/one", "/two", "/two"]


async def test_a_raising_hook_aborts_the_request() -> None:
    class Refused(Exception):
        pass

    def refuse(request: Request) -> None:
        raise Refused(str(request.url))

    def refuse_5xx(resp: Response) -> None:
        if resp.status >= 500:
            raise Refused("server error")

    async with RawServer(responses=[response(503, b"busy")], repeat=True) as srv:
        async with HTTPClient(event_hooks={"request": [refuse]}) as client:
            with pytest.raises(Refused):
                await client.get(srv.url("/"))
        assert srv.requests == 0
        async with HTTPClient(event_hooks={"response": [refuse_5xx]}) as client:
            with pytest.raises(Refused):
                await client.get(srv.url("/"))
            # The response was closed, not leaked: its connection is gone.
            assert client.statistics().connections_idle == 0


async def test_hooks_cannot_smuggle_headers() -> None:
    def inject(request: Request) -> None:
        request.headers.add("X-Bad", "a\r\nInjected: 1")

    async with RawServer(responses=[response(200)], repeat=True) as srv:
        async with HTTPClient(event_hooks={"request": [inject]}) as client:
            with pytest.raises(
                asyncnet.InvalidHeader,
                match=r"^header 'X-Bad' has a control or non-latin-1 character",
            ):
                await client.get(srv.url("/"))
        assert srv.requests == 0


def _names(events: list[t.TraceEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_trace_events_for_a_new_and_a_reused_tls_connection() -> None:
    events: list[t.TraceEvent] = []
    async with RawServer(
        responses=[response(200, b"hello")], repeat=True, ssl=server_ssl_context()
    ) as srv, HTTPClient(ssl=client_ssl_context(), trace=events.append) as client:
        await client.get(srv.url("/a", host="localhost"))
        await client.post(srv.url("/b", host="localhost"), body=b"data")
    names = _names(events)
    assert names[:13] == [
        "DNSStart", "DNSEnd", "ConnectStart", "ConnectEnd", "TLSStart", "TLSEnd",
        "ConnectionCreated", "RequestHeadSent", "ResponseHeadReceived",
        "ResponseBodyComplete", "ConnectionReleased", "ConnectionReused", "RequestHeadSent",
    ]
    assert names[13:17] == [
        "RequestBodySent", "ResponseHeadReceived", "ResponseBodyComplete", "ConnectionReleased",
    ]
    assert names[-1] == "ConnectionClosedEvent"
    by_type = {type(e): e for e in events}
    tls_end = by_type[t.TLSEnd]
    assert isinstance(tls_end, t.TLSEnd) and tls_end.version and tls_end.version.startswith("TLS")
    assert tls_end.cipher
    connect_end = by_type[t.ConnectEnd]
    assert isinstance(connect_end, t.ConnectEnd)
    assert connect_end.address[1] == srv.port
    times = [e.time for e in events]
    assert times == sorted(times)
    closed = events[-1]
    assert isinstance(closed, t.ConnectionClosedEvent) and "client" in closed.reason


async def test_trace_reports_why_a_connection_closed() -> None:
    events: list[t.TraceEvent] = []
    async with RawServer(
        responses=[response(200, b"x", headers=[("Connection", "close")])], repeat=True
    ) as srv, HTTPClient(trace=events.append) as client:
        await client.get(srv.url("/"))
        await srv.wait_until(lambda s: s.active_connections == 0)
    closed = [e for e in events if isinstance(e, t.ConnectionClosedEvent)]
    assert len(closed) == 1
    assert "Connection: close" in closed[0].reason
    assert not any(isinstance(e, t.ConnectionReleased) for e in events)


async def test_a_failing_trace_callback_is_reported_not_swallowed() -> None:
    def broken(event: t.TraceEvent) -> None:
        raise RuntimeError("bug in the tracer")

    async with RawServer(responses=[response(200, b"x")]) as srv:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, object]] = []
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda loop, context: reported.append(context))
        try:
            async with HTTPClient(trace=broken) as client:
                assert (await client.get(srv.url("/"))).content == b"x"
        finally:
            loop.set_exception_handler(previous)
    assert reported and isinstance(reported[0]["exception"], RuntimeError)


async def test_debug_log_lines_without_a_trace_callback(caplog: pytest.LogCaptureFixture) -> None:
    async with RawServer(responses=[response(200, b"x")]) as srv:
        with caplog.at_level(logging.DEBUG, logger="asyncnet"):
            async with HTTPClient() as client:
                await client.get(srv.url("/"))
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncnet"]
    assert any(line.startswith("connect_start host='127.0.0.1'") for line in lines)
    assert any(line.startswith("response_head_received") and "status=200" in line
               for line in lines)


async def test_no_tracing_means_plain_connections() -> None:
    from asyncnet._http._connection import HTTPConnection
    from asyncnet._http._trace import TracedConnection

    async with (
        RawServer(responses=[response(200, b"x")]) as srv,
        HTTPClient() as client,
        client.stream("GET", srv.url("/")) as resp,
    ):
        assert type(resp._source) is HTTPConnection
        assert not isinstance(resp._source, TracedConnection)


def test_the_latency_histogram_example_runs_on_loopback() -> None:
    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    env = dict(os.environ, PYTHONPATH=str(examples.parent.parent), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "trace_histogram.py"],
        capture_output=True, text=True, timeout=60, cwd=examples, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stderr = [line for line in proc.stderr.splitlines()
              if not (line.startswith("Executing <") and " took " in line)]
    assert stderr == []
    summaries = [line for line in proc.stdout.splitlines() if not line.startswith("  ")]
    assert [re.sub(r"median \d+ us", "median N us", line) for line in summaries] == [
        "connect: 1 samples, median N us",
        "ttfb: 200 samples, median N us",
        "body: 200 samples, median N us",
        "request: 200 samples, median N us",
    ]
    bars = [line for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert bars and all(re.fullmatch(r"  < +\d+ us  #+ \d+", line) for line in bars)
