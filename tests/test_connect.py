"""Opening TCP connections: address order, the Happy Eyeballs race, and no leak on cancel."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

import pytest

import asyncnet
from asyncnet import HTTPClient
from asyncnet._connect import (
    AddrInfo,
    Resolver,
    interleave_addrinfos,
    numeric_addrinfos,
    open_connection,
    open_tcp_socket,
    race_connect,
)
from tests.support.servers import (
    RawServer,
    black_hole_port,
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
        with black_hole_port() as hole:
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


# -- resolution: literals, shared and cached lookups, hung names ---------------


def _loopback_infos(port: int) -> list[AddrInfo]:
    return [_info("127.0.0.1", port)]


def _refuse_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every resolver entry point fail the test if it is reached."""
    loop = asyncio.get_running_loop()

    async def loop_getaddrinfo(*args: object, **kwargs: object) -> list[AddrInfo]:
        raise AssertionError(f"loop.getaddrinfo{args!r} was called")

    def sync_getaddrinfo(*args: object, **kwargs: object) -> list[AddrInfo]:
        raise AssertionError(f"socket.getaddrinfo{args!r} was called")

    monkeypatch.setattr(loop, "getaddrinfo", loop_getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", sync_getaddrinfo)


async def test_ip_literals_go_straight_to_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_lookups(monkeypatch)
    async with RawServer(_echo_until_eof) as srv:
        sock = await open_tcp_socket("127.0.0.1", srv.port, resolver=Resolver())
        sock.close()
        sock = await open_tcp_socket("127.0.0.1", srv.port)
        sock.close()
        await srv.wait_until(lambda s: s.connections == 2 and s.active_connections == 0)
    if ipv6_available():
        async with RawServer(_echo_until_eof, host="::1") as srv6:
            sock = await open_tcp_socket("::1", srv6.port, resolver=Resolver())
            sock.close()
            await srv6.wait_until(lambda s: s.connections == 1 and s.active_connections == 0)


async def test_http_client_connects_to_ip_literals_without_lookups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _refuse_lookups(monkeypatch)
    async with (
        RawServer(responses=[response(200, b"ok")], repeat=True) as srv,
        HTTPClient() as client,
    ):
        assert (await client.get(srv.url())).content == b"ok"


def test_numeric_addrinfos() -> None:
    assert numeric_addrinfos("10.1.2.3", 80) == [_info("10.1.2.3", 80)]
    assert numeric_addrinfos("::1", 80) == [_info("::1", 80)]
    assert numeric_addrinfos("localhost", 80) is None
    assert numeric_addrinfos("host1", 80) is None
    assert numeric_addrinfos("", 80) is None


class _FakeDNS:
    """A stand-in for ``loop.getaddrinfo`` (no real name server can be had in a test).

    Every name answers 127.0.0.1 once ``answer`` is set; names in ``hung`` hold
    a thread of the default executor until ``release`` is set (the way a real
    ``getaddrinfo`` stuck on an unanswering name server does), then fail.
    ``localhost`` goes to the real resolver. Records every call.
    """

    def __init__(self, hung: Iterable[str] = ()) -> None:
        self.loop = asyncio.get_running_loop()
        self.real = self.loop.getaddrinfo
        self.hung = set(hung)
        self.calls: list[str] = []
        self.answer = asyncio.Event()
        self.answer.set()
        self.release = threading.Event()
        self.threads_held = 0
        self.most_threads_held = 0
        self._lock = threading.Lock()

    def _hold(self) -> None:
        with self._lock:
            self.threads_held += 1
            self.most_threads_held = max(self.most_threads_held, self.threads_held)
        self.release.wait()
        with self._lock:
            self.threads_held -= 1

    async def __call__(self, host: str, port: object, **kwargs: object) -> list[AddrInfo]:
        self.calls.append(host)
        if host == "localhost":
            return await self.real(host, port, **kwargs)  # type: ignore[arg-type]
        if host in self.hung:
            await self.loop.run_in_executor(None, self._hold)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        await self.answer.wait()
        return [_info("127.0.0.1", int(port))]  # type: ignore[call-overload]


async def test_concurrent_lookups_of_one_name_are_shared_and_then_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns = _FakeDNS()
    monkeypatch.setattr(dns.loop, "getaddrinfo", dns)
    dns.answer.clear()
    # The server closes every connection: each request needs a new one.
    closing = response(200, b"ok", [("Connection", "close")])
    async with RawServer(responses=[closing], repeat=True) as srv:
        async with HTTPClient(limits=asyncnet.Limits(max_per_host=20)) as client:
            url = f"http://shared.test:{srv.port}/"
            tasks = [asyncio.ensure_future(client.get(url)) for _ in range(20)]
            for _ in range(5):
                await asyncio.sleep(0)
            dns.answer.set()
            assert [r.status for r in await asyncio.gather(*tasks)] == [200] * 20
            assert dns.calls == ["shared.test"]
            # Within the TTL a new connection to the name needs no lookup.
            for _ in range(2):
                assert (await client.get(url)).status == 200
            assert dns.calls == ["shared.test"]
            assert client.statistics().connections_opened == 22
        async with HTTPClient(dns_cache_ttl=0) as client:
            for _ in range(2):
                assert (await client.get(url)).status == 200
            assert dns.calls == ["shared.test"] * 3


async def test_cache_is_bounded_and_shared_across_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = _FakeDNS()
    monkeypatch.setattr(dns.loop, "getaddrinfo", dns)
    resolver = Resolver(max_entries=3)
    for name in ["a.test", "b.test", "c.test", "d.test", "e.test"]:
        for port in (80, 8080):
            infos = await resolver.resolve(name, port)
            assert [info[4] for info in infos] == [("127.0.0.1", port)]
    assert dns.calls == ["a.test", "b.test", "c.test", "d.test", "e.test"]
    assert resolver.cached == 3
    await resolver.resolve("a.test", 1)  # evicted: looked up again
    assert dns.calls[-1] == "a.test"
    await resolver.aclose()
    assert resolver.cached == 0


async def test_hung_lookups_do_not_starve_other_connects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A default executor of 6 threads, as asyncio gives a 2-core machine.
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=6)
    loop.set_default_executor(executor)
    hung = {f"hung{i}.test" for i in range(3)}
    dns = _FakeDNS(hung)
    monkeypatch.setattr(loop, "getaddrinfo", dns)
    try:
        async with RawServer(responses=[response(200, b"ok")], repeat=True) as srv:
            timeout = asyncnet.Timeout(connect=0.2)
            async with HTTPClient(timeout=timeout) as client:
                # Each hung name asked for ten times, all at once: every
                # request times out while connecting...
                urls = [f"http://{name}:{srv.port}/" for name in sorted(hung) * 10]
                results = await asyncio.gather(
                    *(client.get(url) for url in urls), return_exceptions=True
                )
                assert all(isinstance(r, asyncnet.ConnectTimeout) for r in results), results
                # ...and the client's other names and IP literals still connect,
                assert (await client.get(f"http://localhost:{srv.port}/")).status == 200
                assert (await client.get(f"http://127.0.0.1:{srv.port}/")).status == 200
                # because each hung name holds one thread, not one per request,
                assert sorted(dns.calls) == sorted([*hung, "localhost"])
                assert dns.most_threads_held == len(hung)
                # and asking again for a hung name joins its lookup in flight.
                with pytest.raises(asyncnet.ConnectTimeout):
                    await client.get(urls[0])
                assert sorted(dns.calls) == sorted([*hung, "localhost"])

            # More hung names than max_dns_lookups: this client holds at most
            # that many threads, so the executor keeps serving everyone else.
            more = {f"stuck{i}.test" for i in range(8)}
            dns.hung |= more
            async with HTTPClient(timeout=timeout, max_dns_lookups=2) as client:
                results = await asyncio.gather(
                    *(client.get(f"http://{name}:{srv.port}/") for name in sorted(more)),
                    return_exceptions=True,
                )
                assert all(isinstance(r, asyncnet.ConnectTimeout) for r in results), results
                assert dns.threads_held <= len(hung) + 2
                assert await loop.run_in_executor(None, sum, [1, 2]) == 3
    finally:
        dns.release.set()
        executor.shutdown(wait=True)


async def test_one_address_starts_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    async with RawServer(_echo_until_eof) as srv:

        def no_timers(*args: object, **kwargs: object) -> None:
            raise AssertionError("a timer was started for a single address")

        monkeypatch.setattr(loop, "call_at", no_timers)
        monkeypatch.setattr(loop, "call_later", no_timers)
        sock = await open_tcp_socket("127.0.0.1", srv.port, happy_eyeballs_delay=0.25)
        monkeypatch.undo()
        sock.close()
        await srv.wait_until(lambda s: s.active_connections == 0)
