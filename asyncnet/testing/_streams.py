"""``check_two_way_stream``: the behaviour every pair of framed connections must show.

In the spirit of ``trio.testing.check_two_way_stream``: given a factory of
connected :class:`~asyncnet.Connection` pairs (in memory, over TCP, over TLS,
through your own proxy...), run the same scenarios on a fresh pair each:
both directions at once, many concurrent senders, a clogged peer, EOF on a
frame boundary and inside a frame, close versus abort (where the transport
cannot half-close, as over TLS, a side ends by closing). Raises
:class:`AssertionError` on the first deviation; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._connection import Connection
from .._errors import ConnectionClosed, EndOfStream, IncompleteFrame, TransportError
from .._framing import preserves_boundaries

__all__ = ["check_two_way_stream"]

Pair = tuple[Connection[Any], Connection[Any]]
PairMaker = Callable[[], Awaitable[Pair]]

# Each scenario must finish well within this; a hang is a failure, not a stall.
SCENARIO_SECONDS = 30.0


async def _receive_all(conn: Connection[Any]) -> list[Any]:
    return [frame async for frame in conn]


async def _close_pair(pair: Pair) -> None:
    for conn in pair:
        conn.abort()
    for conn in pair:
        await conn.wait_closed()


def _same(conn: Connection[Any], got: Sequence[Any], expected: Sequence[Any]) -> bool:
    if preserves_boundaries(conn.framing):
        return list(got) == list(expected)
    # Raw: chunks are whatever each read returned; only the bytes count.
    return b"".join(got) == b"".join(expected)


def _end(conn: Connection[Any]) -> None:
    """End what ``conn`` sends: half-close where the transport can (TCP), else close (TLS)."""
    if _can_half_close(conn):
        conn.send_eof()
    else:
        conn.close()


def _can_half_close(conn: Connection[Any]) -> bool:
    transport = conn._protocol.transport
    return transport is not None and bool(transport.can_write_eof())  # type: ignore[attr-defined]


async def _receive_as_many(conn: Connection[Any], frames: Sequence[Any]) -> list[Any]:
    """Receive as many frames as ``frames`` holds (for Raw: as many bytes)."""
    got: list[Any] = []
    if preserves_boundaries(conn.framing):
        while len(got) < len(frames):
            got.append(await conn.receive())
    else:
        size = len(b"".join(frames))
        while len(b"".join(got)) < size:
            got.append(await conn.receive())
    return got


def _encoded(conn: Connection[Any], frame: Any) -> bytes:
    encoded = conn.framing.encode(frame)
    if isinstance(encoded, tuple):
        return b"".join(bytes(piece) for piece in encoded)
    return bytes(encoded)


async def _both_directions(a: Connection[Any], b: Connection[Any], frames: Sequence[Any]) -> None:
    # Each side ends its sending with a half-close; where the transport
    # cannot half-close (TLS), each receives as many frames as were sent.
    half_close = _can_half_close(a) and _can_half_close(b)

    async def send_all(conn: Connection[Any]) -> None:
        for frame in frames:
            await conn.send(frame)
        if half_close:
            conn.send_eof()

    async def receive(conn: Connection[Any]) -> list[Any]:
        return await (_receive_all(conn) if half_close else _receive_as_many(conn, frames))

    results = await asyncio.gather(send_all(a), send_all(b), receive(a), receive(b))
    assert _same(a, results[2], frames), f"b -> a delivered {results[2]!r}"
    assert _same(b, results[3], frames), f"a -> b delivered {results[3]!r}"


async def _concurrent_senders(a: Connection[Any], b: Connection[Any],
                              frames: Sequence[Any]) -> None:
    senders = 10

    async def send_all() -> None:
        for frame in frames:
            await a.send(frame)

    async def send_then_eof() -> None:
        await asyncio.gather(*(send_all() for _ in range(senders)))
        _end(a)

    _, got = await asyncio.gather(send_then_eof(), _receive_all(b))
    # Frames from different tasks may interleave, but each arrives whole.
    expected: collections.Counter[Any] = collections.Counter(
        repr(f) for f in frames for _ in range(senders))
    received: collections.Counter[Any] = collections.Counter(repr(f) for f in got)
    if not preserves_boundaries(b.framing):
        expected = collections.Counter(b"".join(frames) * senders)
        received = collections.Counter(b"".join(got))
    assert received == expected, (
        f"{senders} concurrent senders: frames lost, duplicated or torn")


async def _clogged_peer(a: Connection[Any], b: Connection[Any], frames: Sequence[Any]) -> None:
    protocol = a._protocol  # the kit may look inside: it checks the machinery itself
    sent: list[Any] = []

    async def flood() -> None:
        # Cycle through the frames until send() blocks on the unread peer.
        for i in range(1_000_000):
            frame = frames[i % len(frames)]
            a.send_nowait(frame)
            sent.append(frame)
            await a.drain()

    flooder = asyncio.create_task(flood())
    try:
        # Paused for good: the writer waits in drain() while the reader reads nothing.
        for _ in range(10_000):
            if (protocol.writing_paused and b.statistics().reading_paused) or flooder.done():
                break
            await asyncio.sleep(0.001)
        for _ in range(10):
            await asyncio.sleep(0)
        assert protocol.writing_paused, "writer never paused against a peer that does not read"
        stats = b.statistics()
        bound = b._protocol.receive_limit + 256 * 1024
        assert stats.queued_bytes + stats.partial_bytes <= bound, (
            f"the clogged reader holds {stats.queued_bytes} bytes, over {bound}")
    finally:
        if not flooder.done():
            flooder.cancel()
        await asyncio.gather(flooder, return_exceptions=True)
    _end(a)
    got = await _receive_all(b)
    assert _same(b, got, sent), "after unclogging, the frames did not arrive whole and in order"


async def _eof_inside_a_frame(a: Connection[Any], b: Connection[Any],
                              frames: Sequence[Any]) -> None:
    data = _encoded(a, frames[-1])
    if len(data) < 2:
        return
    protocol = a._protocol
    assert protocol.transport is not None
    protocol.transport.write(data[:-1])  # type: ignore[attr-defined]
    _end(a)
    try:
        got = await _receive_all(b)
    except IncompleteFrame:
        return
    # A framing without boundaries (Raw) has nothing to be inside of.
    assert got and not getattr(a.framing, "preserves_boundaries", True), (
        f"EOF inside a frame ended the stream cleanly after {got!r}")


async def _close_then_abort(a: Connection[Any], b: Connection[Any],
                            frames: Sequence[Any]) -> None:
    for frame in frames:
        a.send_nowait(frame)
    a.close()
    got = await _receive_all(b)
    assert _same(b, got, frames), "close() lost frames sent before it"
    try:
        a.send_nowait(frames[0])
    except ConnectionClosed:
        pass
    else:
        raise AssertionError("send_nowait() after close() did not raise ConnectionClosed")
    await a.wait_closed()
    b.abort()
    await b.wait_closed()
    try:
        await b.receive()
    except TransportError:
        pass
    else:
        raise AssertionError("receive() after abort() returned a frame")


async def _abort_wakes_the_peer(a: Connection[Any], b: Connection[Any],
                                frames: Sequence[Any]) -> None:
    receiver = asyncio.create_task(b.receive())
    await asyncio.sleep(0)
    a.abort()
    try:
        await receiver
    except (TransportError, EndOfStream):
        pass
    else:
        raise AssertionError("a receive() waiting when the peer aborted got a frame")


SCENARIOS = [
    ("both directions at once", _both_directions),
    ("many concurrent senders", _concurrent_senders),
    ("clogged peer", _clogged_peer),
    ("EOF inside a frame", _eof_inside_a_frame),
    ("close, then abort", _close_then_abort),
    ("abort wakes a waiting peer", _abort_wakes_the_peer),
]


async def check_two_way_stream(make_pair: PairMaker, frames: Sequence[Any]) -> None:
    """Run every scenario on fresh pairs from ``make_pair()``, sending ``frames``.

    ``make_pair`` returns two connected connections with the same framing
    (e.g. ``memory_connection_pair``, or a client and the server's handler
    end of a TCP connection); ``frames`` are valid frames of that framing,
    at least one. Each pair is aborted after its scenario.
    """
    if not frames:
        raise ValueError("check_two_way_stream needs at least one frame")
    for name, scenario in SCENARIOS:
        pair = await make_pair()
        try:
            async with asyncio.timeout(SCENARIO_SECONDS):
                await scenario(pair[0], pair[1], frames)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
        except TimeoutError as exc:
            raise AssertionError(f"{name}: hung for {SCENARIO_SECONDS}s") from exc
        finally:
            await _close_pair(pair)
