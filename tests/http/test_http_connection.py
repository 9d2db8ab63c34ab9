"""HTTPConnection: backpressure on slow consumers, error mapping, unsolicited data.

The streaming tests use real loopback sockets; the exact order of
``pause_reading``/``resume_reading`` calls is checked with a recording
transport, since a real socket cannot report it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import asyncnet
from asyncnet._http._connection import HTTPConnection
from tests.support.servers import RawServer, pattern
from tests.support.transports import RecordingTransport

MiB = 1024 * 1024
# The most a selector transport reads from a socket in one data_received call.
MAX_READ = 256 * 1024


async def _open(srv: RawServer, **kwargs: Any) -> HTTPConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: HTTPConnection(**kwargs), "127.0.0.1", srv.port
    )
    return conn


def _begin(conn: HTTPConnection, method: str = "GET") -> None:
    conn.begin(method, read_timeout=None, write_timeout=None, deadline=None)
    conn.write_head(f"{method} / HTTP/1.1\r\nHost: test\r\n\r\n".encode())


async def test_slow_consumer_keeps_the_buffer_bounded() -> None:
    """32 MiB through a consumer that stops until the server is blocked, again and again."""
    size = 32 * MiB
    limit = 256 * 1024
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
                # The kernel's buffers are full: the client has stopped reading.
                server_blocked.set()
            await writer.drain()
            # The server clears its own state: were the consumer to clear it, it
            # could miss the one signal of a server already stuck in drain().
            server_blocked.clear()
        server_done.set()
        await reader.read()

    async with RawServer(handler) as srv:
        conn = await _open(srv, body_buffer=limit)
        try:
            _begin(conn)
            head = await conn.receive_head()
            assert head.status == 200
            received = bytearray()
            pieces = 0
            while True:
                if pieces % 64 == 0:
                    # Stop consuming until the server cannot send any more.
                    blocked = asyncio.ensure_future(server_blocked.wait())
                    done = asyncio.ensure_future(server_done.wait())
                    await asyncio.wait([blocked, done], return_when=asyncio.FIRST_COMPLETED)
                    blocked.cancel()
                    done.cancel()
                    await asyncio.gather(blocked, done, return_exceptions=True)
                chunk = await conn.read_chunk()
                if not chunk:
                    break
                pieces += 1
                received += chunk
            assert bytes(received) == body
            assert conn.read_pauses >= 1
            assert conn.peak_buffered <= limit + MAX_READ, conn.peak_buffered
        finally:
            conn.abort()




async def test_pause_and_resume_alternate_and_never_wait_while_paused() -> None:
    conn = HTTPConnection(body_buffer=1000)
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 3400\r\n\r\n")
    for _ in range(4):
        conn.data_received(b"a" * 400)  # 1600 buffered: paused after the 3rd
    assert transport.calls == ["pause"]
    assert await conn.read_chunk() == b"a" * 400  # 1200 left: still above the low mark
    assert await conn.read_chunk() == b"a" * 400
    assert await conn.read_chunk() == b"a" * 400  # 400 left: still > 250
    assert transport.calls == ["pause"]
    assert await conn.read_chunk() == b"a" * 400  # 0 left
    assert transport.calls == ["pause", "resume"]
    for _ in range(3):
        conn.data_received(b"b" * 400)
    assert transport.calls == ["pause", "resume", "pause"]
    for _ in range(2):
        await conn.read_chunk()
    # 400 buffered (> low), still paused; emptying the buffer resumes reading
    # before anyone waits for more data.
    assert transport.calls[-1] == "pause"
    await conn.read_chunk()
    assert transport.calls == ["pause", "resume", "pause", "resume"]
    reader = asyncio.ensure_future(conn.read_chunk())
    await asyncio.sleep(0)
    assert transport.calls == ["pause", "resume", "pause", "resume"]
    conn.data_received(b"c" * 600)
    assert await reader == b"c" * 600
    assert await conn.read_chunk() == b""
    conn.release()
    conn.connection_lost(None)


async def test_read_all_does_not_pause() -> None:
    conn = HTTPConnection(body_buffer=100)
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.write_head(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    reader = asyncio.ensure_future(conn.receive_head())
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    await reader
    whole = asyncio.ensure_future(conn.read_all())
    await asyncio.sleep(0)
    for _ in range(10):
        conn.data_received(b"z" * 100)
    assert await whole == b"z" * 1000
    assert "pause" not in transport.calls
    released: list[HTTPConnection] = []
    conn.on_release = released.append
    conn.release()
    assert released == [conn]
    assert transport.calls == []  # handed back, not closed
    conn.connection_lost(None)


async def test_bytes_while_idle_abort_the_connection() -> None:
    conn = HTTPConnection()
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    assert transport.calls == ["abort"]
    assert not conn.is_reusable()
    conn.connection_lost(None)


async def test_connection_lost_mid_body_is_a_read_error() -> None:
    conn = HTTPConnection()
    conn.connection_made(RecordingTransport())
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert await conn.read_chunk() == b"abc"
    reset = ConnectionResetError(104, "reset")
    conn.connection_lost(reset)
    with pytest.raises(asyncnet.ReadError) as info:
        await conn.read_chunk()
    assert info.value.__cause__ is reset


async def test_clean_eof_mid_body_is_a_protocol_error_with_counts() -> None:
    conn = HTTPConnection()
    conn.connection_made(RecordingTransport())
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn.connection_lost(None)
    assert await conn.read_chunk() == b"abc"
    with pytest.raises(asyncnet.RemoteProtocolError, match="3 of 10"):
        await conn.read_chunk()


async def test_body_until_close_ends_at_eof() -> None:
    conn = HTTPConnection()
    conn.connection_made(RecordingTransport())
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nabc")
    conn.data_received(b"def")
    conn.connection_lost(None)
    assert await conn.read_all() == b"abcdef"


async def test_malformed_response_fails_and_aborts() -> None:
    conn = HTTPConnection()
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    with pytest.raises(
        asyncnet.RemoteProtocolError, match="conflicting Content-Length values 1 and 2"
    ):
        await conn.receive_head()
    assert transport.calls == ["abort"]
    conn.release()
    conn.connection_lost(None)


async def test_read_timeout_fires_only_without_progress() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        await reader.read()

    async with RawServer(drip) as srv:
        conn = await _open(srv)
        try:
            conn.begin("GET", read_timeout=0.05, write_timeout=None, deadline=None)
            conn.write_head(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await conn.receive_head()
            with pytest.raises(asyncnet.ReadTimeout):
                await conn.read_all()
        finally:
            conn.abort()


async def test_bytes_after_a_complete_response_keep_it_readable_but_drop_the_connection() -> None:
    conn = HTTPConnection()
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    conn.data_received(b"junk")
    assert transport.calls == ["abort"]
    conn.connection_lost(None)
    assert await conn.read_all() == b"abc"
    released: list[HTTPConnection] = []
    conn.on_release = released.append
    conn.release()
    assert released == []
