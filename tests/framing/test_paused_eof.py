"""The peer's EOF while reading is paused, and a handler failing on frames that waited.

asyncio's TLS transport reports the peer's EOF (its close_notify) even while
the protocol has paused reading, and so does the testing kit's memory
transport. Frames of the last read may still wait then: the callback
style's backlog (left when the peer stopped reading our replies) or the
await style's undecoded rest of a read (left when the queue filled). They
are all handled before the end of the stream, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from typing import Any

import pytest

import asyncnet
from asyncnet import Connection, FramedProtocol, Lines
from asyncnet.testing import memory_connection_pair
from tests.support.servers import client_ssl_context, server_ssl_context
from tests.support.waiting import wait_until


async def send_over_tls_then_close(port: int, data: bytes) -> socket.socket:
    """Send ``data`` and the TLS close_notify in one TCP write; return the socket (to read).

    A hand-driven TLS client (``ssl.MemoryBIO``), so that the requests and the
    close_notify reach the server in the same read.
    """
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ssl_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    for _ in range(100):
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            await loop.sock_sendall(sock, outgoing.read())
            incoming.write(await loop.sock_recv(sock, 65536))
    else:
        raise AssertionError("no TLS handshake")
    await loop.sock_sendall(sock, outgoing.read())  # the handshake's last flight
    tls.write(data)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.unwrap()  # close_notify sent; the server's own comes later
    await loop.sock_sendall(sock, outgoing.read())
    return sock


async def read_to_the_end(sock: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    total = 0
    while data := await loop.sock_recv(sock, 1 << 20):
        total += len(data)
    return total


class BigReplies(FramedProtocol[bytes]):
    """Answers each line with 1 MiB, far past its high water; records what it saw."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(Lines(), high_water=16 * 1024)
        self.events = events

    def frame_received(self, frame: bytes) -> None:
        self.events.append(frame.decode())
        self.send_nowait(b"x" * (1 << 20))

    def end_received(self) -> bool:
        self.events.append("END")
        return False


# CPython gh-115514: from 3.12.0 to 3.12.8 and 3.13.0 to 3.13.1, a selector
# transport that asyncio's TLS layer closes while it still has bytes to write
# registers a writer whose callback is None, and the rest is never written
# (the replies here outlast the close that follows the peer's EOF).
_WRITES_AFTER_CLOSE_LOST = (3, 12) <= sys.version_info < (3, 12, 9) or (
    (3, 13) <= sys.version_info < (3, 13, 2)
)


@pytest.mark.skipif(
    _WRITES_AFTER_CLOSE_LOST, reason="CPython gh-115514: writes after a TLS close are lost"
)
async def test_callback_style_handles_the_waiting_frames_before_a_tls_peers_eof() -> None:
    events: list[str] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BigReplies(events), "127.0.0.1", 0, ssl=server_ssl_context()
    )
    try:
        port = server.sockets[0].getsockname()[1]
        sock = await send_over_tls_then_close(port, b"".join(b"r%d\n" % i for i in range(10)))
        try:
            await wait_until(lambda: "END" in events, "the end of the stream")
            assert events == [f"r{i}" for i in range(10)] + ["END"]
            await read_to_the_end(sock)
        finally:
            sock.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_await_style_decodes_the_rest_of_a_read_before_a_tls_peers_eof() -> None:
    lines = [b"%038d" % i for i in range(1000)]  # 39 bytes on the wire: steps cut frames
    release = asyncio.Event()
    outcome: list[Any] = []

    conns: list[Connection[bytes]] = []

    async def slow(conn: Connection[bytes]) -> None:
        conns.append(conn)
        await release.wait()
        got = [frame async for frame in conn]  # to the end of the stream: no error
        outcome.extend([got, conn.statistics().bytes_received])

    async with asyncnet.start_server(
        slow, framing=Lines(), receive_limit=4096, ssl=server_ssl_context()
    ) as server:
        port = server.sockets[0].getsockname()[1]
        sock = await send_over_tls_then_close(port, b"".join(line + b"\n" for line in lines))
        try:
            # The requests and the EOF come in one read, which fills the queue.
            await wait_until(
                lambda: bool(conns) and conns[0].statistics().reading_paused, "reading paused"
            )
            release.set()
            await wait_until(lambda: bool(outcome), "the handler's end")
        finally:
            sock.close()
    assert outcome == [lines, 39 * 1000]


async def test_memory_pair_decodes_the_rest_of_a_read_before_the_eof() -> None:
    a, b = memory_connection_pair(Lines(), receive_limit=4096)
    lines = [b"%063d" % i for i in range(1000)]
    # One write of 64 KB: one read for b, which fills its queue at once.
    a._protocol.transport.write(b"".join(line + b"\n" for line in lines))  # type: ignore[attr-defined]
    a.send_eof()
    await wait_until(lambda: b.statistics().reading_paused, "b's queue full")
    await wait_until(lambda: a.statistics().write_buffer_size == 0, "all delivered, EOF too")
    got = [frame async for frame in b]
    assert got == lines
    assert b.statistics().bytes_received == 64 * 1000
    await a.aclose()
    await b.aclose()


async def test_a_frame_handler_failing_on_a_waiting_frame_aborts_the_connection() -> None:
    # Without frames waiting, asyncio's transport reports an exception out of
    # data_received and closes; a frame handled later, once the peer read
    # again, must end the same way rather than leave reading paused for good.
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    events: list[str] = []

    class Fails(BigReplies):
        def frame_received(self, frame: bytes) -> None:
            if frame == b"boom":
                self.events.append("boom")
                raise RuntimeError("handler bug")
            self.events.append(frame.decode())
            self.send_nowait(b"x" * (8 << 20))  # more than loopback's kernel buffers take

    server = await loop.create_server(lambda: Fails(events), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"a\nb\nboom\nc\n")
        await wait_until(lambda: "a" in events, "the first request handled")
        assert "boom" not in events  # waiting: the peer has not read the replies
        while await reader.read(1 << 20):  # read until the server aborts
            pass
        writer.close()
        await writer.wait_closed()
        assert events[-1] == "boom" and "c" not in events
        (context,) = reported
        assert isinstance(context["exception"], RuntimeError)
    finally:
        loop.set_exception_handler(previous)
        server.close()
        await server.wait_closed()
