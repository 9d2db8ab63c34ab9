"""Opening TCP connections: address order, the Happy Eyeballs race, and no leak on cancel."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from asyncnet._connect import (
    AddrInfo,
    interleave_addrinfos,
    open_connection,
    open_tcp_socket,
    race_connect,
)
from tests.support.servers import (
    RawServer,
    client_ssl_context,
    ipv6_available,
    response,
    server_ssl_context,
)

V4 = socket.AF_INET
V6 = socket.AF_INET6
TCP = socket.SOCK_STREAM


def _info(host: str, port: int) -> AddrInfo:
    family = V6 if ":" in host else V4
    address: tuple[object, ...] = (host, port, 0, 0) if family == V6 else (host, port)
    return (family, TCP, socket.IPPROTO_TCP, "", address)


async def _echo_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextmanager
def _black_hole() -> Iterator[int]:
    """A port that never completes new connections: a listener whose backlog is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_interleave_alternates_families_and_drops_duplicates() -> None:
    a4, b4, c4 = _info("10.0.0.1", 1), _info("10.0.0.2", 1), _info("10.0.0.3", 1)
    a6, b6 = _info("::1", 1), _info("::2", 1)
    assert interleave_addrinfos([a6, b6, a4, b4, c4]) == [a6, a4, b6, b4, c4]
    assert interleave_addrinfos([a4, a4, a6, b4]) == [a4, a6, b4]
    assert interleave_addrinfos([]) == []


async def test_open_tcp_socket_connects() -> None:
    async with RawServer(_echo_until_eof) as srv:
        sock = await open_tcp_socket("127.0.0.1", srv.port)
        with sock:
            assert sock.getpeername() == ("127.0.0.1", srv.port)
        sock = await open_tcp_socket("localhost", srv.port, happy_eyeballs_delay=None)
        sock.close()
        await srv.wait_until(lambda s: s.connections == 2 and s.active_connections == 0)


async def test_refused_raises_the_os_error() -> None:
    with _closed_port() as port:
        with pytest.raises(ConnectionRefusedError):
            await open_tcp_socket("127.0.0.1", port)
        with pytest.raises(OSError, match="Connect call failed"):
            await race_connect([_info("127.0.0.1", port)] * 2, delay=0.05)


@pytest.mark.parametrize("delay", [None, 0.05])
async def test_failed_first_address_falls_through_to_the_next(delay: float | None) -> None:
    async with RawServer(_echo_until_eof) as srv:
        with _closed_port() as dead:
            sock = await race_connect(
                [_info("127.0.0.1", dead), _info("127.0.0.1", srv.port)], delay=delay
            )
        with sock:
            assert sock.getpeername()[1] == srv.port


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux: SYNs dropped on a full backlog")
async def test_silent_first_address_loses_the_race_after_the_delay() -> None:
    async with RawServer(_echo_until_eof) as srv:
        with _black_hole() as hole:
            sock = await race_connect(
                [_info("127.0.0.1", hole), _info("127.0.0.1", srv.port)], delay=0.05
            )
            with sock:
                assert sock.getpeername()[1] == srv.port


async def test_both_families() -> None:
    if not ipv6_available():
        pytest.skip("::1 not available")
    async with RawServer(_echo_until_eof, host="::1") as srv6:
        with _closed_port() as dead:
            infos = interleave_addrinfos([_info("127.0.0.1", dead), _info("::1", srv6.port)])
            sock = await race_connect(infos, delay=0.05)
        with sock:
            assert sock.family == V6


async def _wait_for_server(srv: RawServer, completed: int) -> None:
    """Assert that the server saw the ``completed`` connections and every connection closed.

    Bounded well under the test ceiling, so a leaked socket fails here with
    the counts rather than as a bare timeout.
    """

    def settled(s: RawServer) -> bool:
        return s.connections >= completed and s.active_connections == 0

    with suppress(TimeoutError):
        async with asyncio.timeout(10):
            await srv.wait_until(settled)
    assert srv.connections >= completed, (srv.connections, completed)
    assert srv.active_connections == 0, (
        f"{srv.active_connections} of {srv.connections} connections still open at the server"
    )


@pytest.mark.parametrize("delay", [None, 0.25])
async def test_cancel_at_any_point_leaks_no_socket(delay: float | None) -> None:
    # Cancelled at every early loop turn: the server must see every connection
    # closed, and no ResourceWarning may follow (warnings are errors here).
    async with RawServer(_echo_until_eof) as srv:
        infos = [_info("127.0.0.1", srv.port)] * 3
        cancelled = completed = 0
        for turn in range(15):
            task = asyncio.create_task(race_connect(infos, delay=delay))
            for _ in range(turn):
                await asyncio.sleep(0)
            task.cancel()
            try:
                sock = await task
            except asyncio.CancelledError:
                cancelled += 1
            else:
                completed += 1
                sock.close()
        # Both outcomes happened, so both paths were exercised.
        assert cancelled > 0 and completed > 0, (cancelled, completed)
        await _wait_for_server(srv, completed)


async def test_open_connection_cancelled_at_random_points_with_tls() -> None:
    rng = random.Random(4)
    async with RawServer(
        responses=[response(200, b"x")], repeat=True, ssl=server_ssl_context()
    ) as srv:
        cancelled = completed = 0
        for _ in range(60):
            task = asyncio.create_task(
                open_connection(
                    asyncio.Protocol, "127.0.0.1", srv.port,
                    ssl_context=client_ssl_context(), server_hostname="localhost",
                )
            )
            for _ in range(rng.randrange(0, 12)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                transport, _ = await task
            except asyncio.CancelledError:
                cancelled += 1
            else:
                completed += 1
                transport.abort()
        assert cancelled > 0 and completed > 0, (cancelled, completed)
        await _wait_for_server(srv, completed)


async def test_open_connection_gives_a_working_tls_transport() -> None:
    async with RawServer(responses=[response(200, b"tls")], ssl=server_ssl_context()) as srv:
        received = asyncio.get_running_loop().create_future()

        class Collect(asyncio.Protocol):
            def __init__(self) -> None:
                self.data = b""

            def data_received(self, data: bytes) -> None:
                self.data += data
                if self.data.endswith(b"tls") and not received.done():
                    received.set_result(self.data)

        transport, _ = await open_connection(
            Collect, "127.0.0.1", srv.port,
            ssl_context=client_ssl_context(), server_hostname="localhost",
        )
        try:
            assert transport.get_extra_info("ssl_object").server_hostname == "localhost"
            transport.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert (await received).endswith(b"tls")
        finally:
            transport.abort()


class _NoThreads(concurrent.futures.ThreadPoolExecutor):
    """An executor that refuses work: proves that nothing was sent to a thread."""

    def submit(self, *args: object, **kwargs: object) -> concurrent.futures.Future[object]:
        raise AssertionError("the resolver's executor was used")


async def test_ip_literals_are_not_sent_to_the_resolver_thread() -> None:
    loop = asyncio.get_running_loop()
    executor = _NoThreads(max_workers=1)
    loop.set_default_executor(executor)
    try:
        async with RawServer(_echo_until_eof) as srv:
            sock = await open_tcp_socket("127.0.0.1", srv.port)
            sock.close()
            with pytest.raises(AssertionError, match="executor"):
                await open_tcp_socket("localhost", srv.port)
            await srv.wait_until(lambda s: s.active_connections == 0)
    finally:
        executor.shutdown()
