"""Tiny frames against a stuck handler: the receive limit bounds objects, not only bytes."""

from __future__ import annotations

import asyncio

import asyncnet
from asyncnet import Connection, Lines
from asyncnet._connection import DECODE_STEP, FRAME_COST
from tests.support.waiting import wait_until


async def test_a_flood_of_tiny_frames_is_decoded_no_further_than_the_queue_allows() -> None:
    # 40,000 one-byte lines in one write: 80 KB on the wire, but as many
    # bytes objects, 50 bytes each: 2 MB if decoded at once. With the
    # handler stuck, the queue holds what its limit allows (each frame
    # counted with FRAME_COST) plus the frames of one decoding step; the
    # rest of a read waits undecoded, and every frame still arrives, in order.
    count = 40_000
    release = asyncio.Event()
    conns: list[Connection[bytes]] = []
    received: list[bytes] = []

    async def stuck(conn: Connection[bytes]) -> None:
        conns.append(conn)
        await release.wait()
        async for frame in conn:
            received.append(frame)
            if len(received) == count:
                await conn.send(b"done")

    limit = 4096
    async with asyncnet.start_server(stuck, framing=Lines(), receive_limit=limit) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"".join(b"%c\n" % (97 + i % 26) for i in range(count)))
            await wait_until(
                lambda: bool(conns) and conns[0].statistics().reading_paused, "reading paused"
            )
            stats = conns[0].statistics()
            bound = limit // FRAME_COST + DECODE_STEP // 2 + 1
            assert stats.queued_frames <= bound, stats
            assert stats.queued_bytes <= limit + DECODE_STEP // 2 * (2 + FRAME_COST), stats
            release.set()
            async with asyncio.timeout(60):  # a frame lost would leave it waiting
                assert await reader.readline() == b"done\n"
        finally:
            writer.close()
            await writer.wait_closed()
    assert received == [b"%c" % (97 + i % 26) for i in range(count)]
