"""Replies of the receivers one pass of the loop wakes go out together, after the last of them.

``_run_receivers`` runs, from one callback, the handlers whose frames came
in one pass; the replies they send meanwhile are held and written one after
the other once every handler has run, so the peers (woken by the first)
find the rest waiting rather than sleeping between them. These tests pin
the order (every handler step before any write), that nothing is lost or
reordered per connection, and that a handler that stops to wait for
something else has its replies written at the end of the pass anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncnet
from asyncnet import Connection, Lines
from tests.support.waiting import wait_until

CONNECTIONS = 5


Clients = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


@contextlib.asynccontextmanager
async def serving(handler: Callable[[Connection[bytes]], Awaitable[None]],
                  waiting: set[int]) -> AsyncIterator[Clients]:
    """Serve ``handler``; yield CONNECTIONS clients once every handler waits for a frame."""
    async with await asyncnet.start_server(handler, framing=Lines()) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS)]
        try:
            await wait_until(lambda: len(waiting) == CONNECTIONS, "every handler waits")
            yield clients
        finally:
            for _, writer in clients:
                writer.close()
            for _, writer in clients:
                await writer.wait_closed()


async def test_handlers_woken_in_one_pass_all_run_before_their_replies_are_written() -> None:
    log: list[tuple[str, int]] = []
    waiting: set[int] = set()

    async def handler(conn: Connection[bytes]) -> None:
        me = conn.peername[1]
        transport: Any = conn._transport
        write = transport.write

        def logged_write(data: bytes) -> None:
            log.append(("write", me))
            write(data)

        transport.write = logged_write
        waiting.add(me)
        async for line in conn:
            log.append(("step", me))
            await conn.send(line.upper())

    async with serving(handler, waiting) as clients:
        # Every handler is waiting for its first frame; all lines are
        # in the server's sockets before the loop polls them again.
        for i, (_, writer) in enumerate(clients):
            writer.write(b"line %d\n" % i)
        for i, (reader, _) in enumerate(clients):
            assert await reader.readline() == b"LINE %d\n" % i
    kinds = [kind for kind, _ in log]
    assert kinds == ["step"] * CONNECTIONS + ["write"] * CONNECTIONS, log
    assert [who for _, who in log[:CONNECTIONS]] == [who for _, who in log[CONNECTIONS:]]


async def test_a_handler_waiting_on_something_else_has_its_reply_written_at_the_pass_end() -> None:
    release = asyncio.Event()
    waiting: set[int] = set()

    async def handler(conn: Connection[bytes]) -> None:
        waiting.add(conn.peername[1])
        async for line in conn:
            await conn.send(b"got " + line)
            if line == b"slow":
                # Replies held until here must be on their way already.
                await release.wait()
                await conn.send(b"after")

    async with serving(handler, waiting) as clients:
        for i, (_, writer) in enumerate(clients):
            writer.write(b"slow\n" if i == 0 else b"fast\none more\n")
        assert await clients[0][0].readline() == b"got slow\n"
        for reader, _ in clients[1:]:
            assert await reader.readline() == b"got fast\n"
            assert await reader.readline() == b"got one more\n"
        release.set()
        assert await clients[0][0].readline() == b"after\n"
