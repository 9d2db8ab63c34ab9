"""The test servers themselves: counters, canned replies, handlers, TLS and clean exits."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import json
import ssl
import zlib

import pytest

from tests.support.servers import (
    DROP,
    HTTPServer,
    NginxServer,
    RawServer,
    client_ssl_context,
    ipv6_available,
    nginx_path,
    pattern,
    read_request,
    response,
    server_ssl_context,
)


async def _exchange(port: int, request: bytes, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_raw_server_canned_replies_in_order_then_close() -> None:
    one = response(200, b"one")
    two = response(201, b"two", [("Connection", "close")], reason="Created")
    async with RawServer(responses=[one, two]) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(GET + GET)
        await writer.drain()
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert data == one + two
        assert srv.connections == 1
        assert srv.requests == 2
        assert bytes(srv.received[0]) == GET + GET
        assert srv.request_log == [GET, GET]


async def test_raw_server_drop_and_exhaustion_close_without_reply() -> None:
    async with RawServer(responses=[DROP]) as srv:
        assert await _exchange(srv.port, GET) == b""
        assert await _exchange(srv.port, GET) == b""  # list used up
        assert srv.connections == 2


async def test_raw_server_repeat_serves_last_reply_forever() -> None:
    reply = response(200, b"x")
    async with RawServer(responses=[reply], repeat=True) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        for _ in range(3):
            writer.write(GET)
            assert await reader.readexactly(len(reply)) == reply
        writer.close()
        await writer.wait_closed()


async def test_raw_server_reads_request_bodies() -> None:
    post = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    async with RawServer(responses=[response(), response()]) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(post + chunked)
        await reader.readexactly(2 * len(response()))
        writer.close()
        await writer.wait_closed()
        assert srv.request_log == [post, chunked]


async def test_raw_server_counts_peak_concurrency_and_closes_open_connections() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        await release.wait()
        await srv.send(writer, response(200, b"ok"))
        await reader.read()

    async with RawServer(handler) as srv:
        conns = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(5)]
        for _, writer in conns:
            writer.write(GET)
        await srv.wait_until(lambda s: s.active_requests == 5)
        assert srv.peak_connections == 5
        release.set()
        await srv.wait_until(lambda s: s.active_requests == 0)
        assert srv.peak_requests == 5
        # Leave the client sides open: the server must close its ends on exit.
    for reader, writer in conns:
        assert await reader.read() == response(200, b"ok")
        writer.close()
        await writer.wait_closed()
    assert srv.active_connections == 0


async def test_raw_server_reports_script_errors() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise KeyError("script bug")

    with pytest.raises(AssertionError, match="server script failed"):
        async with RawServer(handler) as srv:
            # The server closes with our request unread: the kernel may reset.
            with contextlib.suppress(ConnectionResetError):
                await _exchange(srv.port, GET)


async def test_raw_server_tls_and_ipv6() -> None:
    async with RawServer(responses=[response(200, b"secure")], ssl=server_ssl_context()) as srv:
        assert srv.url("/a") == f"https://127.0.0.1:{srv.port}/a"
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", srv.port, ssl=client_ssl_context(), server_hostname="localhost"
        )
        # The client verified the test server's certificate for localhost.
        assert ("DNS", "localhost") in writer.get_extra_info("peercert")["subjectAltName"]
        writer.write(GET)
        assert await reader.readexactly(len(response(200, b"secure"))) == response(200, b"secure")
        # The server decrypted the request: it logged the plaintext.
        assert srv.request_log == [GET]
        writer.close()
        # The server may abort before the client's close_notify exchange
        # completes, so closing may report a TLS or connection error.
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
        assert writer.transport.is_closing()
        # Plain HTTP to the TLS port gets no HTTP reply and logs no request.
        try:
            plain = await _exchange(srv.port, GET)
        except ConnectionError:
            plain = b""
        assert not plain.startswith(b"HTTP/")
        assert srv.request_log == [GET]
    if not ipv6_available():
        pytest.skip("::1 not available")
    async with RawServer(
        responses=[response(200, b"six", [("Connection", "close")])], host="::1"
    ) as srv:
        assert srv.url() == f"http://[::1]:{srv.port}/"
        assert (await _exchange(srv.port, GET, "::1")).endswith(b"six")


async def test_read_request_at_eof_returns_empty() -> None:
    reader = asyncio.StreamReader()
    reader.feed_eof()
    assert await read_request(reader) == b""


def _get(srv: HTTPServer, path: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_http_server_paths() -> None:
    with HTTPServer() as srv:
        resp, data = _get(srv, "/bytes/1000")
        assert data == pattern(1000)
        resp, data = _get(srv, "/chunked/10000?chunk=999")
        assert resp.getheader("Transfer-Encoding") == "chunked" and data == pattern(10000)
        resp, data = _get(srv, "/gzip/5000")
        assert gzip.decompress(data) == pattern(5000)
        resp, data = _get(srv, "/deflate/5000")
        assert zlib.decompress(data) == pattern(5000)
        resp, data = _get(srv, "/status/418")
        assert resp.status == 418
        resp, data = _get(srv, "/status/204")
        assert resp.status == 204 and data == b""
        resp, _ = _get(srv, "/redirect/3")
        assert resp.status == 302 and resp.getheader("Location") == "/redirect/2"
        resp, data = _get(srv, "/redirect/0")
        assert resp.status == 200 and data == b"done"
        resp, _ = _get(srv, "/redirect-to?url=http%3A%2F%2Fexample.test%2F&status=307")
        assert resp.status == 307 and resp.getheader("Location") == "http://example.test/"
        resp, data = _get(srv, "/echo?q=1", "POST", b"hello", {"X-A": "b"})
        doc = json.loads(data)
        assert doc["method"] == "POST" and doc["body"] == "hello" and doc["path"] == "/echo?q=1"
        assert ["X-A", "b"] in doc["headers"]
        resp, _ = _get(srv, "/headers")
        assert resp.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
        assert resp.headers.get_all("X-Dup") == ["one", "two"]
        resp, data = _get(srv, "/close")
        assert resp.getheader("Connection") == "close"
        resp, data = _get(srv, "/slow-drip?interval=0.001&count=3")
        assert data == b"xxx"
    assert srv.connections == 13
    assert srv.active_connections == 0


def test_http_server_keep_alive_and_peak() -> None:
    with HTTPServer() as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for _ in range(3):
            conn.request("GET", "/bytes/10")
            assert conn.getresponse().read() == pattern(10)
        conn.close()
        assert srv.requests == 3
    assert srv.connections == 1 and srv.peak_connections == 1


def test_http_server_exit_closes_idle_and_dripping_connections() -> None:
    with HTTPServer() as srv:
        idle = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        idle.request("GET", "/bytes/1")
        idle.getresponse().read()
        drip = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        drip.request("GET", "/slow-drip?interval=30&count=10")
        drip_resp = drip.getresponse()
    # Exiting did not wait 30 s, and both connections were closed by the server.
    with pytest.raises(http.client.IncompleteRead):
        drip_resp.read()
    idle.close()
    drip.close()
    assert srv.active_connections == 0


def test_http_server_tls() -> None:
    with HTTPServer(ssl=server_ssl_context()) as srv:
        conn = http.client.HTTPSConnection(
            "localhost", srv.port, context=client_ssl_context(), timeout=10
        )
        conn.request("GET", "/bytes/5")
        assert conn.getresponse().read() == pattern(5)
        conn.close()
        bad = http.client.HTTPSConnection(
            "localhost", srv.port, context=ssl.create_default_context(), timeout=10
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            bad.request("GET", "/bytes/5")
        bad.close()
    assert srv.active_connections == 0


@pytest.mark.skipif(not ipv6_available(), reason="::1 not available")
def test_http_server_ipv6() -> None:
    with HTTPServer(host="::1") as srv:
        assert srv.url("/x") == f"http://[::1]:{srv.port}/x"
        conn = http.client.HTTPConnection("::1", srv.port, timeout=10)
        conn.request("GET", "/bytes/4")
        assert conn.getresponse().read() == pattern(4)
        conn.close()


@pytest.mark.skipif(nginx_path() is None, reason="nginx not installed")
def test_nginx_server_serves_and_logs_connections() -> None:
    with NginxServer(sizes=(10, 2000)) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/bytes/2000")
        assert conn.getresponse().read() == pattern(2000)
        conn.request("GET", "/redirect")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 301 and resp.getheader("Location", "").endswith("/bytes/10")
        conn.request("GET", "/gzip/2000", headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert gzip.decompress(resp.read()) == pattern(2000)
        conn.close()
        with pytest.raises(RuntimeError, match="after nginx has stopped"):
            srv.access_log()
    log = srv.access_log()
    assert [uri for _, _, uri in log] == ["/bytes/2000", "/redirect", "/gzip/2000"]
    assert {c for c, _, _ in log} == {log[0][0]} and [n for _, n, _ in log] == [1, 2, 3]


async def test_http_server_accepts_a_burst_of_connections() -> None:
    with HTTPServer() as srv:
        streams = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(64)]
        for _, writer in streams:
            writer.write(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for reader, writer in streams:
            assert (await reader.read()).endswith(pattern(3))
            writer.close()
            await writer.wait_closed()
    assert srv.connections == 64
