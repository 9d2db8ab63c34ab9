"""aiter_lines, aiter_text, aiter_events and max_body over loopback."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from asyncnet import BodyTooLarge, HTTPClient, RemoteProtocolError, ServerSentEvent
from tests.support.servers import HTTPServer, RawServer


def chunked(*pieces: bytes, headers: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{headers}\r\n".encode()
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


async def test_aiter_lines_splits_lf_and_crlf_across_chunks() -> None:
    reply = chunked(b"first\r", b"\nsec", b"ond\nthird\r\n\xc3", b"\xa9 last")
    async with (
        RawServer(responses=[reply]) as srv,
        HTTPClient() as client,
        client.stream("GET", srv.url("/")) as resp,
    ):
        lines = [line async for line in resp.aiter_lines()]
    assert lines == ["first", "second", "third", "é last"]


async def test_a_line_over_max_line_raises_and_closes_the_connection() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:  # no newline, ever; ends when the client closes
            writer.write(b"1000\r\n" + b"x" * 4096 + b"\r\n")
            await writer.drain()

    async with RawServer(endless) as srv, HTTPClient() as client:
        async with client.stream("GET", srv.url("/")) as resp:
            with pytest.raises(RemoteProtocolError, match="max_line=10000"):
                async for _ in resp.aiter_lines(max_line=10_000):
                    pass
        await srv.wait_until(lambda s: s.active_connections == 0)


async def test_aiter_text_decodes_incrementally_with_the_charset() -> None:
    text = "naïve café — ünïcode ✓"
    body = text.encode("utf-16")
    pieces = [body[i : i + 3] for i in range(0, len(body), 3)]  # splits every character
    reply = chunked(*pieces, headers="Content-Type: text/plain; charset=utf-16\r\n")
    async with RawServer(responses=[reply, reply]) as srv, HTTPClient() as client:
        async with client.stream("GET", srv.url("/")) as resp:
            assert "".join([t async for t in resp.aiter_text()]) == text
        async with client.stream("GET", srv.url("/")) as resp:
            garbled = "".join([t async for t in resp.aiter_text(encoding="latin-1")])
            assert garbled == body.decode("latin-1")


SSE = (
    b": hello\n\nretry: 2500\nevent: greeting\ndata: hi\ndata: there\nid: 1\n\n"
    b"data: {\"n\": 2}\r\n\r\ndata: no end"
)


async def test_aiter_events_reads_server_sent_events_in_odd_pieces() -> None:
    reply = chunked(*[SSE[i : i + 7] for i in range(0, len(SSE), 7)],
                    headers="Content-Type: text/event-stream\r\n")
    async with (
        RawServer(responses=[reply]) as srv,
        HTTPClient() as client,
        client.stream("GET", srv.url("/events")) as resp,
    ):
        events = [event async for event in resp.aiter_events()]
    assert events == [
        ServerSentEvent("greeting", "hi\nthere", "1", 2500),
        ServerSentEvent("message", '{"n": 2}', "1", None),
    ]


async def test_an_event_over_the_limit_raises() -> None:
    reply = chunked(b"data: " + b"x" * 5000 + b"\n\n")
    async with (
        RawServer(responses=[reply]) as srv,
        HTTPClient() as client,
        client.stream("GET", srv.url("/")) as resp,
    ):
        with pytest.raises(RemoteProtocolError, match="larger than 1000 bytes"):
            async for _ in resp.aiter_events(max_event_size=1000):
                pass


async def test_a_content_length_over_max_body_fails_before_reading() -> None:
    async def head_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        # The body never comes: reading it would hang until the read timeout.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000001\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(head_only) as srv, HTTPClient(max_body=1_000_000) as client:
        with pytest.raises(BodyTooLarge, match="max_body=1000000") as info:
            await client.get(srv.url("/"))
        assert info.value.limit == 1_000_000
        with pytest.raises(BodyTooLarge, match="max_body=1000000 bytes"):
            async with client.stream("GET", srv.url("/")):
                pass
        await srv.wait_until(lambda s: s.active_connections == 0)


async def test_a_body_that_grows_past_max_body_fails_and_closes_the_connection() -> None:
    async def growing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:  # ends when the client closes
            writer.write(b"1000\r\n" + b"x" * 4096 + b"\r\n")
            await writer.drain()

    async with RawServer(growing) as srv, HTTPClient() as client:
        with pytest.raises(BodyTooLarge, match="max_body=100000 bytes"):
            await client.get(srv.url("/"), max_body=100_000)
        await srv.wait_until(lambda s: s.active_connections == 0)
        async with client.stream("GET", srv.url("/"), max_body=50_000) as resp:
            received = 0
            with pytest.raises(BodyTooLarge, match="max_body=50000 bytes"):
                async for piece in resp.aiter_bytes():
                    received += len(piece)
            assert received <= 50_000
        await srv.wait_until(lambda s: s.active_connections == 0)


async def test_max_body_counts_decompressed_bytes() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            # /gzip/N: N bytes that compress to far fewer.
            assert len(gzip.compress(b"x" * 200_000)) < 100_000
            with pytest.raises(BodyTooLarge, match="max_body=100000 bytes"):
                await client.get(srv.url("/gzip/200000"), max_body=100_000)
            async with client.stream("GET", srv.url("/gzip/200000"), max_body=100_000) as resp:
                with pytest.raises(BodyTooLarge, match="max_body=100000 bytes"):
                    async for _ in resp.aiter_bytes():
                        pass
            # Under the cap: read whole and the connection is kept.
            resp = await client.get(srv.url("/gzip/200000"), max_body=200_000)
            assert len(resp.content) == 200_000
            resp = await client.get(srv.url("/bytes/10"), max_body=10)
            assert len(resp.content) == 10
            assert client.statistics().connections_idle == 1


async def test_max_body_allows_an_exact_fit_of_a_chunked_body() -> None:
    reply = chunked(b"a" * 500, b"b" * 500)
    async with RawServer(responses=[reply, reply], repeat=True) as srv, HTTPClient() as client:
        resp = await client.get(srv.url("/"), max_body=1000)
        assert resp.content == b"a" * 500 + b"b" * 500
        with pytest.raises(BodyTooLarge, match="max_body=999 bytes"):
            await client.get(srv.url("/"), max_body=999)


async def test_max_body_is_validated() -> None:
    async with HTTPClient() as client:
        for bad in (-1, 1.5, True, "10"):
            with pytest.raises(ValueError, match=r"^max_body must be an int >= 0 or None"):
                await client.get("http://127.0.0.1:1/", max_body=bad)  # type: ignore[arg-type]
