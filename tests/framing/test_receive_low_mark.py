"""The receive queue's water marks, over a real socket, exactly.

A :class:`~asyncnet.Connection` whose consumer falls behind pauses reading
once what it holds (``queued_bytes``, the frames queued, plus
``partial_bytes``, the frame under construction) is strictly above
``receive_limit``, and resumes when taking frames brings it to
``receive_low`` or below, not before; and it never stays paused with an
empty queue (the consumer would then wait for bytes that can never come).
What a frame counts beyond its wire bytes is measured first
(:func:`frame_overhead`), so the frames are sized to count exact amounts.

Each test runs on both ends a connection can be: the server's (a handler
that does not read, from :func:`asyncnet.start_server`) and the client's
(:func:`asyncnet.open_connection` against a plain asyncio server). The peer is
a plain asyncio stream that writes exactly the bytes the test chooses, and
the test waits for the connection's ``bytes_received`` to reach a known
count, so what each read held is known. Frames are taken with ``receive()``
while frames are queued, which returns without giving the loop a turn: no
read can land between two takes, so the state after each take is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import asyncnet
from asyncnet import Connection, ConnectionStatistics, Lines
from tests.support.waiting import wait_until

LIMIT = 1000
LOW = 250

Side = Callable[[], contextlib.AbstractAsyncContextManager[tuple[Connection[bytes], Any]]]


@contextlib.asynccontextmanager
async def server_end() -> AsyncIterator[tuple[Connection[bytes], asyncio.StreamWriter]]:
    """A server connection whose handler never reads, and a raw client writing to it."""
    conns: list[Connection[bytes]] = []
    accepted = asyncio.Event()
    release = asyncio.Event()

    async def stuck(conn: Connection[bytes]) -> None:
        conns.append(conn)
        accepted.set()
        await release.wait()

    async with asyncnet.start_server(
        stuck, framing=Lines(), receive_limit=LIMIT, receive_low=LOW
    ) as server:
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await accepted.wait()
            yield conns[0], writer
        finally:
            release.set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def client_end() -> AsyncIterator[tuple[Connection[bytes], asyncio.StreamWriter]]:
    """A client connection nobody reads from, and the raw server end writing to it."""
    writers: list[asyncio.StreamWriter] = []
    connected = asyncio.Event()
    finished = asyncio.Event()

    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        connected.set()
        try:
            await reader.read()  # until the client closes
        finally:
            writer.close()
            finished.set()

    server = await asyncio.start_server(keep, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection(
            "127.0.0.1", port, framing=Lines(), receive_limit=LIMIT, receive_low=LOW
        ) as conn:
            await connected.wait()
            yield conn, writers[0]
        await finished.wait()
    finally:
        server.close()
        await server.wait_closed()


SIDES = [pytest.param(server_end, id="server"), pytest.param(client_end, id="client")]


def _held(stats: ConnectionStatistics) -> int:
    return stats.queued_bytes + stats.partial_bytes


async def frame_overhead(conn: Connection[bytes], peer: Any) -> int:
    """What a queued frame counts against the receive limit beyond its wire bytes.

    Measured on the connection under test with one frame of 100 wire bytes,
    then taken out again: zero when frames count their wire bytes only, more
    if the connection adds a fixed cost per frame (its size as an object).
    The tests then size their frames so that each counts a chosen amount.
    """
    peer.write(b"m" * 99 + b"\n")
    await wait_until(lambda: conn.statistics().queued_frames == 1, "probe frame queued")
    overhead = conn.statistics().queued_bytes - 100
    assert 0 <= overhead < 90, f"a frame costs {overhead} more than its bytes: resize the frames"
    assert await conn.receive() == b"m" * 99
    stats = conn.statistics()
    assert (stats.queued_bytes, stats.partial_bytes, stats.reading_paused) == (0, 0, False)
    return overhead


def line(char: bytes, cost: int, overhead: int) -> bytes:
    """A frame of ``char`` bytes that, with its LF, counts ``cost`` bytes when queued."""
    return char * (cost - overhead - 1)


@pytest.mark.parametrize("end", SIDES)
async def test_pauses_above_the_limit_and_resumes_exactly_at_the_low_mark(end: Side) -> None:
    async with end() as (conn, peer):
        extra = await frame_overhead(conn, peer)
        sent = 100
        frames = [line(b"%d" % i, 100, extra) for i in range(9)]
        peer.write(b"".join(frame + b"\n" for frame in frames))
        sent += sum(len(frame) + 1 for frame in frames)
        await wait_until(lambda: conn.statistics().bytes_received == sent, "nine frames read")
        stats = conn.statistics()
        assert (stats.queued_bytes, stats.partial_bytes, stats.reading_paused) == (900, 0, False)

        # Exactly at the limit: not above it, so still reading.
        z = line(b"z", 100, extra)
        peer.write(z + b"\n")
        sent += len(z) + 1
        await wait_until(lambda: conn.statistics().bytes_received == sent, "tenth frame read")
        stats = conn.statistics()
        assert (stats.queued_bytes, stats.partial_bytes, stats.reading_paused) == (1000, 0, False)

        # A frame counting 150 and the start of the next: above the limit, paused.
        y = line(b"y", 150, extra)
        peer.write(y + b"\n" + b"w" * 100)
        await wait_until(lambda: conn.statistics().reading_paused, "reading paused")
        stats = conn.statistics()
        assert (stats.queued_frames, stats.queued_bytes, stats.read_pauses) == (11, 1150, 1)
        # 100 if the read that paused took the start of the next frame too (one
        # write on loopback is one read); 0 if that was left for a later read.
        assert stats.partial_bytes in (0, 100)
        received = stats.bytes_received

        # Take frames one by one: paused while more than LOW is held, resumed
        # by the first take that brings it to LOW or below, with frames still
        # queued. Either way one take lands exactly on LOW (1150 - 9 * 100,
        # or 1250 - 10 * 100), so resuming only below LOW is caught too.
        taken: list[bytes] = []
        while True:
            taken.append(await conn.receive())
            stats = conn.statistics()
            if _held(stats) > LOW:
                assert stats.reading_paused, f"resumed with {_held(stats)} bytes held"
            else:
                assert not stats.reading_paused, f"still paused with {_held(stats)} bytes held"
                break
        assert _held(stats) == LOW and stats.queued_frames >= 1
        assert stats.bytes_received == received  # nothing was read while paused

        # Reading really resumed: the rest of the stream arrives.
        peer.write(b"\n")
        while len(taken) < 12:
            taken.append(await conn.receive())
        assert taken == [*frames, z, y, b"w" * 100]
        stats = conn.statistics()
        assert stats.bytes_received == sent + len(y) + 102
        assert (stats.read_pauses, stats.reading_paused) == (1, False)


@pytest.mark.parametrize("end", SIDES)
async def test_a_partial_frame_alone_never_pauses_reading(end: Side) -> None:
    # A receiver waits; a read brings a frame, which it takes at once, and
    # a partial frame over the limit. Pausing with nothing queued would hold
    # back the rest of that frame for good (the framing's own max_length
    # bounds a frame, not the receive limit).
    async with end() as (conn, peer):
        receiving = asyncio.create_task(conn.receive())
        await asyncio.sleep(0)  # the task is now waiting for a frame
        peer.write(b"x\n" + b"p" * (2 * LIMIT))
        assert await receiving == b"x"
        await wait_until(lambda: conn.statistics().bytes_received == 2 * LIMIT + 2, "all read")
        stats = conn.statistics()
        assert (stats.queued_frames, stats.partial_bytes) == (0, 2 * LIMIT)
        assert not stats.reading_paused
        peer.write(b"\n")
        assert await conn.receive() == b"p" * (2 * LIMIT)


@pytest.mark.parametrize("end", SIDES)
async def test_taking_the_last_queued_frame_resumes_whatever_the_partial_frame_holds(
    end: Side,
) -> None:
    async with end() as (conn, peer):
        extra = await frame_overhead(conn, peer)
        a, b = line(b"a", 100, extra), line(b"b", 100, extra)
        # Two frames and a partial frame large enough to go above the limit
        # with them (one write on loopback: one read).
        peer.write(a + b"\n" + b + b"\n" + b"p" * 900)
        await wait_until(lambda: conn.statistics().reading_paused, "reading paused")
        stats = conn.statistics()
        assert (stats.queued_bytes, stats.partial_bytes) == (200, 900)
        assert await conn.receive() == a
        stats = conn.statistics()
        assert stats.reading_paused and _held(stats) == LIMIT
        assert await conn.receive() == b
        # The queue is empty while the partial frame is still above LOW: the
        # consumer's next receive() would wait for its end, so reading resumes.
        stats = conn.statistics()
        assert (stats.queued_frames, stats.partial_bytes, stats.reading_paused) == (0, 900, False)
        peer.write(b"\n")
        assert await conn.receive() == b"p" * 900


@pytest.mark.parametrize("end", SIDES)
async def test_a_read_that_only_grows_the_partial_frame_pauses_while_frames_are_queued(
    end: Side,
) -> None:
    # The rule counts the partial frame with the queue, whichever read grew it:
    # a frame queued, then a read of a partial frame alone that takes the sum
    # over the limit, pauses reading.
    async with end() as (conn, peer):
        extra = await frame_overhead(conn, peer)
        a = line(b"a", 200, extra)
        peer.write(a + b"\n")
        await wait_until(lambda: conn.statistics().queued_frames == 1, "one frame queued")
        assert not conn.statistics().reading_paused
        received = conn.statistics().bytes_received
        peer.write(b"p" * 900)
        await wait_until(
            lambda: conn.statistics().bytes_received == received + 900, "the partial read"
        )
        stats = conn.statistics()
        assert (stats.queued_bytes, stats.partial_bytes, stats.reading_paused) == (200, 900, True)
        assert await conn.receive() == a  # the queue empties: reading resumes
        assert not conn.statistics().reading_paused
        peer.write(b"\n")
        assert await conn.receive() == b"p" * 900
