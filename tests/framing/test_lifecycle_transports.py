"""The framed server's lifecycle on every transport: idle timeout, admission, shutdown.

The same rules over TCP, a Unix socket, TLS over TCP, TLS over a Unix
socket and IPv6 (skipped where ``::1`` or ``AF_UNIX`` is missing), where the
transports differ in how a close, an abort or a refusal reaches the peer.
Also here: ``reuse_port`` and ``open_connection``'s ``connect_timeout``.

Safety nets (``asyncio.timeout(SAFETY)``) only turn a hang into a failure;
nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest

import asyncnet
from asyncnet import Connection, Lines
from tests.support.servers import (
    black_hole_port,
    client_ssl_context,
    ipv6_available,
    server_ssl_context,
)
from tests.support.waiting import wait_until

# Far above anything that should happen, far below the conftest's ceiling.
SAFETY = 10.0


@dataclass
class Endpoint:
    """Where a test server listens and how clients reach it: one transport."""

    tls: bool
    path: str | None = None
    host: str = "127.0.0.1"

    def listen(self) -> dict[str, Any]:
        """Keyword arguments of ``start_server`` for this transport."""
        where: dict[str, Any] = {"path": self.path} if self.path else {"host": self.host}
        return {**where, "ssl": server_ssl_context() if self.tls else None}

    def connect(self, server: asyncnet.Server) -> dict[str, Any]:
        """Keyword arguments of ``open_connection`` that reach ``server``."""
        kwargs = self._where(server)
        if self.tls:
            kwargs.update(ssl=client_ssl_context(), server_hostname="localhost")
        return kwargs

    async def raw_connect(
        self, server: asyncnet.Server
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A plain asyncio stream to ``server`` (a peer whose reading the test controls)."""
        tls: dict[str, Any] = {}
        if self.tls:
            tls = {"ssl": client_ssl_context(), "server_hostname": "localhost"}
        if self.path is not None:
            return await asyncio.open_unix_connection(self.path, **tls)
        return await asyncio.open_connection(self.host, _port(server), **tls)

    def _where(self, server: asyncnet.Server) -> dict[str, Any]:
        if self.path is not None:
            return {"path": self.path}
        return {"host": self.host, "port": _port(server)}


def _port(server: asyncnet.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@contextlib.contextmanager
def _unix_path() -> Iterator[str]:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets here")
    # A short directory of our own: socket paths are limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="anl-") as tmp:
        yield os.path.join(tmp, "s")


@pytest.fixture(params=["tcp", "unix", "tls", "tls-unix", "ipv6"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    kind = request.param
    if kind == "tcp":
        yield Endpoint(tls=False)
    elif kind == "ipv6":
        if not ipv6_available():
            pytest.skip("::1 is not available")
        yield Endpoint(tls=False, host="::1")
    elif kind.endswith("unix"):
        with _unix_path() as path:
            yield Endpoint(tls=kind.startswith("tls"), path=path)
    else:
        yield Endpoint(tls=True)


async def _echo(conn: Connection[bytes]) -> None:
    async for line in conn:
        await conn.send(line.upper())


# -- idle timeout -----------------------------------------------------------------------


async def test_idle_connection_is_aborted_and_counted(endpoint: Endpoint) -> None:
    async with asyncnet.start_server(
        _echo, framing=Lines(), idle_timeout=0.2, **endpoint.listen()
    ) as server:
        async with asyncnet.open_connection(framing=Lines(), **endpoint.connect(server)) as conn:
            await conn.send(b"active")
            assert await conn.receive() == b"ACTIVE"
            with pytest.raises((asyncnet.EndOfStream, asyncnet.ReadError)):
                async with asyncio.timeout(SAFETY):
                    await conn.receive()
        await wait_until(lambda: server.statistics().current_connections == 0, "gone")
        stats = server.statistics()
        assert (stats.idle_timeouts, stats.handler_errors, stats.total_connections) == (1, 0, 1)


# -- admission --------------------------------------------------------------------------


async def test_max_connections_refuses_cleanly_and_counts(endpoint: Endpoint) -> None:
    started = asyncio.Event()

    async def hold(conn: Connection[bytes]) -> None:
        started.set()
        async for _ in conn:
            pass

    async with asyncnet.start_server(hold, max_connections=1, **endpoint.listen()) as server:
        async with asyncnet.open_connection(**endpoint.connect(server)) as first:
            await started.wait()
            async with asyncnet.open_connection(**endpoint.connect(server)) as second:
                # Refused cleanly: the end of the stream, not a reset (over
                # TLS, a close_notify).
                with pytest.raises(asyncnet.EndOfStream):
                    async with asyncio.timeout(SAFETY):
                        await second.receive()
            first.send_nowait(b"still served")
            await wait_until(lambda: server.statistics().bytes_received == 12, "served")
        stats = server.statistics()
        assert (stats.total_connections, stats.refused_connections) == (1, 1)
        assert stats.handler_errors == 0


# -- shutdown ---------------------------------------------------------------------------


async def test_shutdown_stops_accepting_and_lets_handlers_finish_within_grace(
    endpoint: Endpoint,
) -> None:
    release = asyncio.Event()

    async def slow(conn: Connection[bytes]) -> None:
        line = await conn.receive()
        await release.wait()
        await conn.send(b"done " + line)

    server = await asyncnet.start_server(slow, framing=Lines(), **endpoint.listen())
    address = endpoint.connect(server)  # the port is not shown once the server is closed
    try:
        async with asyncnet.open_connection(framing=Lines(), **address) as conn:
            await conn.send(b"job")
            await wait_until(lambda: server.statistics().frames_received == 1, "received")
            shutting = asyncio.create_task(server.shutdown(grace=SAFETY * 3))
            await wait_until(lambda: not server.is_serving(), "stopped accepting")
            with pytest.raises(asyncnet.ConnectError, match="cannot connect to"):
                await asyncnet.open_connection(**address)
            release.set()
            assert await conn.receive() == b"done job"
            with pytest.raises(asyncnet.EndOfStream):
                await conn.receive()
            async with asyncio.timeout(SAFETY):
                await shutting
    finally:
        await server.shutdown(0)
    stats = server.statistics()
    assert (stats.current_connections, stats.handler_errors, stats.frames_sent) == (0, 0, 1)


async def test_shutdown_cancels_handlers_past_grace_and_aborts(endpoint: Endpoint) -> None:
    cancelled = asyncio.Event()

    async def stuck(conn: Connection[bytes]) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await asyncnet.start_server(stuck, **endpoint.listen())
    try:
        async with asyncnet.open_connection(**endpoint.connect(server)) as conn:
            await wait_until(lambda: server.statistics().current_connections == 1, "accepted")
            async with asyncio.timeout(SAFETY):
                await server.shutdown(grace=0.05)
            assert cancelled.is_set()
            assert server.statistics().current_connections == 0
            with pytest.raises((asyncnet.EndOfStream, asyncnet.ReadError)):
                async with asyncio.timeout(SAFETY):
                    await conn.receive()
    finally:
        await server.shutdown(0)
    assert server.statistics().handler_errors == 0


@pytest.mark.parametrize("endpoint", ["tls", "tls-unix"], indirect=True)
async def test_shutdown_aborts_a_closed_tls_connection_whose_peer_never_answers(
    endpoint: Endpoint,
) -> None:
    # The handler closes; TLS then waits for the peer's close_notify, which
    # a peer that does not read never sends. shutdown must abort it rather
    # than wait out the TLS shutdown timeout (30 s).
    closed = asyncio.Event()

    async def close_at_once(conn: Connection[bytes]) -> None:
        await conn.receive()
        conn.close()
        closed.set()

    async with asyncnet.start_server(close_at_once, framing=Lines(), **endpoint.listen()) as server:
        _reader, writer = await endpoint.raw_connect(server)
        try:
            # Never reads the server's close_notify.
            cast(asyncio.ReadTransport, writer.transport).pause_reading()
            writer.write(b"hello\n")
            await closed.wait()
            async with asyncio.timeout(SAFETY):
                await server.shutdown(0)
            assert server.statistics().current_connections == 0
        finally:
            writer.transport.abort()


# -- reuse_port -------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_reuse_port_lets_two_servers_share_a_port_and_both_accept(host: str) -> None:
    if host == "::1" and not ipv6_available():
        pytest.skip("::1 is not available")

    def named(name: bytes) -> Any:
        async def handler(conn: Connection[bytes]) -> None:
            async for _ in conn:
                await conn.send(name)

        return handler

    async with asyncnet.start_server(named(b"a"), host, framing=Lines(), reuse_port=True) as a:
        port = _port(a)
        async with asyncnet.start_server(
            named(b"b"), host, port, framing=Lines(), reuse_port=True
        ) as b:
            assert _port(b) == port
            # The kernel spreads connections over both by a hash of their
            # addresses; each new one has a new source port. 200 connections
            # all going to one server has a probability of 2**-199.
            seen: set[bytes] = set()
            for _ in range(200):
                async with asyncnet.open_connection(host, port, framing=Lines()) as conn:
                    await conn.send(b"who")
                    seen.add(await conn.receive())
                if len(seen) == 2:
                    break
            assert seen == {b"a", b"b"}
            assert a.statistics().total_connections >= 1
            assert b.statistics().total_connections >= 1
            # With one gone, the other takes every connection.
            await a.shutdown(0)
            async with asyncnet.open_connection(host, port, framing=Lines()) as conn:
                await conn.send(b"who")
                assert await conn.receive() == b"b"


# -- connect_timeout --------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux: SYNs dropped on a full backlog")
async def test_connect_timeout_when_the_peer_never_completes_the_handshake() -> None:
    with black_hole_port() as port, pytest.raises(asyncnet.ConnectTimeout) as info:
        async with asyncio.timeout(SAFETY):
            await asyncnet.open_connection("127.0.0.1", port, connect_timeout=0.1)
    # Catchable as the builtin, and it keeps asyncio's timeout as its cause.
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert f"127.0.0.1:{port}" in str(info.value)


@contextlib.asynccontextmanager
async def _silent_server(unix_path: str | None) -> AsyncIterator[dict[str, Any]]:
    """A server that accepts and reads but never answers (a TLS hello goes unanswered)."""
    finished: list[asyncio.Event] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done = asyncio.Event()
        finished.append(done)
        try:
            await reader.read()
        finally:
            writer.close()
            done.set()

    if unix_path is not None:
        server = await asyncio.start_unix_server(silent, unix_path)
        where: dict[str, Any] = {"path": unix_path}
    else:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        where = {"host": "127.0.0.1", "port": server.sockets[0].getsockname()[1]}
    try:
        yield where
        for done in finished:
            await done.wait()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_connect_timeout_covers_the_tls_handshake(transport: str) -> None:
    with contextlib.ExitStack() as stack:
        path = stack.enter_context(_unix_path()) if transport == "unix" else None
        async with _silent_server(path) as where:
            with pytest.raises(asyncnet.ConnectTimeout):
                async with asyncio.timeout(SAFETY):
                    await asyncnet.open_connection(
                        ssl=client_ssl_context(),
                        server_hostname="localhost",
                        connect_timeout=0.1,
                        **where,
                    )
