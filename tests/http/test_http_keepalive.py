"""The pool against real loopback servers: reuse, expiry, limits, stale connections, nginx.

Connections are counted on the server side (``RawServer`` / ``HTTPServer`` /
nginx's access log), so these tests check what a peer actually sees.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

import asyncnet
from asyncnet import HTTPClient, Limits, Timeout
from asyncnet._http._connection import HTTPConnection
from tests.support.servers import (
    DROP,
    HTTPServer,
    NginxServer,
    RawServer,
    client_ssl_context,
    ipv6_available,
    nginx_path,
    pattern,
    response,
)

OK = response(200, b"hello")
# A dropped connection shows as EOF or as a reset, whichever the kernel reports
# first; either way one rule fires: it went away before any response arrived.
DROPPED_BEFORE_RESPONSE = (
    r"^connection (closed before any response bytes were received"
    r"|lost before the response arrived)"
)




# -- reuse -----------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with RawServer(responses=[OK], repeat=True) as srv, HTTPClient() as client:
        for _ in range(5):
            resp = await client.get(srv.url("/x"))
            assert (resp.status, resp.content) == (200, b"hello")
        stats = client.statistics()
        assert srv.connections == 1
        assert srv.requests == 5
        assert (stats.connections_opened, stats.requests_sent, stats.requests_reused) == (1, 5, 4)
        assert (stats.connections_open, stats.connections_idle) == (1, 1)


async def test_reuse_against_stdlib_server_with_every_body_framing() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            for path in ("/bytes/100", "/chunked/70000?chunk=1000", "/gzip/5000",
                         "/deflate/5000", "/status/204", "/bytes/0"):
                resp = await client.get(srv.url(path))
                assert resp.status in (200, 204)
                size = int(path.split("/")[2].split("?")[0]) if resp.status == 200 else 0
                assert resp.content == pattern(size), path
            head = await client.head(srv.url("/bytes/1000"))
            assert head.content == b"" and head.headers["Content-Length"] == "1000"
            resp = await client.get(srv.url("/bytes/10"))
            assert resp.content == pattern(10)
        assert srv.requests == 8
    assert srv.connections == 1


async def test_unread_streamed_body_closes_the_connection_instead_of_reusing_it() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            async with client.stream("GET", srv.url("/bytes/200000")) as resp:
                async for _ in resp.aiter_raw():
                    break  # leave most of the body unread
            assert client.statistics().connections_idle == 0
            assert (await client.get(srv.url("/bytes/10"))).content == pattern(10)
            async with client.stream("GET", srv.url("/bytes/300")) as resp:
                assert await resp.read() == pattern(300)
            assert (await client.get(srv.url("/bytes/10"))).content == pattern(10)
            stats = client.statistics()
        assert stats.connections_opened == 2
    assert srv.connections == 2


async def test_connection_close_response_is_not_reused() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            for _ in range(3):
                assert (await client.get(srv.url("/close"))).content == b"closing"
            assert client.statistics().requests_reused == 0
    assert srv.connections == 3


async def test_http10_response_without_keep_alive_is_not_reused() -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(responses=[reply], repeat=True) as srv, HTTPClient() as client:
        for _ in range(2):
            assert (await client.get(srv.url())).content == b"ok"
        assert srv.connections == 2


async def test_unsolicited_bytes_after_a_response_discard_the_connection() -> None:
    smuggled = OK + response(200, b"extra")
    async with RawServer(responses=[smuggled, OK]) as srv, HTTPClient() as client:
        assert (await client.get(srv.url("/1"))).content == b"hello"
        # The extra bytes are never taken as the next response.
        assert (await client.get(srv.url("/2"))).content == b"hello"
        assert srv.connections == 2


# -- idle expiry -------------------------------------------------------------------------


async def test_idle_connection_expires_and_is_closed_by_the_client() -> None:
    async with RawServer(responses=[OK], repeat=True) as srv:
        async with HTTPClient(limits=Limits(keepalive_expiry=0.05)) as client:
            await client.get(srv.url())
            # The client's own expiry timer closes the idle connection: the server sees it go.
            await srv.wait_until(lambda s: s.active_connections == 0)
            assert client.statistics().connections_open == 0
            await client.get(srv.url())
        assert srv.connections == 2


async def test_connection_closed_by_server_while_idle_is_not_reused() -> None:
    # One reply per connection, then the server closes it while the client holds it idle.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        await srv.send(writer, OK)

    async with RawServer(handler) as srv, HTTPClient() as client:
        await client.get(srv.url())
        await srv.wait_until(lambda s: s.active_connections == 0)
        # Wait until the client has seen the close as well (its slot is freed).
        for _ in range(100):
            if client.statistics().connections_open == 0:
                break
            await asyncio.sleep(0)
        assert (await client.get(srv.url())).content == b"hello"
        assert srv.connections == 2
        assert client.statistics().requests_reused == 0


# -- stale keep-alive connections -----------------------------------------------------------


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _stale_after_first_script(
    drop_every_later_connection: bool, *, reset: bool = False
) -> RawServer:
    """First connection: answer once, then drop the next request unanswered (a stale
    keep-alive connection), with a FIN or a reset. Later connections answer (or drop,
    if asked)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = srv.connections
        if number == 1:
            await srv.read_request(reader, writer)
            await srv.send(writer, OK)
            await srv.read_request(reader, writer)
            if reset:
                _reset(writer)
            return  # close without a reply
        while await srv.read_request(reader, writer):
            if drop_every_later_connection:
                return
            await srv.send(writer, OK)

    srv = RawServer(handler)
    return srv


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
async def test_stale_keep_alive_connection_is_retried_once_for_get(reset: bool) -> None:
    async with _stale_after_first_script(False, reset=reset) as srv, HTTPClient() as client:
        await client.get(srv.url("/1"))
        resp = await client.get(srv.url("/2"))
        assert (resp.status, resp.content) == (200, b"hello")
        assert srv.connections == 2
        assert [r.split(b" ")[1] for r in srv.request_log] == [b"/1", b"/2", b"/2"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "OPTIONS"])
async def test_other_idempotent_methods_are_retried_too(method: str) -> None:
    async with _stale_after_first_script(False) as srv, HTTPClient() as client:
        await client.get(srv.url("/1"))
        resp = await client.request(method, srv.url("/2"))
        assert resp.status == 200
        assert srv.connections == 2


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_stale_keep_alive_connection_is_not_retried_for_non_idempotent(
    method: str, reset: bool
) -> None:
    async with _stale_after_first_script(False, reset=reset) as srv, HTTPClient() as client:
        await client.get(srv.url("/1"))
        with pytest.raises(
            (asyncnet.ReadError, asyncnet.RemoteProtocolError), match=DROPPED_BEFORE_RESPONSE
        ):
            await client.request(method, srv.url("/2"), body=b"data")
        assert srv.connections == 1
        # The client is fine afterwards.
        assert (await client.get(srv.url("/3"))).content == b"hello"


async def test_stale_retry_happens_only_once() -> None:
    async with _stale_after_first_script(True) as srv, HTTPClient() as client:
        await client.get(srv.url("/1"))
        with pytest.raises(
            (asyncnet.ReadError, asyncnet.RemoteProtocolError), match=DROPPED_BEFORE_RESPONSE
        ):
            await client.get(srv.url("/2"))
        assert srv.connections == 2


async def test_fresh_connection_dropped_is_not_retried() -> None:
    async with RawServer(responses=[DROP, OK]) as srv, HTTPClient() as client:
        with pytest.raises(
            (asyncnet.ReadError, asyncnet.RemoteProtocolError), match=DROPPED_BEFORE_RESPONSE
        ):
            await client.get(srv.url())
        assert srv.connections == 1


async def test_connection_reset_after_partial_response_is_not_retried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        if srv.connections == 1:
            await srv.send(writer, OK)
            await srv.read_request(reader, writer)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            return
        await srv.send(writer, OK)

    async with RawServer(handler) as srv, HTTPClient() as client:
        await client.get(srv.url("/1"))
        with pytest.raises(asyncnet.RemoteProtocolError, match="3"):
            await client.get(srv.url("/2"))
        assert srv.connections == 1


# -- limits -------------------------------------------------------------------------------


def _gated(gate: asyncio.Event) -> RawServer:
    """A server that holds every reply until ``gate`` is set, then answers keep-alive."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            await gate.wait()
            await srv.send(writer, OK)

    srv = RawServer(handler)
    return srv


@pytest.mark.parametrize(("max_connections", "max_per_host"), [(4, 10), (10, 3), (1, 1)])
async def test_limits_are_never_exceeded(max_connections: int, max_per_host: int) -> None:
    gate = asyncio.Event()
    limit = min(max_connections, max_per_host)
    limits = Limits(max_connections=max_connections, max_per_host=max_per_host)
    async with _gated(gate) as srv, HTTPClient(limits=limits) as client:
        tasks = [asyncio.create_task(client.get(srv.url(f"/{i}"))) for i in range(40)]
        await srv.wait_until(lambda s: s.active_requests == limit)
        assert client.statistics().pool_waiters == 40 - limit
        gate.set()
        responses = await asyncio.gather(*tasks)
        assert all(r.content == b"hello" for r in responses)
        assert srv.peak_connections == limit
        assert srv.connections == limit  # the rest reused them
        assert srv.requests == 40
        stats = client.statistics()
        assert stats.connections_open == limit and stats.pool_waiters == 0


async def test_total_limit_spans_hosts_and_per_host_limit_each_host() -> None:
    gate = asyncio.Event()
    active = 0
    peak = 0

    def counting(srv_ref: list[RawServer]) -> RawServer:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            try:
                while await srv_ref[0].read_request(reader, writer):
                    await gate.wait()
                    await srv_ref[0].send(writer, OK)
            finally:
                active -= 1

        server = RawServer(handler)
        srv_ref.append(server)
        return server

    ref_a: list[RawServer] = []
    ref_b: list[RawServer] = []
    limits = Limits(max_connections=5, max_per_host=3)
    async with counting(ref_a) as a, counting(ref_b) as b, HTTPClient(limits=limits) as client:
        urls = [a.url("/a"), b.url("/b")] * 15
        tasks = [asyncio.create_task(client.get(url)) for url in urls]
        await a.wait_until(lambda s: s.active_requests >= 2)
        await b.wait_until(lambda s: s.active_requests >= 2)
        await a.wait_until(lambda s: s.active_requests + b.active_requests == 5)
        gate.set()
        await asyncio.gather(*tasks)
        assert peak == 5
        assert a.peak_connections <= 3 and b.peak_connections <= 3


async def test_waiter_for_another_host_gets_an_idle_connections_slot() -> None:
    # max_connections=1: an idle connection to A must make way for a request to B.
    async with RawServer(responses=[OK], repeat=True) as a, RawServer(
        responses=[OK], repeat=True
    ) as b, HTTPClient(limits=Limits(max_connections=1), timeout=Timeout(pool=5)) as client:
        await client.get(a.url())
        await client.get(b.url())
        await client.get(a.url())
        assert a.connections == 2 and b.connections == 1
        assert a.peak_connections + b.peak_connections <= 2


# -- IPv6 ------------------------------------------------------------------------------------


@pytest.mark.skipif(not ipv6_available(), reason="::1 not available")
async def test_ipv6_loopback() -> None:
    with HTTPServer(host="::1") as srv:
        async with HTTPClient() as client:
            for _ in range(2):
                resp = await client.get(srv.url("/bytes/1000"))
                assert resp.content == pattern(1000)
            assert str(resp.url) == f"http://[::1]:{srv.port}/bytes/1000"
    assert srv.connections == 1


# -- nginx as a real peer ------------------------------------------------------------------------


@pytest.mark.skipif(nginx_path() is None, reason="nginx not installed")
async def test_nginx_keep_alive_limits_and_bodies() -> None:
    sizes = (100, 65536, 1024 * 1024)
    with NginxServer(sizes=sizes) as srv:
        async with HTTPClient(limits=Limits(max_connections=4)) as client:
            for size in sizes:
                assert (await client.get(srv.url(f"/bytes/{size}"))).content == pattern(size)
            gz = await client.get(srv.url("/gzip/65536"))
            assert gz.headers["Content-Encoding"] == "gzip"
            assert gz.headers["Transfer-Encoding"] == "chunked"
            assert gz.content == pattern(65536)
            redirected = await client.get(srv.url("/redirect"))
            assert redirected.content == pattern(100) and redirected.history[0].status == 301
            results = await asyncio.gather(
                *(client.get(srv.url(f"/bytes/{sizes[i % 3]}")) for i in range(60))
            )
            assert all(r.content == pattern(sizes[i % 3]) for i, r in enumerate(results))
    log = srv.access_log()
    assert len(log) == 66
    # Counted by nginx: never more than 4 connections, and they carried many requests each.
    assert len({conn for conn, _, _ in log}) <= 4
    assert max(n for _, n, _ in log) > 10


async def test_stale_connection_with_one_shot_body_is_not_retried() -> None:
    async def once() -> AsyncIterator[bytes]:
        yield b"one-shot"

    async with _stale_after_first_script(False) as srv, HTTPClient() as client:
        await client.get(srv.url("/1"))
        # PUT is idempotent, but this body cannot be sent a second time.
        with pytest.raises(
            (asyncnet.ReadError, asyncnet.RemoteProtocolError), match=DROPPED_BEFORE_RESPONSE
        ):
            await client.put(srv.url("/2"), body=once())
        assert srv.connections == 1


async def test_redirect_to_another_host_with_a_single_connection_slot() -> None:
    # The hop's connection must be given back before the next hop needs the only slot.
    async with RawServer(responses=[OK], repeat=True) as target:
        hop = response(302, b"moved", [("Location", target.url("/there"))])
        async with RawServer(responses=[hop], repeat=True) as origin, HTTPClient(
            limits=Limits(max_connections=1), timeout=Timeout(pool=5)
        ) as client:
            for _ in range(3):
                resp = await client.get(origin.url("/here"))
                assert resp.content == b"hello" and len(resp.history) == 1
            assert origin.peak_connections + target.peak_connections <= 2
            assert client.statistics().connections_open <= 1


async def test_redirect_back_and_forth_within_per_host_limit() -> None:
    async with RawServer(responses=[OK], repeat=True) as srv, HTTPClient(
        limits=Limits(max_connections=1, max_per_host=1), timeout=Timeout(pool=5)
    ) as client:
        chain = response(301, b"", [("Location", "/b")])
        async with RawServer(responses=[chain, chain, OK]) as hops:
            resp = await client.get(hops.url("/a"))
            assert [r.status for r in resp.history] == [301, 301]
            assert hops.connections == 1
        assert (await client.get(srv.url())).content == b"hello"


@pytest.mark.skipif(nginx_path() is None, reason="nginx not installed")
async def test_nginx_closing_after_keepalive_requests_is_honoured() -> None:
    with NginxServer(sizes=(100,), keepalive_requests=3) as srv:
        async with HTTPClient() as client:
            for _ in range(12):
                assert (await client.get(srv.url("/bytes/100"))).content == pattern(100)
            stats = client.statistics()
    log = srv.access_log()
    # nginx said "Connection: close" on every third response; each time the
    # client opened a new connection instead of reusing a closing one.
    assert len(log) == 12 and max(n for _, n, _ in log) == 3
    assert len({conn for conn, _, _ in log}) == 4
    assert (stats.connections_opened, stats.requests_reused) == (4, 8)


@pytest.mark.skipif(nginx_path() is None, reason="nginx not installed")
async def test_nginx_over_tls_with_the_test_ca() -> None:
    with NginxServer(sizes=(100, 300000), tls=True) as srv:
        async with HTTPClient(ssl=client_ssl_context()) as client:
            for host in ("localhost", "127.0.0.1"):
                resp = await client.get(srv.url("/bytes/300000", host=host))
                assert resp.content == pattern(300000)
            gz = await client.get(srv.url("/gzip/300000", host="localhost"))
            assert gz.content == pattern(300000)
            assert gz.headers["Content-Encoding"] == "gzip"
        async with HTTPClient() as strict:
            with pytest.raises(
                asyncnet.ConnectError,
                match=r"^TLS certificate of localhost:\d+ failed verification",
            ):
                await strict.get(srv.url("/bytes/100", host="localhost"))
    log = srv.access_log()
    # Two hosts, two pool keys: two connections, one of them reused.
    assert [uri for _, _, uri in log] == ["/bytes/300000", "/bytes/300000", "/gzip/300000"]
    assert len({conn for conn, _, _ in log}) == 2


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nread to the end",
        b"HTTP/1.0 200 OK\r\n\r\nread to the end",
    ],
)
async def test_body_delimited_by_close_is_read_whole_and_not_reused(reply: bytes) -> None:
    async with RawServer(responses=[reply, reply]) as srv, HTTPClient() as client:
        for _ in range(2):
            assert (await client.get(srv.url())).content == b"read to the end"
        assert srv.connections == 2


async def test_bodiless_statuses_keep_the_connection() -> None:
    replies = [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        response(200, b"after"),
    ]
    async with RawServer(responses=replies) as srv, HTTPClient() as client:
        assert (await client.get(srv.url())).status == 204
        assert (await client.get(srv.url())).status == 304
        assert (await client.get(srv.url())).content == b"after"
        assert srv.connections == 1


async def test_early_final_response_while_uploading() -> None:
    # The server refuses after the head and closes; the client gets the answer or a
    # transport error, never a hang, and is fine afterwards.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if srv.connections == 1:
            await reader.readuntil(b"\r\n\r\n")  # the head only, never the body
            writer.write(response(413, b"too big", [("Connection", "close")]))
            await writer.drain()
            return
        await srv.read_request(reader, writer)
        await srv.send(writer, OK)

    srv = RawServer(handler)
    async with srv, HTTPClient(timeout=Timeout(write=10, read=10)) as client:
        try:
            resp = await client.post(srv.url(), body=b"x" * 20_000_000)
        except asyncnet.TransportError:
            pass
        else:
            assert resp.status == 413
        assert (await client.get(srv.url())).content == b"hello"


# -- reuse only when both the request and the response finished -----------------------
#
# Each server below answers the first request early, with a complete keep-alive
# response, while the upload is still running, then records whatever else that
# connection carries. A second request written into it would land in the middle of
# the unfinished body: the server answers such a request with "smuggled" (so the
# client cannot hang on it) and the tests check on the server side that the first
# connection never saw it.

EARLY = response(401, b"", [("WWW-Authenticate", "Basic")], reason="Unauthorized")
FRESH = response(200, b"fresh")


def _early_answer_server(*, stop_reading: asyncio.Event | None = None) -> RawServer:
    """A server whose first connection answers after the request head only."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if srv.connections > 1:
            while await srv.read_request(reader, writer):
                await srv.send(writer, FRESH)
            return
        await reader.readuntil(b"\r\n\r\n")
        writer.write(EARLY)
        await writer.drain()
        if stop_reading is not None:
            await stop_reading.wait()
        tail = b""
        while data := await reader.read(64 * 1024):
            window = tail + data
            if b"GET /second" in window:
                writer.write(response(200, b"smuggled"))
                window = b""
            tail = window[-16:]

    srv = RawServer(handler)
    return srv


def _only_connection(client: HTTPClient) -> HTTPConnection:
    [conn] = client._dispatcher.pool._all  # type: ignore[union-attr]
    return conn


async def test_upload_that_fails_after_an_early_complete_response_closes_the_connection() -> None:
    """The caller's body iterator raises after the server answered: its error, and no reuse."""
    srv = _early_answer_server()
    async with srv, HTTPClient() as client:

        async def body() -> AsyncIterator[bytes]:
            yield b"first piece"
            # The complete early answer is in before the source fails.
            await _only_connection(client).receive_head()
            raise RuntimeError("the caller's source failed")

        with pytest.raises(RuntimeError, match="source failed"):
            await client.post(srv.url("/upload"), body=body())
        assert (await client.get(srv.url("/second"))).content == b"fresh"
        assert srv.connections == 2
        assert b"/second" not in srv.received[0]
        assert srv.received[1].startswith(b"GET /second HTTP/1.1\r\n")


async def test_upload_cancelled_while_waiting_on_drain_closes_the_connection() -> None:
    """Cancelled while the server, having answered, reads nothing more: no reuse."""
    stop_reading = asyncio.Event()
    srv = _early_answer_server(stop_reading=stop_reading)
    started = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        started.set()
        # Far more than the socket buffers hold: the upload waits on drain.
        yield b"u" * (32 * 1024 * 1024)
        yield b"never sent"

    async with srv, HTTPClient(timeout=Timeout(write=None, read=30)) as client:
        upload = asyncio.ensure_future(client.post(srv.url("/upload"), body=body()))
        await started.wait()
        conn = _only_connection(client)
        assert (await conn.receive_head()).status == 401
        assert conn.writing_paused and not upload.done()
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload
        stop_reading.set()
        assert (await client.get(srv.url("/second"))).content == b"fresh"
        assert srv.connections == 2
        assert b"/second" not in srv.received[0]
        assert srv.received[1].startswith(b"GET /second HTTP/1.1\r\n")


async def test_early_response_is_returned_when_the_server_stops_reading() -> None:
    """The upload times out only because the server answered and stopped reading."""
    stop_reading = asyncio.Event()  # never set: the first connection reads no more
    srv = _early_answer_server(stop_reading=stop_reading)

    async with srv, HTTPClient(timeout=Timeout(write=0.05, read=30)) as client:

        async def body() -> AsyncIterator[bytes]:
            yield b"first piece"
            await _only_connection(client).receive_head()
            for _ in range(64):  # then far more than the socket buffers hold
                yield b"u" * (1024 * 1024)

        resp = await client.post(srv.url("/upload"), body=body())
        assert resp.status == 401
        assert (await client.get(srv.url("/second"))).content == b"fresh"
        assert srv.connections == 2
        assert b"/second" not in srv.received[0]


@pytest.mark.parametrize("value", ["close", "Keep-Alive, CLOSE", " close "])
async def test_callers_connection_close_is_honoured(value: str) -> None:
    """RFC 9112 §9.6: a request that says ``Connection: close`` is the connection's last."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A server that keeps the connection open whatever the request said.
        while await srv.read_request(reader, writer):
            await srv.send(writer, OK)

    srv = RawServer(handler)
    async with srv, HTTPClient() as client:
        resp = await client.get(srv.url("/first"), headers={"Connection": value})
        assert resp.content == b"hello"
        assert (await client.get(srv.url("/second"))).content == b"hello"
        assert srv.connections == 2
        assert srv.received[0].count(b"HTTP/1.1\r\n") == 1
        assert srv.received[1].startswith(b"GET /second HTTP/1.1\r\n")


async def test_client_wide_connection_close_header_closes_every_connection() -> None:
    async with RawServer(responses=[OK], repeat=True) as srv, HTTPClient(
        headers={"Connection": "close"}
    ) as client:
        for _ in range(3):
            assert (await client.get(srv.url())).content == b"hello"
        assert srv.connections == 3
