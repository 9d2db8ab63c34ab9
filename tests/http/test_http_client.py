"""HTTPClient end to end over loopback: http.server, scripted raw servers, TLS."""

from __future__ import annotations

import asyncio
import gzip
import io
import socket
import struct
from collections.abc import AsyncIterator, Callable

import pytest

import asyncnet
from asyncnet import HTTPClient, Limits, Timeout
from tests.support.servers import (
    DROP,
    HTTPServer,
    RawServer,
    client_ssl_context,
    ipv6_available,
    pattern,
    response,
    server_ssl_context,
)

OK = response(200, b"ok")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- basics against http.server ---------------------------------------------------


async def test_get_post_head_against_http_server() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/bytes/1000"))
            assert resp.status == 200
            assert resp.reason == "OK"
            assert resp.http_version == "1.1"
            assert resp.content == pattern(1000)
            assert await resp.read() == pattern(1000)
            assert resp.headers["content-length"] == "1000"
            assert str(resp.url) == srv.url("/bytes/1000")
            assert resp.history == []
            assert resp.is_closed

            resp = await client.post(srv.url("/echo"), body=b"hello")
            doc = await resp.json()
            assert doc["method"] == "POST"
            assert doc["body"] == "hello"
            names = {name.lower(): value for name, value in doc["headers"]}
            assert names["content-length"] == "5"
            assert "gzip" in names["accept-encoding"]
            assert names["host"] == f"127.0.0.1:{srv.port}"

            resp = await client.head(srv.url("/bytes/1000"))
            assert resp.status == 200
            assert resp.headers["content-length"] == "1000"
            assert resp.content == b""
        # All of it on one keep-alive connection.
        assert srv.connections == 1


async def test_every_method_helper() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            for name in ("get", "post", "put", "patch", "delete", "options"):
                resp = await getattr(client, name)(srv.url("/echo"))
                assert (await resp.json())["method"] == name.upper()
            resp = await client.request("PUT", srv.url("/echo"), json={"a": [1, 2]})
            doc = await resp.json()
            assert doc["body"] == '{"a":[1,2]}'
            assert ["Content-Type", "application/json"] in doc["headers"]


async def test_every_method_helper_passes_every_option_on() -> None:
    # Each helper calls the request loop itself: every option must reach it.
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            for name in ("get", "post", "put", "patch", "delete", "options", "head"):
                helper = getattr(client, name)
                resp = await helper(
                    srv.url("/echo"), headers={"X-Opt": name}, body=b"payload", timeout=5.0
                )
                if name != "head":
                    doc = await resp.json()
                    assert doc["method"] == name.upper()
                    assert ["X-Opt", name] in doc["headers"]
                    assert doc["body"] == "payload"
                resp = await helper(srv.url("/echo"), json={"n": 1})
                if name != "head":
                    assert (await resp.json())["body"] == '{"n":1}'
                resp = await helper(srv.url("/redirect/1"), follow_redirects=False)
                assert resp.status == 302
                assert resp.history == []
                with pytest.raises(asyncnet.TooManyRedirects):
                    await helper(srv.url("/redirect/2"), max_redirects=1)
                if name != "head":  # a HEAD answer has no body to wait for
                    with pytest.raises(asyncnet.ReadTimeout):
                        await helper(
                            srv.url("/slow-drip?interval=5&count=2"),
                            timeout=Timeout(read=0.05),
                        )


async def test_route_cache_is_bounded_and_keyed_by_what_changes_the_head() -> None:
    from asyncnet._http import _dispatch

    with HTTPServer() as srv:
        async with HTTPClient() as client:
            # Same URL, different methods and bodies: each gets its own head.
            doc = await (await client.post(srv.url("/echo"), body=b"abc")).json()
            assert doc["body"] == "abc"
            doc = await (await client.post(srv.url("/echo"), body=b"abcdef")).json()
            assert doc["body"] == "abcdef"
            assert ["Content-Length", "6"] in doc["headers"]
            doc = await (await client.put(srv.url("/echo"))).json()
            assert doc["method"] == "PUT" and ["Content-Length", "0"] in doc["headers"]
    # Many URLs: the cache is emptied when full, never grows past its size.
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(responses=[reply], repeat=True) as raw, HTTPClient() as client:
        for i in range(_dispatch._ROUTE_CACHE_SIZE + 10):
            response = await client.get(raw.url(f"/n?{i}"))
            assert response.content == b"ok"
            assert len(client._dispatcher.routes) <= _dispatch._ROUTE_CACHE_SIZE
        assert raw.connections == 1


async def test_route_cache_never_keeps_a_url_with_userinfo() -> None:
    # The route of such a URL holds the Authorization field made from its password.
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(responses=[reply], repeat=True) as raw, HTTPClient() as client:
        secret = f"http://user:s3cret@127.0.0.1:{raw.port}/private"
        for _ in range(2):
            assert (await client.get(secret)).content == b"ok"
        assert (await client.get(raw.url("/public"))).content == b"ok"
        cached = [key[1] for key in client._dispatcher.routes]
        assert [url.target for url in cached] == ["/public"]
        assert all(url.username is None for url in cached)


async def test_text_and_raise_for_status() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/status/404"))
            assert resp.status == 404
            assert await resp.text() == "status 404"
            with pytest.raises(asyncnet.HTTPStatusError) as info:
                resp.raise_for_status()
            assert info.value.response is resp
            ok = await client.get(srv.url("/bytes/3"))
            assert ok.raise_for_status() is ok


async def test_headers_case_insensitive_with_duplicates() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/headers"))
            assert resp.headers.get_all("x-dup") == ["one", "two"]
            assert resp.headers.get("X-DUP") == "one, two"
            assert resp.headers.get_all("SET-COOKIE") == ["a=1; Path=/", "b=2; Path=/"]
            names = [name for name, _ in resp.headers.items()]
            assert names.count("X-Dup") == 2


async def test_exact_request_bytes_and_basic_auth_from_userinfo() -> None:
    async with (
        RawServer(responses=[OK]) as srv,
        HTTPClient(headers={"X-Client": "1"}) as client,
    ):
        url = f"http://us%65r:p%40ss@127.0.0.1:{srv.port}/path?q=1"
        resp = await client.get(url, headers=[("X-Req", "a"), ("X-Req", "b")])
        assert resp.content == b"ok"
    head = srv.request_log[0].decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "GET /path?q=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{srv.port}" in lines
    assert "X-Client: 1" in lines
    assert lines.count("X-Req: a") == 1 and lines.count("X-Req: b") == 1
    assert "Authorization: Basic dXNlcjpwQHNz" in lines  # "user:p@ss"
    assert not any(line.lower().startswith("content-length") for line in lines)
    assert not any(line.lower().startswith("transfer-encoding") for line in lines)


# -- request bodies -----------------------------------------------------------------


async def _agen(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "str", "list", "agen", "file", "empty"])
async def test_every_body_kind(kind: str) -> None:
    data = pattern(100_000)
    body: object
    expected = data
    if kind == "bytes":
        body = data
    elif kind == "bytearray":
        body = bytearray(data)
    elif kind == "str":
        body = data.decode("ascii")
    elif kind == "list":
        body = [data[:10], data[10:50_000], data[50_000:]]
    elif kind == "agen":
        body = _agen([data[:1], data[1:70_000], data[70_000:]])
    elif kind == "file":
        body = io.BytesIO(data)
    else:
        body, expected = b"", b""
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.post(srv.url("/echo"), body=body)  # type: ignore[arg-type]
            doc = await resp.json()
    assert doc["body"].encode("latin-1") == expected
    headers = {name.lower(): value for name, value in doc["headers"]}
    if "transfer-encoding" in headers:
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
    else:
        assert headers["content-length"] == str(len(expected))


async def test_upload_waits_for_a_slow_reader() -> None:
    """A big streamed upload never runs far ahead of what the server has read."""
    total = 48 * 1024 * 1024
    piece = b"u" * (256 * 1024)
    received = 0
    lead = 0

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        while True:
            data = await reader.read(16 * 1024)
            if not data:
                return
            received += len(data)
            if data.endswith(b"0\r\n\r\n"):
                break
            for _ in range(3):
                await asyncio.sleep(0)
        writer.write(OK)
        await writer.drain()

    async def producer() -> AsyncIterator[bytes]:
        nonlocal lead
        sent = 0
        while sent < total:
            lead = max(lead, sent - received)
            sent += len(piece)
            yield piece

    async with RawServer(slow_reader) as srv, HTTPClient() as client:
        resp = await client.post(srv.url(), body=producer())
        assert resp.content == b"ok"
    assert received > total
    # Without waiting on drain the whole upload would be queued before the
    # server read a byte; with it the lead is bounded by socket buffers.
    assert lead < 16 * 1024 * 1024, lead


# -- responses from a scripted server -----------------------------------------------


async def test_malformed_response_raises_and_connection_is_not_reused() -> None:
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header: x\r\n\r\nok"
    async with RawServer(responses=[bad, OK]) as srv, HTTPClient() as client:
        with pytest.raises(
            asyncnet.RemoteProtocolError, match="header name 'Bad Header' is not a token"
        ):
            await client.get(srv.url())
        resp = await client.get(srv.url())
        assert resp.content == b"ok"
    assert srv.connections == 2


async def test_reset_mid_body_raises_read_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        await reached.wait()
        _reset(writer)

    reached = asyncio.Event()
    async with RawServer(handler) as srv, HTTPClient() as client:
        async with client.stream("GET", srv.url()) as resp:
            chunks = resp.aiter_raw()
            assert await chunks.__anext__() == b"x" * 10
            reached.set()
            with pytest.raises(asyncnet.ReadError) as info:
                await chunks.__anext__()
            assert isinstance(info.value.__cause__, ConnectionResetError)
            await chunks.aclose()
        assert client.statistics().connections_open == 0


async def test_truncated_body_names_the_byte_counts() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.write_eof()

    async with RawServer(handler) as srv, HTTPClient() as client:
        with pytest.raises(asyncnet.RemoteProtocolError, match=r"10 of 100"):
            await client.get(srv.url())


async def test_trailers_are_kept_apart_from_headers() -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
    )
    async with RawServer(responses=[reply, reply]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url())
        assert resp.content == b"hello world"
        assert resp.trailers.get("x-sum") == "42"
        assert "x-sum" not in resp.headers
        async with client.stream("GET", srv.url()) as resp:
            # Chunk boundaries carry no meaning: pieces follow the reads.
            pieces = [c async for c in resp.aiter_bytes()]
            assert b"".join(pieces) == b"hello world" and all(pieces)
            assert resp.trailers.get("X-SUM") == "42"
    assert srv.connections == 1


async def test_connection_close_is_not_reused() -> None:
    closing = response(200, b"bye", [("Connection", "close")])
    async with RawServer(responses=[closing, OK]) as srv, HTTPClient() as client:
        assert (await client.get(srv.url())).content == b"bye"
        assert (await client.get(srv.url())).content == b"ok"
    assert srv.connections == 2


async def test_unsolicited_bytes_on_idle_connection_discard_it() -> None:
    sent_junk = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        await srv.send(writer, OK)
        if srv.connections == 1:
            await first_done.wait()
            writer.write(OK)  # a "response" to nothing
            await writer.drain()
            sent_junk.set()
        await reader.read()

    first_done = asyncio.Event()
    async with RawServer(handler) as srv, HTTPClient() as client:
        assert (await client.get(srv.url())).content == b"ok"
        first_done.set()
        await sent_junk.wait()
        await srv.wait_until(lambda s: s.active_connections == 0)
        assert client.statistics().connections_open == 0
        assert (await client.get(srv.url())).content == b"ok"
    assert srv.connections == 2


async def test_extra_bytes_after_response_in_same_read_discard_connection() -> None:
    async with (
        RawServer(responses=[OK + b"HTTP/1.1 200 OK\r\n", OK]) as srv,
        HTTPClient() as client,
    ):
        assert (await client.get(srv.url())).content == b"ok"
        assert (await client.get(srv.url())).content == b"ok"
    assert srv.connections == 2


# -- streaming and decoding ------------------------------------------------------------


async def test_aiter_raw_regroups_the_body_into_pieces_of_chunk_size() -> None:
    with HTTPServer() as srv:
        async with (
            HTTPClient() as client,
            client.stream("GET", srv.url("/chunked/10000?chunk=700")) as resp,
        ):
            pieces = [p async for p in resp.aiter_raw(chunk_size=3000)]
    assert [len(p) for p in pieces] == [3000, 3000, 3000, 1000]
    assert b"".join(pieces) == pattern(10000)
    assert resp.num_bytes_downloaded == 10000


async def test_stream_reads_body_only_when_asked() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            async with client.stream("GET", srv.url("/chunked/300000?chunk=1000")) as resp:
                assert resp.status == 200
                assert resp.num_bytes_downloaded == 0
                pieces = [p async for p in resp.aiter_bytes(chunk_size=4096)]
            assert all(len(p) == 4096 for p in pieces[:-1])
            assert b"".join(pieces) == pattern(300000)
            assert resp.num_bytes_downloaded == 300000
            with pytest.raises(asyncnet.StreamConsumed, match="already read or iterated"):
                await resp.read()


async def test_unread_stream_closes_its_connection() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            async with client.stream("GET", srv.url("/bytes/1000000")) as resp:
                assert resp.status == 200
            with pytest.raises(asyncnet.StreamClosed):
                await resp.read()
            assert (await client.get(srv.url("/bytes/10"))).content == pattern(10)
            assert client.statistics().connections_opened == 2


async def test_gzip_and_deflate_end_to_end() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/gzip/200000"))
            assert resp.headers["content-encoding"] == "gzip"
            assert resp.content == pattern(200000)
            assert resp.num_bytes_downloaded == int(resp.headers["content-length"])
            async with client.stream("GET", srv.url("/gzip/200000")) as resp:
                assert b"".join([c async for c in resp.aiter_bytes()]) == pattern(200000)
            resp = await client.get(srv.url("/deflate/5000"))
            assert resp.content == pattern(5000)
        async with HTTPClient(decode_content=False) as raw_client:
            resp = await raw_client.get(srv.url("/gzip/5000"))
            assert gzip.decompress(resp.content) == pattern(5000)


async def test_corrupt_gzip_raises_decode_error() -> None:
    reply = response(200, b"\x1f\x8b\x08\x00garbage-not-gzip", [("Content-Encoding", "gzip")])
    async with RawServer(responses=[reply]) as srv, HTTPClient() as client:
        with pytest.raises(asyncnet.DecodeError, match=r"^corrupt gzip content"):
            await client.get(srv.url())


# -- keep-alive, retries --------------------------------------------------------------


async def test_stale_keep_alive_connection_is_retried_for_get() -> None:
    async with RawServer(responses=[OK, DROP, OK]) as srv, HTTPClient() as client:
        assert (await client.get(srv.url())).content == b"ok"
        assert (await client.get(srv.url())).content == b"ok"
    assert srv.connections == 2


async def test_stale_keep_alive_connection_is_not_retried_for_post() -> None:
    async with RawServer(responses=[OK, DROP, OK]) as srv, HTTPClient() as client:
        assert (await client.post(srv.url(), body=b"1")).content == b"ok"
        with pytest.raises(
            asyncnet.RemoteProtocolError, match="connection closed before any response bytes"
        ):
            await client.post(srv.url(), body=b"2")
    assert srv.connections == 1


async def test_fresh_connection_failure_is_not_retried() -> None:
    async with RawServer(responses=[DROP, OK]) as srv, HTTPClient() as client:
        with pytest.raises(
            asyncnet.RemoteProtocolError, match="connection closed before any response bytes"
        ):
            await client.get(srv.url())
    assert srv.connections == 1


async def test_pool_limits_are_never_exceeded() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            await asyncio.sleep(0)
            await srv.send(writer, OK)

    async with (
        RawServer(handler) as srv,
        HTTPClient(limits=Limits(max_connections=10, max_per_host=4)) as client,
    ):
        results = await asyncio.gather(*(client.get(srv.url()) for _ in range(200)))
        assert all(r.content == b"ok" for r in results)
        assert client.statistics().connections_open <= 4
    assert srv.peak_connections <= 4
    assert srv.connections <= 4


async def test_idle_connections_expire() -> None:
    async with RawServer(responses=[OK], repeat=True) as srv:
        limits = Limits(keepalive_expiry=0.05)
        async with HTTPClient(limits=limits) as client:
            assert (await client.get(srv.url())).content == b"ok"
            # The pool closes the idle connection on its own once it expires.
            await srv.wait_until(lambda s: s.active_connections == 0)
            assert client.statistics().connections_open == 0
            assert (await client.get(srv.url())).content == b"ok"
    assert srv.connections == 2


# -- timeouts ---------------------------------------------------------------------


async def _eventually(condition: Callable[[], bool], turns: int = 100) -> bool:
    """Give the loop up to ``turns`` turns for ``condition`` to hold; return whether it does."""
    for _ in range(turns):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.Event().wait()


async def test_read_timeout() -> None:
    async with RawServer(_never_answer) as srv, HTTPClient(timeout=Timeout(read=0.1)) as client:
        with pytest.raises(asyncnet.ReadTimeout):
            await client.get(srv.url())
        # The aborted transport reports connection_lost on a later loop turn.
        assert await _eventually(lambda: client.statistics().connections_open == 0), (
            client.statistics()
        )


async def test_total_deadline_stops_a_slow_drip() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(timeout=Timeout(read=5, total=0.3)) as client:
            with pytest.raises(asyncnet.TotalTimeout):
                await client.get(srv.url("/slow-drip?interval=0.02&count=100000"))
            with pytest.raises(asyncnet.TotalTimeout):
                drip = srv.url("/slow-drip?interval=0.02&count=100000")
                async with client.stream("GET", drip) as r:
                    async for _ in r.aiter_bytes():
                        pass
            # Per request: no total deadline, a short read timeout instead.
            with pytest.raises(asyncnet.ReadTimeout):
                await client.get(
                    srv.url("/slow-drip?interval=1&count=10"), timeout=Timeout(read=0.05)
                )


async def test_pool_timeout_and_no_leaked_slot() -> None:
    async with (
        RawServer(responses=[response(200, b"x" * 10)], repeat=True) as srv,
        HTTPClient(limits=Limits(max_connections=1)) as client,
    ):
        async with client.stream("GET", srv.url()) as held:
            with pytest.raises(asyncnet.PoolTimeout):
                await client.get(srv.url(), timeout=Timeout(pool=0.05))
            assert client.statistics().pool_waiters == 0
            await held.read()
        assert (await client.get(srv.url())).content == b"x" * 10
        assert client.statistics().connections_open == 1


async def test_write_timeout() -> None:
    async def no_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async def endless() -> AsyncIterator[bytes]:
        block = b"w" * 65536
        for _ in range(100_000):
            yield block

    async with RawServer(no_read) as srv, HTTPClient(timeout=Timeout(write=0.1)) as client:
        with pytest.raises(asyncnet.WriteTimeout):
            await client.post(srv.url(), body=endless())


async def test_connect_error_has_cause() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HTTPClient() as client:
        with pytest.raises(asyncnet.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{port}/")
        assert isinstance(info.value.__cause__, OSError)
        assert isinstance(info.value, ConnectionError)


# -- cancellation ---------------------------------------------------------------------


async def test_cancelled_requests_leak_nothing() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            for _ in range(3):
                await asyncio.sleep(0)
            await srv.send(writer, response(200, b"y" * 5000))

    async with (
        RawServer(handler) as srv,
        HTTPClient(limits=Limits(max_connections=5, max_per_host=5)) as client,
    ):
        for round_ in range(10):
            tasks = [asyncio.ensure_future(client.get(srv.url())) for _ in range(100)]
            # Cancel each at a different point of its life.
            for i, task in enumerate(tasks):
                for _ in range((i + round_) % 7):
                    await asyncio.sleep(0)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stats = client.statistics()
            assert stats.pool_waiters == 0
            assert stats.connections_open == stats.connections_idle
            assert stats.connections_open <= 5
        assert (await client.get(srv.url())).content == b"y" * 5000
    assert srv.peak_connections <= 5


# -- redirects ------------------------------------------------------------------------


async def test_redirect_chain_and_history() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/redirect/3"))
            assert resp.content == b"done"
            assert [r.status for r in resp.history] == [302, 302, 302]
            assert str(resp.history[0].url) == srv.url("/redirect/3")
            assert str(resp.url) == srv.url("/redirect/0")

        async with HTTPClient(max_redirects=2) as client:
            with pytest.raises(asyncnet.TooManyRedirects) as info:
                await client.get(srv.url("/redirect/5"))
            assert len(info.value.history) == 3
            resp = await client.get(srv.url("/redirect/5"), follow_redirects=False)
            assert resp.status == 302
            assert resp.headers["location"] == "/redirect/4"


@pytest.mark.parametrize(
    ("status", "method", "expect_method", "expect_body"),
    [
        (301, "POST", "GET", ""),
        (302, "POST", "GET", ""),
        (303, "POST", "GET", ""),
        (303, "PUT", "GET", ""),
        (307, "POST", "POST", "data"),
        (308, "PUT", "PUT", "data"),
        (302, "PUT", "PUT", "data"),
    ],
)
async def test_redirect_method_and_body_rules(
    status: int, method: str, expect_method: str, expect_body: str
) -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            url = srv.url(f"/redirect-to?url=/echo&status={status}")
            resp = await client.request(method, url, body=b"data")
            doc = await resp.json()
    assert doc["method"] == expect_method
    assert doc["body"] == expect_body
    names = {name.lower() for name, _ in doc["headers"]}
    if not expect_body:
        assert "content-length" not in names or expect_method != "GET"


async def test_redirect_with_one_shot_body_is_refused() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            with pytest.raises(asyncnet.BodyNotReplayable, match=r"307 redirect .* one-shot"):
                await client.post(
                    srv.url("/redirect-to?url=/echo&status=307"), body=_agen([b"a", b"b"])
                )


async def test_credentials_dropped_on_origin_change() -> None:
    with HTTPServer() as target, HTTPServer() as origin:
        async with HTTPClient() as client:
            other = target.url("/echo")
            resp = await client.get(
                origin.url(f"/redirect-to?url={other}"),
                headers={"Authorization": "secret", "Cookie": "c=1", "X-Keep": "1"},
            )
            names = {name.lower() for name, _ in (await resp.json())["headers"]}
            assert "authorization" not in names
            assert "cookie" not in names
            assert "x-keep" in names
            # Same origin keeps them.
            resp = await client.get(
                origin.url("/redirect-to?url=/echo"), headers={"Authorization": "secret"}
            )
            names = {name.lower() for name, _ in (await resp.json())["headers"]}
            assert "authorization" in names


async def test_redirect_to_other_scheme_is_an_error() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            with pytest.raises(asyncnet.RemoteProtocolError, match="'ftp' URL is not followed"):
                await client.get(srv.url("/redirect-to?url=ftp://example.com/x"))


# -- TLS and IPv6 ------------------------------------------------------------------


async def test_tls_with_custom_context() -> None:
    with HTTPServer(ssl=server_ssl_context()) as srv:
        async with HTTPClient(ssl=client_ssl_context()) as client:
            resp = await client.get(srv.url("/bytes/50000"))
            assert resp.content == pattern(50000)
            resp = await client.get(srv.url("/bytes/10", host="localhost"))
            assert resp.content == pattern(10)


async def test_tls_verification_failure_is_a_connect_error() -> None:
    import ssl

    with HTTPServer(ssl=server_ssl_context()) as srv:
        async with HTTPClient() as client:
            with pytest.raises(asyncnet.ConnectError) as info:
                await client.get(srv.url("/bytes/10"))
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    with HTTPServer(ssl=server_ssl_context("wrong-host")) as srv:
        async with HTTPClient(ssl=client_ssl_context()) as client:
            with pytest.raises(asyncnet.ConnectError) as info:
                await client.get(srv.url("/bytes/10"))
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_ipv6_loopback() -> None:
    with HTTPServer(host="::1") as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/bytes/10"))
            assert resp.content == pattern(10)


async def test_closed_client_refuses_requests() -> None:
    client = HTTPClient()
    await client.aclose()
    with pytest.raises(asyncnet.ConnectionClosed, match=r"^the client is closed$"):
        await client.get("http://127.0.0.1:1/")


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match=r"^read must be > 0 seconds"):
        Timeout(read=-1)
    with pytest.raises(ValueError, match=r"^max_connections must be"):
        Limits(max_connections=0)
    with pytest.raises(ValueError, match=r"^max_redirects must be"):
        HTTPClient(max_redirects=-1)
    assert Timeout.coerce(5) == Timeout(5, 5, 5, 5, None)
    assert Timeout.coerce(None).read is None


async def test_tls_handshake_that_never_finishes_is_a_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # plain TCP: never answers the ClientHello

    async with (
        RawServer(silent) as srv,
        HTTPClient(ssl=client_ssl_context(), timeout=Timeout(connect=0.1)) as client,
    ):
        with pytest.raises(asyncnet.ConnectTimeout):
            await client.get(f"https://127.0.0.1:{srv.port}/")
        # The slot is given back on a later loop turn.
        assert await _eventually(lambda: client.statistics().connections_open == 0), (
            client.statistics()
        )


async def test_ssl_false_means_encrypted_but_unverified() -> None:
    with HTTPServer(ssl=server_ssl_context("self-signed")) as srv:
        async with HTTPClient(ssl=False) as client:
            resp = await client.get(srv.url("/bytes/10"))
            assert resp.content == pattern(10)
        async with HTTPClient() as client:
            with pytest.raises(
                asyncnet.ConnectError, match=r"^TLS certificate of \S+ failed verification"
            ):
                await client.get(srv.url("/bytes/10"))


async def test_large_redirect_body_closes_the_connection() -> None:
    big = response(302, b"r" * (1024 * 1024), [("Location", "/next")])
    async with RawServer(responses=[big, OK]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url())
        assert resp.content == b"ok"
        assert [r.status for r in resp.history] == [302]
    assert srv.connections == 2


async def test_small_redirect_body_is_drained_and_connection_reused() -> None:
    small = response(302, b"moved", [("Location", "/next"), ("Content-Encoding", "gzip")])
    async with RawServer(responses=[small, OK]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url())
        assert resp.content == b"ok"
    # "moved" is not gzip: the redirect body was dropped without decoding it.
    assert srv.connections == 1
    assert srv.request_log[1].startswith(b"GET /next HTTP/1.1\r\n")


async def test_reset_during_upload_is_a_write_error() -> None:
    async def reset_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(1)
        _reset(writer)

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100_000):
            await asyncio.sleep(0)
            yield b"p" * 65536

    async with RawServer(reset_after_head) as srv, HTTPClient() as client:
        with pytest.raises(asyncnet.WriteError) as info:
            await client.post(srv.url(), body=endless())
        assert isinstance(info.value, ConnectionError)


async def test_shorter_read_timeout_on_a_reused_connection() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        await srv.send(writer, OK)
        await srv.read_request(reader, writer)
        await asyncio.Event().wait()  # never answers the second request

    async with RawServer(once) as srv, HTTPClient(timeout=Timeout(read=30)) as client:
        # The first request leaves the connection's timer armed 30 s ahead.
        assert (await client.get(srv.url())).content == b"ok"
        with pytest.raises(asyncnet.ReadTimeout):
            await client.get(srv.url(), timeout=Timeout(read=0.05))
    assert srv.connections == 1


async def test_aiter_bytes_with_a_slow_consumer_uses_bounded_memory() -> None:
    """32 MiB through aiter_bytes(); the consumer stalls until the server is blocked."""
    size = 32 * 1024 * 1024
    limit = 256 * 1024
    max_read = 256 * 1024  # the most a selector transport reads at once
    body = pattern(size)
    server_blocked = asyncio.Event()
    server_done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        view = memoryview(body)
        for start in range(0, size, 64 * 1024):
            writer.write(view[start : start + 64 * 1024])
            if writer.transport.get_write_buffer_size() > 0:
                server_blocked.set()  # kernel buffers full: the client stopped reading
            await writer.drain()
            # The server clears its own state: were the consumer to clear it, it
            # could miss the one signal of a server already stuck in drain().
            server_blocked.clear()
        server_done.set()
        await reader.read()

    async def stall() -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in (server_blocked, server_done)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)

    async with RawServer(handler) as srv, HTTPClient(body_buffer=limit) as client:
        digest = bytearray()
        async with client.stream("GET", srv.url()) as resp:
            count = 0
            async for chunk in resp.aiter_bytes():
                if count % 64 == 0:
                    await stall()
                count += 1
                digest += chunk
        assert bytes(digest) == body
        stats = client.statistics()
        assert stats.read_pauses >= 1
        assert stats.peak_body_buffered <= limit + max_read, stats.peak_body_buffered
        assert stats.connections_idle == 1  # read to the end: reusable


async def test_closing_the_client_fails_requests_in_flight() -> None:
    async with RawServer(_never_answer) as srv:
        client = HTTPClient()
        pending = asyncio.ensure_future(client.get(srv.url()))
        await srv.wait_until(lambda s: s.connections == 1)
        await client.aclose()
        with pytest.raises(asyncnet.ConnectionClosed, match=r"^the client was closed"):
            await pending
        with pytest.raises(asyncnet.ConnectionClosed, match=r"^the client is closed$"):
            await client.get(srv.url())


# -- hostile names and charsets ------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("a" * 64 + ".localhost", "label is longer than 63 octets"),
        (".".join(["b" * 60] * 5) + ".localhost", "host name is longer than 253 octets"),
        ("\u00fc" * 64 + ".localhost", "cannot be IDNA-encoded"),
    ],
)
async def test_a_host_dns_cannot_carry_is_invalid_url_before_any_connection(
    host: str, rule: str
) -> None:
    # It used to reach getaddrinfo and fail there with a bare UnicodeError.
    async with HTTPClient() as client:
        with pytest.raises(asyncnet.InvalidURL, match=rule):
            await client.get(f"http://{host}:1/")
        assert client.statistics().connections_opened == 0


# Bytes that are UTF-8 ("café") followed by one byte that is not.
_CAFE = b"caf\xc3\xa9 \xff"


@pytest.mark.parametrize(
    "charset",
    [
        # Python calls these text encodings, yet they cannot decode a body:
        # they raised UnicodeError, or read backslashes as escapes.
        "idna", "undefined", "punycode", "unicode_escape", "raw-unicode-escape",
        # Bytes-to-bytes codecs, which bytes.decode refuses with LookupError.
        "rot13", "hex", "base64", "zlib", "uu", "bz2", "quopri",
        # No codec at all.
        "no-such-charset", "x" * 500,
    ],
)
async def test_text_ignores_a_charset_that_is_no_text_encoding(charset: str) -> None:
    reply = response(200, _CAFE + b"\\u0041", [("Content-Type", f"text/plain; charset={charset}")])
    async with RawServer(responses=[reply]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url())
        assert await resp.text() == "caf\u00e9 \ufffd\\u0041"
        assert resp.encoding == charset  # reported as declared, just not used


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain; charset=ISO-8859-1", b"caf\xe9", "caf\u00e9"),
        ('text/html; charset="windows-1252"', b"\x80 5", "\u20ac 5"),
        ("text/plain;charset=Shift_JIS", "\u65e5\u672c".encode("shift_jis"), "\u65e5\u672c"),
        ("text/plain; charset=utf-16-le", "h\u00e9".encode("utf-16-le"), "h\u00e9"),
        ("text/plain; charset=us-ascii", b"a\xffb", "a\ufffdb"),
        ("text/plain", _CAFE, "caf\u00e9 \ufffd"),
    ],
)
async def test_text_honours_a_real_charset(content_type: str, body: bytes, text: str) -> None:
    reply = response(200, body, [("Content-Type", content_type)])
    async with RawServer(responses=[reply]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url())
        assert await resp.text() == text


async def test_text_with_a_callers_encoding_that_is_no_text_encoding_falls_back() -> None:
    reply = response(200, _CAFE, [("Content-Type", "text/plain; charset=latin-1")])
    async with RawServer(responses=[reply, reply], repeat=True) as srv, HTTPClient() as client:
        assert await (await client.get(srv.url())).text("utf-8") == "caf\u00e9 \ufffd"
        assert await (await client.get(srv.url())).text("idna") == "caf\u00e9 \ufffd"


async def test_made_up_charsets_do_not_grow_the_codec_cache() -> None:
    # codecs.lookup() remembers every unknown name it is asked for in the
    # encodings package's cache, for ever; a server sending a new made-up
    # charset on every response would grow it without bound.
    import encodings

    cache = getattr(encodings, "_cache", None)
    if not isinstance(cache, dict):
        pytest.skip("this Python's encodings package keeps no lookup cache")
    replies = [
        response(200, _CAFE, [("Content-Type", f"text/plain; charset=made-up-{i}")])
        for i in range(200)
    ]
    async with RawServer(responses=replies) as srv, HTTPClient() as client:
        for _ in replies:
            assert await (await client.get(srv.url())).text() == "caf\u00e9 \ufffd"
        assert srv.connections == 1
    # (Real codecs used for the first time may be added meanwhile.)
    assert [name for name in cache if "made" in name] == []
