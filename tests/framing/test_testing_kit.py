"""memory_connection_pair and check_two_way_stream, in memory and over real TCP and TLS."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import asyncnet
from asyncnet import Connection, LengthPrefixed, Lines, Raw
from asyncnet._connection import FRAME_COST
from asyncnet.testing import check_two_way_stream, memory_connection_pair
from tests.support.servers import client_ssl_context, server_ssl_context

FRAMINGS = [(Lines(), [b"one", b"", b"three"]),
            (LengthPrefixed(), [b"\x00" * 1000, b"", b"x"]),
            (Raw(), [b"raw bytes", b"more"])]


@pytest.mark.parametrize(("framing", "frames"), FRAMINGS, ids=["lines", "length", "raw"])
async def test_memory_pair_passes_the_stream_check(
    framing: asyncnet.Framing[bytes], frames: list[bytes]
) -> None:
    async def make() -> tuple[Connection[Any], Connection[Any]]:
        return memory_connection_pair(framing, high_water=4096, receive_limit=4096)

    await check_two_way_stream(make, frames)


class TCPPairs:
    """Pairs of (client, server-handler) connections over loopback TCP."""

    def __init__(self, framing: asyncnet.Framing[Any], ssl: bool = False) -> None:
        self.framing = framing
        self.ssl = ssl
        self.accepted: asyncio.Queue[Connection[Any]] = asyncio.Queue()
        self.server: asyncnet.Server | None = None

    async def handler(self, conn: Connection[Any]) -> None:
        await self.accepted.put(conn)
        await conn.wait_closed()

    async def __aenter__(self) -> TCPPairs:
        self.server = await asyncnet.start_server(
            self.handler, framing=self.framing, receive_limit=8192, high_water=8192,
            ssl=server_ssl_context() if self.ssl else None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.shutdown(0)

    async def make(self) -> tuple[Connection[Any], Connection[Any]]:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        client = await asyncnet.open_connection(
            "127.0.0.1", port, framing=self.framing, receive_limit=8192, high_water=8192,
            ssl=client_ssl_context() if self.ssl else None,
            server_hostname="localhost" if self.ssl else None)
        server_end = await self.accepted.get()
        # Small kernel buffers, as trio's clogged stream maker does: the
        # clogged-peer scenario then pauses after kilobytes, not megabytes.
        for conn in (client, server_end):
            sock = conn.extra("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return client, server_end


@pytest.mark.parametrize(("framing", "frames"), FRAMINGS, ids=["lines", "length", "raw"])
async def test_tcp_pairs_pass_the_stream_check(
    framing: asyncnet.Framing[bytes], frames: list[bytes]
) -> None:
    async with TCPPairs(framing) as pairs:
        await check_two_way_stream(pairs.make, frames)


@pytest.mark.parametrize(("framing", "frames"), FRAMINGS, ids=["lines", "length", "raw"])
async def test_tls_pairs_pass_the_stream_check(
    framing: asyncnet.Framing[bytes], frames: list[bytes]
) -> None:
    async with TCPPairs(framing, ssl=True) as pairs:
        await check_two_way_stream(pairs.make, frames)


async def test_memory_pair_pauses_the_writer_when_the_reader_stops() -> None:
    a, b = memory_connection_pair(Lines(), high_water=1000, receive_limit=1000)
    sender = asyncio.create_task(_send(a, 5000))
    for _ in range(1000):
        if a.statistics().write_buffer_size > 1000 and b.statistics().reading_paused:
            break
        await asyncio.sleep(0)
    assert not sender.done()  # waiting in drain() for a reader that reads nothing
    assert b.statistics().reading_paused
    # One delivery (64 KiB at most, here the writer's ~1 KB) past the limit,
    # each frame counted with FRAME_COST.
    stats = b.statistics()
    assert stats.queued_bytes <= 1000 + 1100 + stats.queued_frames * FRAME_COST
    got = []
    async for frame in b:
        got.append(frame)
        if len(got) == 5000:
            break
    await sender
    assert got == [b"%d" % i for i in range(5000)]
    await a.aclose()
    await b.aclose()


async def _send(conn: Connection[bytes], n: int) -> None:
    for i in range(n):
        await conn.send(b"%d" % i)


class DropsFrames(asyncnet.Lines):
    """A broken framing for the check to catch: every third frame is lost."""

    def decoder(self) -> asyncnet.FrameDecoder[bytes]:
        inner = super().decoder()
        count = [0]

        class Decoder:
            buffered = property(lambda self: inner.buffered)

            def feed(self, data: bytes) -> list[bytes]:
                out = []
                for frame in inner.feed(data):
                    count[0] += 1
                    if count[0] % 3:
                        out.append(frame)
                return out

            def feed_eof(self) -> None:
                inner.feed_eof()

        return Decoder()


async def test_the_stream_check_catches_a_framing_that_loses_frames() -> None:
    async def make() -> tuple[Connection[Any], Connection[Any]]:
        return memory_connection_pair(DropsFrames())

    with pytest.raises(AssertionError, match="both directions"):
        await check_two_way_stream(make, [b"a", b"b", b"c"])
