"""The echo server and client over real loopback sockets with small socket buffers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet import EchoServer, EchoServerProtocol, open_echo_client, start_echo_server
from asyncnet._echo import COPY_MAX

# Small kernel buffers make backpressure show up after kilobytes, not megabytes.
SMALL_BUFFER = 4096
# What asyncio's selector transport reads in one recv(): the "one read" of the bound.
MAX_READ = 256 * 1024


class Recorder(EchoServerProtocol):
    """An EchoServerProtocol that reports its callbacks through events (test only)."""

    instances: ClassVar[list[Recorder]]
    received_target: ClassVar[int] = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        type(self).instances.append(self)
        self.events: list[str] = []
        self.paused = asyncio.Event()
        self.resumed = asyncio.Event()
        self.lost = asyncio.Event()
        self.got_target = asyncio.Event()
        self.data_while_paused = 0

    def buffer_updated(self, nbytes: int) -> None:
        if self.reading_paused:
            self.data_while_paused += 1
        super().buffer_updated(nbytes)
        if self.received_target and self.bytes_received >= self.received_target:
            self.got_target.set()

    def pause_writing(self) -> None:
        self.events.append("pause")
        super().pause_writing()
        self.paused.set()

    def resume_writing(self) -> None:
        self.events.append("resume")
        super().resume_writing()
        self.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.lost.set()


def recorder_class(received_target: int = 0) -> type[Recorder]:
    """A fresh Recorder subclass whose instances are listed on it."""
    return type(
        "Rec", (Recorder,), {"instances": [], "received_target": received_target}
    )


def shrink(server: EchoServer, *, receive: bool = True) -> None:
    """Accepted sockets inherit these from the listening socket on Linux."""
    for sock in server.sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        if receive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)


def address(server: EchoServer) -> tuple[str, int]:
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


async def raw_client(server: EchoServer) -> socket.socket:
    """A non-blocking client socket with small buffers, connected to the server."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, address(server))
    except BaseException:
        sock.close()
        raise
    return sock


async def recv_exactly(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while len(out) < n:
        chunk = await loop.sock_recv(sock, min(65536, n - len(out)))
        if not chunk:
            raise AssertionError(f"EOF after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


async def recv_until_eof(sock: socket.socket, limit: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while len(out) <= limit:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            return bytes(out)
        out += chunk
    raise AssertionError("more bytes than were sent")


def pattern(n: int) -> bytes:
    """Bytes that change with their position, so reordering is visible."""
    block = hashlib.sha256(b"seed").digest() * 8  # 256 bytes
    out = bytearray()
    i = 0
    while len(out) < n:
        out += i.to_bytes(4, "big") + block
        i += 1
    return bytes(out[:n])


# -- basics ----------------------------------------------------------------------


async def test_round_trip_and_statistics() -> None:
    async with await start_echo_server("127.0.0.1", 0) as server:
        host, port = address(server)
        async with open_echo_client(host, port) as client:
            assert await client.echo(b"hello") == b"hello"
            assert await client.echo(b"x" * 100_000) == b"x" * 100_000
        stats = server.statistics()
        assert stats.total_connections == 1
        assert stats.bytes_received == 100_005
        assert stats.bytes_sent == 100_005
        assert stats.refused_connections == 0
        assert stats.idle_timeouts == 0
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.total_connections = 5  # type: ignore[misc]
    assert not server.is_serving()
    assert server.sockets == () or all(s.fileno() == -1 for s in server.sockets)


async def test_concurrent_echo_calls_are_serialized() -> None:
    async with await start_echo_server() as server, open_echo_client(*address(server)) as client:
        payloads = [bytes([i]) * (1000 + i) for i in range(20)]
        replies = await asyncio.gather(*(client.echo(p) for p in payloads))
        assert replies == payloads


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = await start_echo_server("::1", 0)
    except asyncnet.ConnectError:
        pytest.skip("::1 not available")
    async with server, open_echo_client("::1", address(server)[1]) as client:
        assert await client.echo(b"six") == b"six"


async def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with await start_echo_server(path=path, high_water=8192) as server:
        async with open_echo_client(path=path) as client:
            assert await client.echo(b"over unix") == b"over unix"
            result = await client.bulk(2 * 1024 * 1024)
            assert result.ok, result
        assert server.statistics().bytes_received == 9 + 2 * 1024 * 1024


# -- backpressure --------------------------------------------------------------------


async def test_never_reading_client_pauses_server_and_buffer_stays_bounded() -> None:
    loop = asyncio.get_running_loop()
    high = 16 * 1024
    rec = recorder_class()
    payload = pattern(4 * 1024 * 1024)
    async with await start_echo_server(high_water=high, protocol_class=rec) as server:
        shrink(server)
        sock = await raw_client(server)
        with sock:
            sender = asyncio.create_task(loop.sock_sendall(sock, payload))
            (proto,) = [await _first_instance(rec)]
            await proto.paused.wait()
            # The server stopped reading from this peer and its buffer is bounded.
            assert proto.reading_paused
            assert proto.transport is not None
            assert not proto.transport.is_reading()  # type: ignore[attr-defined]
            stats = server.statistics()
            assert stats.paused_connections == 1
            assert stats.write_pauses >= 1
            assert high < stats.max_write_buffer <= high + MAX_READ
            # The client cannot have pushed everything: the pressure reached it.
            assert not sender.done()
            # Now read: every byte comes back, in order.
            echoed = await recv_exactly(sock, len(payload))
            await sender
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
            assert echoed == payload
        await proto.lost.wait()
    assert proto.data_while_paused == 0
    assert proto.events[:2] == ["pause", "resume"]
    assert proto.events == ["pause", "resume"] * (len(proto.events) // 2)
    final = server.statistics()
    assert final.bytes_received == len(payload)
    assert final.max_write_buffer <= high + MAX_READ


async def _first_instance(cls: type[Recorder]) -> Recorder:
    # connection_made runs on a loop iteration after the client's connect returns.
    for _ in range(1000):
        if cls.instances:
            return cls.instances[0]
        await asyncio.sleep(0)
    raise AssertionError("the server never made a protocol")


async def test_one_write_larger_than_high_pauses_client_and_completes() -> None:
    async with await start_echo_server() as server:
        shrink(server)
        async with open_echo_client(*address(server), high_water=16 * 1024) as client:
            sock = client.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            big = pattern(2 * 1024 * 1024)
            client.transport.write(big)
            assert client.protocol.writing_paused
            echoed = await client.protocol.received.readexactly(len(big))
            assert echoed == big
            await client.protocol.drain()
            assert not client.protocol.writing_paused


# CPython gh-127655: from 3.12.0 until 3.12.9 / 3.13.2 the selector transport's
# writelines() never called pause_writing (writelines used write() before 3.12).
WRITELINES_NEVER_PAUSES = (3, 12) <= sys.version_info[:3] < (3, 12, 9) or (
    (3, 13) <= sys.version_info[:3] < (3, 13, 2)
)


async def test_writelines_larger_than_high_pauses_client_and_completes() -> None:
    async with await start_echo_server() as server:
        shrink(server)
        async with open_echo_client(*address(server), high_water=16 * 1024) as client:
            sock = client.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            pieces = [pattern(100_000)[i:] for i in range(20)]
            client.transport.writelines(pieces)
            paused = client.protocol.writing_paused
            total = b"".join(pieces)
            assert await client.protocol.received.readexactly(len(total)) == total
    if WRITELINES_NEVER_PAUSES:
        assert not paused
        pytest.xfail("this Python's writelines() does not pause (CPython gh-127655)")
    assert paused


async def test_server_write_larger_than_high_pauses() -> None:
    # One recv() worth of data above high_water pauses at once (high=0 edge case too).
    rec = recorder_class()
    async with await start_echo_server(high_water=0, protocol_class=rec) as server:
        shrink(server)
        sock = await raw_client(server)
        with sock:
            loop = asyncio.get_running_loop()
            payload = pattern(1024 * 1024)
            sender = asyncio.create_task(loop.sock_sendall(sock, payload))
            proto = await _first_instance(rec)
            await proto.paused.wait()
            assert proto.reading_paused
            assert await recv_exactly(sock, len(payload)) == payload
            await sender


async def test_ten_megabytes_pipelined_through_pausing_server() -> None:
    size = 10 * 1024 * 1024
    async with await start_echo_server(high_water=16 * 1024) as server:
        # Large reads into a small send buffer: the server must pause now and then.
        shrink(server, receive=False)
        async with open_echo_client(
            *address(server), receive_limit=8 * 1024, high_water=16 * 1024
        ) as client:
            # Only the send buffer: shrinking SO_RCVBUF after the handshake makes
            # the kernel drop data already inside the advertised window.
            sock = client.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            result = await client.bulk(size)
        assert result.ok, result
        assert result.bytes_received == size
        stats = server.statistics()
        assert stats.bytes_received == size
        assert stats.write_pauses >= 1
        assert stats.max_write_buffer <= 16 * 1024 + MAX_READ


async def test_bulk_detects_corruption() -> None:
    # A relay that flips one byte: the bulk check must notice.
    flipped = False

    async def corrupt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal flipped
        try:
            while data := await reader.read(65536):
                if not flipped and len(data) > 10:
                    data = data[:10] + bytes([data[10] ^ 1]) + data[11:]
                    flipped = True
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(corrupt, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with open_echo_client("127.0.0.1", port) as client:
            result = await client.bulk(1024 * 1024)
    assert flipped
    assert result.bytes_received == result.bytes_sent
    assert not result.ok


# -- half-close, idle, limits ----------------------------------------------------------


async def test_half_close_flushes_everything_then_closes() -> None:
    loop = asyncio.get_running_loop()
    rec = recorder_class()
    payload = pattern(1024 * 1024)
    async with await start_echo_server(high_water=8192, protocol_class=rec) as server:
        shrink(server)
        sock = await raw_client(server)
        with sock:

            async def send_then_shut() -> None:
                await loop.sock_sendall(sock, payload)
                sock.shutdown(socket.SHUT_WR)

            sender = asyncio.create_task(send_then_shut())
            proto = await _first_instance(rec)
            await proto.paused.wait()  # the server is holding data for us
            echoed = await recv_until_eof(sock, len(payload))
            await sender
        assert echoed == payload
        await proto.lost.wait()


async def test_idle_peer_is_closed() -> None:
    loop = asyncio.get_running_loop()
    async with await start_echo_server(idle_timeout=0.2) as server:
        sock = await raw_client(server)
        with sock:
            assert await loop.sock_recv(sock, 10) == b""
        assert server.statistics().idle_timeouts == 1


async def test_active_then_idle_peer_is_closed_after_echoing() -> None:
    loop = asyncio.get_running_loop()
    async with await start_echo_server(idle_timeout=0.3) as server:
        sock = await raw_client(server)
        with sock:
            await loop.sock_sendall(sock, b"ping")
            assert await recv_exactly(sock, 4) == b"ping"
            assert await loop.sock_recv(sock, 10) == b""
        assert server.statistics().idle_timeouts == 1


async def test_peer_stalled_while_paused_is_closed() -> None:
    loop = asyncio.get_running_loop()
    rec = recorder_class()
    async with await start_echo_server(
        high_water=8192, idle_timeout=1.0, protocol_class=rec
    ) as server:
        shrink(server)
        sock = await raw_client(server)
        with sock:
            sender = asyncio.create_task(loop.sock_sendall(sock, pattern(2 * 1024 * 1024)))
            proto = await _first_instance(rec)
            await proto.paused.wait()
            # The client now neither reads nor can send: no progress either way.
            await proto.lost.wait()
            with pytest.raises(OSError):
                await sender
        stats = server.statistics()
        assert stats.idle_timeouts == 1
        assert stats.current_connections == 0


async def test_max_connections_refuses_and_counts() -> None:
    loop = asyncio.get_running_loop()
    async with await start_echo_server(max_connections=2) as server:
        host, port = address(server)
        async with open_echo_client(host, port) as a, open_echo_client(host, port) as b:
            assert await a.echo(b"a") == b"a"
            assert await b.echo(b"b") == b"b"
            refused = await raw_client(server)
            with refused, contextlib.suppress(ConnectionResetError):
                assert await loop.sock_recv(refused, 10) == b""
            stats = server.statistics()
            assert stats.refused_connections == 1
            assert stats.current_connections == 2
            assert stats.total_connections == 2
        # Slots free again once the clients have gone.
        for _ in range(1000):
            if server.statistics().current_connections == 0:
                break
            await asyncio.sleep(0)
        async with open_echo_client(host, port) as c:
            assert await c.echo(b"c") == b"c"
        assert server.statistics().total_connections == 3


# -- shutdown --------------------------------------------------------------------------


async def test_graceful_shutdown_flushes_received_data() -> None:
    loop = asyncio.get_running_loop()
    payload = pattern(512 * 1024)
    rec = recorder_class(received_target=len(payload))
    server = await start_echo_server(high_water=1024 * 1024, protocol_class=rec)
    shrink(server)
    host, port = address(server)
    sock = await raw_client(server)
    with sock:
        await loop.sock_sendall(sock, payload)
        proto = await _first_instance(rec)
        await proto.got_target.wait()  # the server holds everything, unread by us
        shutdown = asyncio.create_task(server.shutdown(grace=30))
        await asyncio.sleep(0)
        assert not server.is_serving()
        # New connections are refused once shutdown began.
        with pytest.raises(asyncnet.ConnectError, match="cannot connect to"):
            async with open_echo_client(host, port):
                pass
        echoed = await recv_until_eof(sock, len(payload))
        await shutdown
    assert echoed == payload
    assert server.statistics().current_connections == 0
    assert server.statistics().idle_timeouts == 0


async def test_shutdown_aborts_stalled_peers_after_grace() -> None:
    loop = asyncio.get_running_loop()
    rec = recorder_class()
    server = await start_echo_server(high_water=8192, protocol_class=rec)
    shrink(server)
    sock = await raw_client(server)
    with sock:
        sender = asyncio.create_task(loop.sock_sendall(sock, pattern(2 * 1024 * 1024)))
        proto = await _first_instance(rec)
        await proto.paused.wait()
        await server.shutdown(grace=0.1)  # the peer never reads: aborted
        assert proto.lost.is_set()
        with pytest.raises(OSError):
            await sender
    assert server.statistics().current_connections == 0


async def test_close_keeps_serving_open_connections() -> None:
    async with await start_echo_server() as server:
        async with open_echo_client(*address(server)) as client:
            server.close()
            assert not server.is_serving()
            assert await client.echo(b"still here") == b"still here"
        await server.wait_closed()


# -- TLS ---------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_echo(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with await start_echo_server(ssl=server_ctx, high_water=16 * 1024) as server:
        host, port = address(server)
        async with open_echo_client(host, port, ssl=client_ctx) as client:
            assert await client.echo(b"secret") == b"secret"
            result = await client.bulk(1024 * 1024)
            assert result.ok
        assert server.statistics().bytes_received == 6 + 1024 * 1024


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"high_water": 10, "low_water": 20}, "water marks need high >= low >= 0"),
        ({"high_water": -1}, "water marks need high >= low >= 0"),
        ({"idle_timeout": 0}, "idle_timeout must be positive or None"),
        ({"max_connections": 0}, "max_connections must be at least 1 or None"),
        ({"path": "/tmp/x.sock", "port": 1234}, "give either host/port or path, not both"),
    ],
)
async def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], rule: str) -> None:
    with pytest.raises(asyncnet.UsageError, match=re.escape(rule)):
        await start_echo_server(**kwargs)


async def test_address_in_use_is_connect_error() -> None:
    async with await start_echo_server() as server:
        with pytest.raises(asyncnet.ConnectError) as info:
            await start_echo_server(*address(server))
        assert isinstance(info.value.__cause__, OSError)


async def test_connect_refused_is_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(asyncnet.ConnectError) as info:
        async with open_echo_client("127.0.0.1", port):
            pass
    assert isinstance(info.value.__cause__, OSError)


async def test_server_closing_mid_echo_is_read_error() -> None:
    async def close_early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"ab")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(close_early, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with open_echo_client("127.0.0.1", port) as client:
            with pytest.raises(asyncnet.ReadError, match="server closed after echoing 2 of 3"):
                await client.echo(b"abc")
            with pytest.raises(asyncnet.ConnectionClosed, match="echo connection is closed"):
                await client.echo(b"again")


async def test_protocol_usable_with_plain_create_server() -> None:
    loop = asyncio.get_running_loop()
    factory: Callable[[], EchoServerProtocol] = EchoServerProtocol
    server = await loop.create_server(factory, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with open_echo_client("127.0.0.1", port) as client:
            assert await client.echo(b"plain") == b"plain"


# -- the shared receive buffer, against a transport that keeps what it is given -----


class KeepingTransport(asyncio.Transport):
    """Queues every write by reference, as asyncio 3.12+ does behind a backlog."""

    def __init__(self, *, send_immediately: bool) -> None:
        super().__init__()
        self.send_immediately = send_immediately
        self.sent: list[bytes] = []
        self.held: list[Any] = []

    def write(self, data: Any) -> None:
        if self.send_immediately and not self.held:
            self.sent.append(bytes(data))
        else:
            self.held.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(len(d) for d in self.held)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def _feed(proto: EchoServerProtocol, data: bytes) -> None:
    view = proto.get_buffer(-1)
    view[: len(data)] = data
    proto.buffer_updated(len(data))


def test_held_views_are_never_overwritten_by_later_reads() -> None:
    proto = EchoServerProtocol()
    transport = KeepingTransport(send_immediately=False)
    proto.connection_made(transport)
    first_buffer = proto.get_buffer(-1)
    chunks = [bytes([i]) * (COPY_MAX + 1 + i) for i in range(5)]
    for chunk in chunks:
        _feed(proto, chunk)
    # The first write was handed over as a view: the protocol must read into a
    # new buffer afterwards, and later writes (behind a backlog) are copies.
    assert proto.get_buffer(-1).obj is not first_buffer.obj
    assert isinstance(transport.held[0], memoryview)
    assert all(isinstance(d, bytes) for d in transport.held[1:])
    assert [bytes(d) for d in transport.held] == chunks
    assert proto.bytes_received == sum(map(len, chunks))


def test_small_reads_are_echoed_as_copies() -> None:
    proto = EchoServerProtocol()
    transport = KeepingTransport(send_immediately=False)
    proto.connection_made(transport)
    first_buffer = proto.get_buffer(-1)
    chunks = [bytes([i]) * (COPY_MAX - i) for i in range(5)]
    for chunk in chunks:
        _feed(proto, chunk)
    # Each small read went out as a private copy, so the transport may keep
    # it and the shared buffer is still safe to read into.
    assert proto.get_buffer(-1).obj is first_buffer.obj
    assert not any(isinstance(d, memoryview) for d in transport.held)
    assert [bytes(d) for d in transport.held] == chunks
    assert proto.bytes_received == sum(map(len, chunks))


def test_buffer_is_reused_while_writes_complete() -> None:
    proto = EchoServerProtocol()
    transport = KeepingTransport(send_immediately=True)
    proto.connection_made(transport)
    first_buffer = proto.get_buffer(-1)
    chunks = [bytes([i]) * 500 for i in range(5)]
    for chunk in chunks:
        _feed(proto, chunk)
    assert proto.get_buffer(-1).obj is first_buffer.obj
    assert transport.sent == chunks


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 700, COPY_MAX, COPY_MAX + 1, 9000, 70_000]),
            st.sampled_from(["send", "hold", "flush"]),
        ),
        max_size=30,
    )
)
def test_no_write_is_overwritten_whatever_the_transport_keeps(
    steps: list[tuple[int, str]],
) -> None:
    # The transport sends some writes at once and holds others by reference
    # until a flush; a held view of the shared buffer must never be read into.
    proto = EchoServerProtocol()
    transport = KeepingTransport(send_immediately=True)
    proto.connection_made(transport)
    expected = []
    for i, (size, how) in enumerate(steps):
        if how == "flush":
            transport.sent.extend(bytes(d) for d in transport.held)
            transport.held.clear()
        transport.send_immediately = how != "hold"
        chunk = bytes([i % 251]) * size
        expected.append(chunk)
        _feed(proto, chunk)
    transport.sent.extend(bytes(d) for d in transport.held)
    assert b"".join(transport.sent) == b"".join(expected)
    assert proto.bytes_received == sum(map(len, expected))

