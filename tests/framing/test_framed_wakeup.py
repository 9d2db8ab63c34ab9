"""How a task waiting for a frame is woken: at once from a read, in its own context, cancellably.

``ConnectionProtocol`` wakes a receiver that waits on an empty queue from
``data_received`` itself (``_FrameWaiter``), so the handler takes its frame
in the same pass of the event loop. These tests pin what that must keep: the
task's own context, cancellation and timeouts that leave the connection
usable and lose no frame, one receiver at a time, and the in-memory
transport's deliveries. Replies sent while such a run handles several
frames of one read are held and written together: never reordered, never
lost to a close or EOF, never more than ``high_water`` of them held.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import struct
import tempfile

import pytest

import asyncnet
from asyncnet import Connection, LengthPrefixed, Lines
from asyncnet._connection import ConnectionProtocol
from asyncnet.testing import memory_connection_pair
from tests.support.servers import client_ssl_context, server_ssl_context
from tests.support.waiting import wait_until

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def let_run() -> None:
    """Let the tasks just created run up to where they wait (one pass of the loop)."""
    await asyncio.sleep(0)


class Recording(ConnectionProtocol[bytes]):
    """Records, as each read's data_received returns, how many frames are still queued."""

    def __init__(self) -> None:
        super().__init__(Lines())
        self.queued_after_read: list[int] = []
        self.frames: list[tuple[bytes, str]] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.task = asyncio.get_running_loop().create_task(self.handle(Connection(transport, self)))

    async def handle(self, conn: Connection[bytes]) -> None:
        request_id.set("handler's own")
        self.ready.set()
        async for frame in conn:
            self.frames.append((frame, request_id.get("none")))
            await conn.send(frame)
        await conn.aclose()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.queued_after_read.append(len(self._frames))


async def test_a_waiting_receiver_takes_its_frame_before_the_read_callback_returns() -> None:
    loop = asyncio.get_running_loop()
    protocols: list[Recording] = []

    def factory() -> Recording:
        protocols.append(Recording())
        return protocols[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncnet.open_connection("127.0.0.1", port, framing=Lines()) as conn:
            await wait_until(lambda: protocols and protocols[0].ready.is_set(), "handler waits")
            for word in (b"one", b"two", b"three"):
                await conn.send(word)
                assert await conn.receive() == word
            served = protocols[0]
            # Every read found the handler waiting, and the handler had taken
            # the frame (and replied) before data_received returned; in the
            # handler's own context, not the transport callback's.
            assert served.queued_after_read == [0, 0, 0]
            assert served.frames == [(b"one", "handler's own"), (b"two", "handler's own"),
                                     (b"three", "handler's own")]
        assert served.task is not None
        await served.task
    finally:
        server.close()
        await server.wait_closed()


async def test_cancelling_a_waiting_receive_loses_no_frame_and_leaves_it_usable() -> None:
    a, b = memory_connection_pair(Lines())
    async with a, b:
        receiver = asyncio.create_task(b.receive())
        await let_run()
        receiver.cancel("stop waiting")
        with pytest.raises(asyncio.CancelledError) as info:
            await receiver
        assert info.value.args == ("stop waiting",)
        # A frame arriving after the cancellation waits for the next receive.
        await a.send(b"kept")
        assert await b.receive() == b"kept"
        # A timeout is a cancellation too.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await b.receive()
        await a.send(b"after the timeout")
        assert await b.receive() == b"after the timeout"


@pytest.mark.parametrize("cancel_first", [True, False])
async def test_a_frame_and_a_cancel_close_together_lose_nothing(cancel_first: bool) -> None:
    # The wake-up is run or scheduled exactly once: whichever of the frame and
    # the cancellation comes first wins, and the frame is never lost.
    a, b = memory_connection_pair(Lines())
    async with a, b:
        got: list[bytes] = []

        async def receive_one() -> None:
            got.append(await b.receive())

        receiver = asyncio.create_task(receive_one())
        await let_run()
        a.send_nowait(b"x")  # delivered on the next pass of the loop
        if cancel_first:
            receiver.cancel()
            with pytest.raises(asyncio.CancelledError):
                await receiver
            assert got == []
            assert await b.receive() == b"x"
        else:
            await wait_until(lambda: bool(got), "delivered")
            assert got == [b"x"]
            assert not receiver.cancel()
            await receiver


async def test_a_second_receiver_while_one_waits_is_a_usage_error() -> None:
    a, b = memory_connection_pair(Lines())
    async with a, b:
        first = asyncio.create_task(b.receive())
        await let_run()
        with pytest.raises(asyncnet.UsageError, match="while another task is receiving"):
            await b.receive()
        await a.send(b"for the first")
        assert await first == b"for the first"


async def test_frames_delivered_from_inside_a_task_are_received_in_order() -> None:
    # The in-memory transport may deliver from within a running task; then
    # the wake-up is scheduled (a task cannot run inside another).
    a, b = memory_connection_pair(Lines())
    async with a, b:
        received: list[bytes] = []

        async def consume() -> None:
            async for frame in b:
                received.append(frame)

        consumer = asyncio.create_task(consume())
        await let_run()
        for i in range(50):
            a.send_nowait(b"%d" % i)
            # Deliver the bytes synchronously, from inside this task.
            a._transport._flush()  # type: ignore[attr-defined]
        a.send_eof()
        await consumer
        assert received == [b"%d" % i for i in range(50)]


# -- replies to pipelined frames are written together ------------------------------------


@pytest.mark.parametrize(("high_water", "most_writes"), [(65536, 1), (100, 16)])
async def test_replies_to_frames_of_one_read_go_out_in_few_writes_of_bounded_size(
    high_water: int, most_writes: int
) -> None:
    a, b = memory_connection_pair(Lines(), high_water=high_water)
    async with a, b:
        writes: list[int] = []
        write = b._transport.write  # type: ignore[attr-defined]

        def counting_write(data: bytes) -> None:
            writes.append(len(data))
            write(data)

        b._transport.write = counting_write  # type: ignore[attr-defined]

        async def echo() -> None:
            async for frame in b:
                await b.send(frame.upper())

        echoer = asyncio.create_task(echo())
        await let_run()
        lines = [b"line %02d of the batch" % i for i in range(16)]  # 20 bytes + LF each
        for line in lines:
            a.send_nowait(line)  # all delivered in one read on the next pass
        assert [await a.receive() for _ in lines] == [line.upper() for line in lines]
        # One write for the batch; with a small high-water mark, a write as
        # soon as the held replies pass it (then send() waits for the peer,
        # as without holding), so no write holds more than high_water plus
        # one reply.
        assert 1 <= len(writes) <= most_writes
        assert max(writes) <= high_water + 21
        assert sum(writes) == 21 * 16
        a.send_eof()
        await echoer


async def test_held_replies_go_out_before_the_handler_closes_the_connection() -> None:
    async def until_quit(conn: Connection[bytes]) -> None:
        async for line in conn:
            if line == b"QUIT":
                await conn.send(b"BYE")
                return  # the server closes the connection
            await conn.send(b"OK " + line)

    async with asyncnet.start_server(until_quit, framing=Lines()) as server:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port, framing=Lines()) as conn:
            for word in (b"a", b"b", b"c", b"QUIT", b"ignored"):
                conn.send_nowait(word)  # one write: one read on the server, most likely
            replies = [frame async for frame in conn]
    assert replies == [b"OK a", b"OK b", b"OK c", b"BYE"]


async def test_held_replies_go_out_before_send_eof() -> None:
    a, b = memory_connection_pair(Lines())
    async with a, b:
        async def reply_then_eof() -> None:
            async for line in b:
                await b.send(line)
                if line == b"end":
                    b.send_eof()
                    return

        task = asyncio.create_task(reply_then_eof())
        await let_run()
        for word in (b"x", b"y", b"end"):
            a.send_nowait(word)
        assert [frame async for frame in a] == [b"x", b"y", b"end"]
        await task


async def test_held_replies_and_large_replies_written_between_them_stay_within_the_bound() -> None:
    # Replies larger than JOIN_MAX are written as they are sent, past the
    # cork; the room the cork has left must shrink with them, or the small
    # replies held after them add another high_water on top.
    high_water = 64 * 1024
    big = 20 * 1024
    a, b = memory_connection_pair(
        Lines(max_length=1 << 20), high_water=high_water, receive_limit=1 << 20
    )
    async with a, b:
        async def reply() -> None:
            async for line in b:
                await b.send(b"x" * big if line == b"big" else b"small %s" % line)

        replier = asyncio.create_task(reply())
        await let_run()
        a._transport.pause_reading()  # type: ignore[attr-defined]  # a clogged peer
        requests = [b"big"] * 3 + [b"%d" % i for i in range(6000)]
        for request in requests:
            a.send_nowait(request)  # delivered in reads of 64 KiB on the next pass
        await wait_until(lambda: b._protocol.writing_paused, "the replier waits on drain")
        # The peer read nothing, so the buffer shows the peak of held plus buffered.
        peak = b.statistics().write_buffer_size
        a._transport.resume_reading()  # type: ignore[attr-defined]
        expected = [b"x" * big if r == b"big" else b"small %s" % r for r in requests]
        assert [await a.receive() for _ in requests] == expected
        a.send_eof()
        await replier
        # Never past high water by more than the reply that crossed it.
        assert peak <= high_water + big + 1


@pytest.mark.parametrize("transport", ["tcp", "unix", "tls"])
async def test_a_partial_frame_over_the_receive_limit_does_not_pause_an_emptied_queue(
    transport: str,
) -> None:
    # One read brings a whole frame and the start of a frame larger than the
    # receive limit. The handler, run from that read, takes the frame and
    # waits for the next: reading must go on (the rule pauses only while
    # frames are queued), or the rest of the large frame never comes.
    async def sizes(conn: Connection[bytes]) -> None:
        async for frame in conn:
            await conn.send(b"%d" % len(frame))

    big = b"y" * 4096
    with tempfile.TemporaryDirectory(prefix="h15r-") as tmp:
        path = os.path.join(tmp, "s") if transport == "unix" else None
        ssl = server_ssl_context() if transport == "tls" else None
        async with asyncnet.start_server(
            sizes, framing=LengthPrefixed(max_frame=1 << 20), receive_limit=64, path=path,
            ssl=ssl,
        ) as server:
            if path is not None:
                reader, writer = await asyncio.open_unix_connection(path)
            else:
                port = server.sockets[0].getsockname()[1]
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ssl_context() if ssl else None,
                    server_hostname="localhost" if ssl else None,
                )
            try:
                writer.write(struct.pack(">I", 5) + b"small" + struct.pack(">I", len(big))
                             + big[:2048])
                assert await reader.readexactly(5) == struct.pack(">I", 1) + b"5"
                writer.write(big[2048:])
                # Bounded, so that a stalled read fails here rather than at the ceiling.
                async with asyncio.timeout(10):
                    assert await reader.readexactly(8) == struct.pack(">I", 4) + b"4096"
            finally:
                writer.close()
                await writer.wait_closed()


async def test_anext_of_a_connection_is_a_coroutine_a_task_can_run() -> None:
    # From Python 3.12 on, create_task takes coroutines only (not the
    # generator-based ones the protocol's own iterator gives).
    a, b = memory_connection_pair(Lines())
    async with a, b:
        task = asyncio.create_task(anext(b))
        await a.send(b"next")
        assert await task == b"next"
