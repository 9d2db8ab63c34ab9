"""Expect: 100-continue over loopback: body after 100, after the timeout, or never."""

from __future__ import annotations

import asyncio
import io

import pytest

from asyncnet import DigestAuth, HTTPClient
from tests.support.servers import RawServer, response


def _head_fields(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}


async def test_the_body_follows_100_continue() -> None:
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            fields = _head_fields(head[:-4])
            assert fields["expect"] == "100-continue"
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            bodies.append(await reader.readexactly(int(fields["content-length"])))
            writer.write(response(200, b"stored"))
            await writer.drain()

    async with RawServer(handler) as srv, HTTPClient(expect_continue=True) as client:
        resp = await client.put(srv.url("/a"), body=b"x" * 1000)
        assert resp.status == 200 and resp.content == b"stored"
        resp = await client.put(srv.url("/b"), files={"f": ("f.txt", io.BytesIO(b"abc"))})
        assert resp.status == 200
    assert bodies[0] == b"x" * 1000 and b"abc" in bodies[1]
    assert srv.connections == 1


async def test_a_final_response_instead_of_100_is_returned_without_the_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response(413, b"too big for me"))
        await writer.drain()
        await reader.read()  # whatever else the client sends, until it closes

    async with RawServer(handler) as srv, HTTPClient() as client:
        resp = await client.post(srv.url("/"), body=b"B" * 100_000, expect_continue=True)
        assert resp.status == 413 and resp.content == b"too big for me"
        # The server may still expect the announced body: the connection is closed.
        await srv.wait_until(lambda s: s.active_connections == 0)
        assert client.statistics().connections_open == 0
    assert b"B" not in bytes(srv.received[0])


async def test_the_body_is_sent_when_no_100_comes_in_time() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(int(_head_fields(head[:-4])["content-length"]))
        writer.write(response(200, body))
        await writer.drain()

    async with RawServer(handler) as srv, HTTPClient(continue_timeout=0.01) as client:
        resp = await client.post(srv.url("/"), body=b"late body", expect_continue=True)
        assert resp.content == b"late body"


async def test_a_size_threshold_picks_the_requests_that_expect() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            heads.append(head)
            fields = _head_fields(head[:-4])
            if "expect" in fields:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await reader.readexactly(int(fields.get("content-length", "0")))
            writer.write(response(200, b"ok"))
            await writer.drain()

    async with RawServer(handler) as srv, HTTPClient(expect_continue=1000) as client:
        await client.post(srv.url("/"), body=b"small")
        await client.post(srv.url("/"), body=b"y" * 1000)
        await client.get(srv.url("/"))
    assert [b"expect: 100-continue" in h.lower() for h in heads] == [False, True, False]


async def test_digest_401_without_100_is_answered_with_the_body() -> None:
    sent: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"authorization" not in head.lower()
        writer.write(response(401, b"", [
            ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth"')]))
        await writer.drain()
        await reader.read()

    async def second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Authorization: Digest " in head
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        sent.append(await reader.readexactly(int(_head_fields(head[:-4])["content-length"])))
        writer.write(response(200, b"ok"))
        await writer.drain()

    handlers = iter([handler, second])

    async def dispatch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await next(handlers)(reader, writer)

    async with RawServer(dispatch) as srv, HTTPClient(auth=DigestAuth("u", "p")) as client:
        resp = await client.post(srv.url("/"), body=b"the body", expect_continue=True)
        assert resp.status == 200
    assert sent == [b"the body"]
    assert b"the body" not in bytes(srv.received[0])
    assert srv.connections == 2


@pytest.mark.parametrize("bad", [-1, "yes", 1.5])
async def test_bad_settings_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^expect_continue must be a bool or a size >= 0"):
        HTTPClient(expect_continue=bad)  # type: ignore[arg-type]
