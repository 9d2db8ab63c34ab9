"""``FramedProtocol(coalesce_writes=True)``: replies held while the loop's pass goes on.

A callback-style protocol that coalesces its writes holds a reply sent while
other callbacks wait in the same pass of the event loop, and writes every
held reply after the pass's last read (or, if the pass ends otherwise, from
a callback of its own). These tests run real servers and clients on one
loop and log, through the server transports' ``write``, when each reply
leaves: the order (every frame of the pass handled before any held reply
is written), that nothing is lost or reordered per connection, that
``close``/``send_eof`` and a second reply write what is held first, what is
never held (mutable frames, large ones), and that a connection aborted while
its reply is held costs the others nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import asyncnet
from asyncnet import Lines, Raw
from asyncnet._framed import JOIN_MAX
from tests.support.waiting import wait_until

CONNECTIONS = 5

Log = list[tuple[str, int]]
Clients = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


class Logged(asyncnet.FramedProtocol[Any]):
    """Logs ("frame", n) per frame and ("write", n) per write of its transport."""

    def __init__(self, log: Log, react: Callable[[Logged, Any], None], *,
                 framing: Any = None, coalesce: bool = True) -> None:
        super().__init__(framing if framing is not None else Lines(), coalesce_writes=coalesce)
        self.log = log
        self.react = react
        self.number = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        write = cast_any(transport).write

        def logged_write(data: bytes) -> None:
            self.log.append(("write", self.number))
            write(data)

        cast_any(transport).write = logged_write

    def frame_received(self, frame: Any) -> None:
        if self.number < 0:  # the first line names the client: "hello N"
            self.number = int(bytes(frame).split()[1])
            return
        self.log.append(("frame", self.number))
        self.react(self, frame)


def cast_any(value: object) -> Any:
    return value


def reply_upper(protocol: Logged, frame: bytes) -> None:
    protocol.send_nowait(frame.upper())


@contextlib.asynccontextmanager
async def serving(log: Log, react: Callable[[Logged, Any], None], *, count: int = CONNECTIONS,
                  kind: type[Logged] = Logged,
                  **options: Any) -> AsyncIterator[tuple[Clients, list[Logged]]]:
    """A server of Logged protocols and ``count`` clients, each introduced by "hello N"."""
    loop = asyncio.get_running_loop()
    protocols: list[Logged] = []

    def factory() -> Logged:
        protocols.append(kind(log, react, **options))
        return protocols[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: Clients = []
    try:
        for number in range(count):
            clients.append(await asyncio.open_connection("127.0.0.1", port))
            clients[-1][1].write(b"hello %d\n" % number)
        await wait_until(lambda: sorted(p.number for p in protocols) == list(range(count)),
                         "every client introduced")
        yield clients, protocols
    finally:
        for _, writer in clients:
            writer.close()
        for _, writer in clients:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def send_all_at_once(clients: Clients) -> None:
    """One line from every client, all in the server's sockets before its loop polls again."""
    for number, (_, writer) in enumerate(clients):
        writer.write(b"line %d\n" % number)


@pytest.mark.parametrize("coalesce", [True, False])
async def test_replies_of_one_pass_are_written_after_its_last_read(coalesce: bool) -> None:
    log: Log = []
    # How many replies had been written when each send_nowait returned.
    written: list[int] = []

    def react(protocol: Logged, frame: bytes) -> None:
        protocol.send_nowait(frame.upper())
        written.append(sum(kind == "write" for kind, _ in log))

    async with serving(log, react, coalesce=coalesce) as (clients, _):
        await send_all_at_once(clients)
        for number, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"LINE %d\n" % number
    # The pass's last read wrote everything, not a callback after it.
    assert written[-1] == CONNECTIONS
    frames = [who for kind, who in log if kind == "frame"]
    writes = [who for kind, who in log if kind == "write"]
    assert sorted(frames) == list(range(CONNECTIONS))
    assert writes == frames  # each reply once, in the order handled
    if coalesce:
        assert [kind for kind, _ in log] == ["frame"] * CONNECTIONS + ["write"] * CONNECTIONS
    else:
        assert [kind for kind, _ in log] == ["frame", "write"] * CONNECTIONS


async def test_a_reply_held_behind_other_callbacks_is_written_from_its_own() -> None:
    log: Log = []

    def react(protocol: Logged, frame: bytes) -> None:
        # Something else waits in this pass: the reply is held, and written
        # by the flush the writer scheduled, after that callback.
        asyncio.get_running_loop().call_soon(log.append, ("other", protocol.number))
        protocol.send_nowait(frame.upper())
        log.append(("sent", protocol.number))

    async with serving(log, react, count=1) as (clients, protocols):
        reader, writer = clients[0]
        writer.write(b"line 0\n")
        assert await reader.readline() == b"LINE 0\n"
        assert protocols[0].statistics().bytes_sent == len(b"LINE 0\n")
    assert log == [("frame", 0), ("sent", 0), ("other", 0), ("write", 0)]


@pytest.mark.parametrize("ending", ["close", "send_eof"])
async def test_close_and_send_eof_write_the_held_reply_first(ending: str) -> None:
    log: Log = []

    def react(protocol: Logged, frame: bytes) -> None:
        asyncio.get_running_loop().call_soon(log.append, ("other", protocol.number))
        protocol.send_nowait(frame.upper())
        getattr(protocol, ending)()

    async with serving(log, react, count=1) as (clients, _):
        reader, writer = clients[0]
        writer.write(b"bye\n")
        assert await reader.read() == b"BYE\n"  # then the end of the stream
    assert log == [("frame", 0), ("write", 0), ("other", 0)]


async def test_a_second_reply_writes_the_held_ones_first_and_order_is_kept() -> None:
    log: Log = []
    big = b"x" * (JOIN_MAX + 1)

    def react(protocol: Logged, frame: bytes) -> None:
        protocol.send_nowait(frame.upper())  # held: other reads wait in the pass
        protocol.send_nowait(b"second")  # writes what is held, then itself
        protocol.send_nowait(big)  # never held: too large

    async with serving(log, react, count=2) as (clients, _):
        await send_all_at_once(clients)
        for number, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"LINE %d\n" % number
            assert await reader.readline() == b"second\n"
            assert await reader.readline() == big + b"\n"
    # The first reply was held, and written by the second send before it,
    # not at the end of the pass (after the other client's frame).
    kinds = [kind for kind, _ in log]
    assert kinds[:2] == ["frame", "write"] and kinds.count("frame") == 2, log


async def test_mutable_frames_are_written_at_once() -> None:
    log: Log = []

    def react(protocol: Logged, frame: bytes) -> None:
        reply = bytearray(frame)
        protocol.send_nowait(reply)
        reply[:] = b"changed after send_nowait\n"  # the caller may reuse its buffer

    async with serving(log, react, count=2, framing=Raw()) as (clients, _):
        await send_all_at_once(clients)
        for number, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"line %d\n" % number
    assert [kind for kind, _ in log] == ["frame", "write"] * 2


async def test_a_connection_aborted_while_its_reply_is_held_costs_the_others_nothing() -> None:
    log: Log = []

    def react(protocol: Logged, frame: bytes) -> None:
        if protocol.number == 0:  # held whatever its place in the pass
            asyncio.get_running_loop().call_soon(log.append, ("other", 0))
        protocol.send_nowait(frame.upper())
        if protocol.number == 0:
            assert protocol.transport is not None
            cast_any(protocol.transport).abort()

    async with serving(log, react, count=3) as (clients, _):
        await send_all_at_once(clients)
        for number, (reader, _) in enumerate(clients):
            if number == 0:
                with contextlib.suppress(ConnectionError):
                    assert await reader.read() == b""
            else:
                assert await reader.readline() == b"LINE %d\n" % number
    # Client 0's reply was dropped with its transport; the others were written.
    assert [who for kind, who in log if kind == "write"] == [
        who for kind, who in log if kind == "frame" and who != 0]


async def test_a_held_write_that_fails_is_reported_and_the_others_still_go_out() -> None:
    log: Log = []
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))

    def react(protocol: Logged, frame: bytes) -> None:
        if protocol.number == 0:
            loop.call_soon(log.append, ("other", 0))  # held whatever its place

            def failing_write(data: bytes) -> None:
                raise RuntimeError("unable to write")

            cast_any(protocol.transport).write = failing_write
        protocol.send_nowait(frame.upper())

    try:
        async with serving(log, react, count=3) as (clients, _):
            await send_all_at_once(clients)
            for number, (reader, _) in enumerate(clients[1:], 1):
                assert await reader.readline() == b"LINE %d\n" % number
            await wait_until(lambda: bool(reported), "the failed write reported")
    finally:
        loop.set_exception_handler(handler)
    assert [context["message"] for context in reported] == ["coalesced write failed"]
    assert isinstance(reported[0]["exception"], RuntimeError)


async def test_a_read_of_several_frames_leaves_coalescing_on() -> None:
    log: Log = []
    async with serving(log, reply_upper, count=2) as (clients, _):
        reader, writer = clients[0]
        writer.write(b"one\ntwo\n")  # one read, two frames: their replies corked together
        assert await reader.readline() == b"ONE\n"
        assert await reader.readline() == b"TWO\n"
        del log[:]
        await send_all_at_once(clients)
        for number, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"LINE %d\n" % number
    assert [kind for kind, _ in log] == ["frame", "frame", "write", "write"]


async def test_a_send_from_a_task_after_a_held_reply_keeps_the_loop_running() -> None:
    # The task's first step is queued before the flush of the reply held
    # after it, so both run in the next pass, and the task sends with the
    # flush still queued: it writes what is held, and the loop goes on.
    log: Log = []
    tasks: list[asyncio.Task[None]] = []

    async def later(protocol: Logged) -> None:
        protocol.send_nowait(b"done")

    def react(protocol: Logged, frame: bytes) -> None:
        tasks.append(asyncio.ensure_future(later(protocol)))
        protocol.send_nowait(b"ack")

    async with serving(log, react, count=1) as (clients, _):
        reader, writer = clients[0]
        writer.write(b"go\n")
        assert await reader.readline() == b"ack\n"
        assert await reader.readline() == b"done\n"
        await asyncio.gather(*tasks)
    assert log == [("frame", 0), ("write", 0), ("write", 0)]


def test_a_loop_that_served_coalesced_writes_can_be_collected() -> None:
    async def serve_one() -> None:
        log: Log = []
        async with serving(log, reply_upper, count=2) as (clients, _):
            await send_all_at_once(clients)
            for number, (reader, _) in enumerate(clients):
                assert await reader.readline() == b"LINE %d\n" % number
        assert [kind for kind, _ in log] == ["frame", "frame", "write", "write"]

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(serve_one())
    finally:
        loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None


async def test_after_a_flush_in_mid_pass_the_last_read_still_writes_what_is_held() -> None:
    log: Log = []
    written: list[int] = []
    first: list[int] = []

    def react(protocol: Logged, frame: bytes) -> None:
        protocol.send_nowait(frame.upper())
        if not first:  # the pass's first frame: a second reply writes what is held
            first.append(protocol.number)
            protocol.send_nowait(b"second")
        written.append(sum(kind == "write" for kind, _ in log))

    async with serving(log, react, count=3) as (clients, _):
        await send_all_at_once(clients)
        for number, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"LINE %d\n" % number
            if number in first:
                assert await reader.readline() == b"second\n"
    # Two writes in mid-pass; the other two replies held, and written by the last read.
    assert written == [2, 2, 4]


class LoggedReads(Logged):
    """Also logs ("read", n) when data_received returns."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.number >= 0 and b"hello" not in data:
            self.log.append(("read", self.number))


async def test_the_replies_to_a_pipelined_read_are_held_with_the_pass() -> None:
    log: Log = []
    async with serving(log, reply_upper, count=2, kind=LoggedReads) as (clients, _):
        for number, (_, writer) in enumerate(clients):
            writer.write(b"a %d\nb %d\n" % (number, number))  # two frames in one read
        for number, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"A %d\n" % number
            assert await reader.readline() == b"B %d\n" % number
    # Each read's two replies in one write, both written by the pass's last
    # read, in the order the reads came.
    assert [kind for kind, _ in log] == ["frame", "frame", "read", "frame", "frame",
                                         "write", "write", "read"]
    assert [who for kind, who in log if kind == "write"] == [
        who for kind, who in log if kind == "frame"][::2]


async def test_the_replies_to_a_pipelined_read_are_not_held_past_16_kib() -> None:
    log: Log = []
    line = b"x" * 6000
    async with serving(log, reply_upper, count=2) as (clients, _):
        for _, writer in clients:
            writer.write((line + b"\n") * 3)  # three frames in one read, 18,003 bytes of replies
        for reader, _ in clients:
            for _ in range(3):
                assert await reader.readline() == line.upper() + b"\n"
    assert [kind for kind, _ in log] == ["frame", "frame", "frame", "write"] * 2
