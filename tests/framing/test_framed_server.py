"""start_server, open_connection, FramedProtocol over loopback sockets: TCP, Unix, TLS, IPv6."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile

import pytest

import asyncnet
from asyncnet import Connection, LengthPrefixed, Lines
from tests.support.servers import client_ssl_context, ipv6_available, server_ssl_context
from tests.support.waiting import wait_until


async def line_echo(conn: Connection[bytes]) -> None:
    async for line in conn:
        await conn.send(line.upper())


def port_of(server: asyncnet.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


# -- the basics, on every transport -----------------------------------------------------


async def test_line_server_and_client_round_trip_over_tcp() -> None:
    server = await asyncnet.start_server(line_echo, framing=Lines())
    async with server:
        conn = await asyncnet.open_connection("127.0.0.1", port_of(server), framing=Lines())
        async with conn:
            await conn.send(b"hello")
            conn.send_nowait(b"world")
            assert await conn.receive() == b"HELLO"
            assert await conn.receive() == b"WORLD"
            assert conn.peername[1] == port_of(server)
            assert conn.sockname[0] == "127.0.0.1"
            assert conn.extra("socket") is not None
            stats = conn.statistics()
            assert (stats.frames_sent, stats.frames_received) == (2, 2)
            assert stats.bytes_sent == len(b"hello\nworld\n")
        await wait_until(lambda: server.statistics().current_connections == 0, "closed")
        stats = server.statistics()
        assert (stats.total_connections, stats.frames_received, stats.frames_sent) == (1, 2, 2)
        assert stats.handler_errors == stats.protocol_errors == 0


async def test_async_with_start_server_and_open_connection_both_work() -> None:
    async with asyncnet.start_server(line_echo, framing=Lines()) as server:
        assert server.is_serving()
        async with asyncnet.open_connection(
            "127.0.0.1", port_of(server), framing=Lines()
        ) as conn:
            await conn.send(b"x")
            assert await conn.receive() == b"X"
    assert not server.is_serving()


async def test_unix_socket() -> None:
    with tempfile.TemporaryDirectory(prefix="h15-") as tmp:
        path = os.path.join(tmp, "s")
        async with (
            asyncnet.start_server(line_echo, framing=Lines(), path=path),
            asyncnet.open_connection(path=path, framing=Lines()) as conn,
        ):
            await conn.send(b"unix")
            assert await conn.receive() == b"UNIX"


async def test_tls() -> None:
    async def handler(conn: Connection[bytes]) -> None:
        assert conn.extra("ssl_object") is not None
        await line_echo(conn)

    async with asyncnet.start_server(handler, framing=Lines(), ssl=server_ssl_context()) as srv:
        async with asyncnet.open_connection(
            "127.0.0.1", port_of(srv), framing=Lines(), ssl=client_ssl_context(),
            server_hostname="localhost",
        ) as conn:
            assert conn.extra("peercert") is not None
            for i in range(50):
                await conn.send(b"tls %d" % i)
            assert [await conn.receive() for _ in range(50)] == [b"TLS %d" % i for i in range(50)]
        await wait_until(lambda: srv.statistics().current_connections == 0, "closed")
    assert srv.statistics().handler_errors == 0


async def test_tls_peers_that_finish_sending_leave_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # asyncio's TLS transport cannot half-close: it closes at the peer's EOF
    # and logs a warning when eof_received() asks to stay open. Neither style
    # may ask (one warning per client that ends its stream).
    class Upper(asyncnet.FramedProtocol[bytes]):
        def frame_received(self, frame: bytes) -> None:
            self.send_nowait(frame.upper())

    loop = asyncio.get_running_loop()
    callback_server = await loop.create_server(
        lambda: Upper(Lines()), "127.0.0.1", 0, ssl=server_ssl_context()
    )
    try:
        async with asyncnet.start_server(
            line_echo, framing=Lines(), ssl=server_ssl_context()
        ) as srv:
            with caplog.at_level(logging.WARNING, logger="asyncio"):
                for port in (port_of(srv), callback_server.sockets[0].getsockname()[1]):
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", port, ssl=client_ssl_context(), server_hostname="localhost"
                    )
                    writer.write(b"one\ntwo\n")
                    assert await reader.readexactly(8) == b"ONE\nTWO\n"
                    writer.close()  # close_notify: the server reads EOF on a boundary
                    assert await reader.read() == b""
                    await writer.wait_closed()
                await wait_until(lambda: srv.statistics().current_connections == 0, "closed")
            assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    finally:
        callback_server.close()
        await callback_server.wait_closed()


async def test_tls_connection_the_handler_closed_is_still_aborted_by_shutdown() -> None:
    # The handler closes, then the server closes again after it returns. A
    # second close() of asyncio's TLS transport drops its protocol, after
    # which abort() does nothing: shutdown would wait out the TLS shutdown
    # timeout (30 s) of a peer that never answers the close_notify.
    closed = asyncio.Event()

    async def close_at_once(conn: Connection[bytes]) -> None:
        await conn.receive()
        conn.close()
        closed.set()

    server = await asyncnet.start_server(close_at_once, framing=Lines(), ssl=server_ssl_context())
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port_of(server), ssl=client_ssl_context(), server_hostname="localhost"
    )
    try:
        writer.transport.pause_reading()  # never reads the server's close_notify
        writer.write(b"hello\n")
        await closed.wait()
        async with asyncio.timeout(10):
            await server.shutdown(0)
        assert server.statistics().current_connections == 0
    finally:
        writer.transport.abort()
        await server.shutdown(0)


@pytest.mark.skipif(not ipv6_available(), reason="::1 is not available")
async def test_ipv6() -> None:
    async with (
        asyncnet.start_server(line_echo, "::1", framing=Lines()) as server,
        asyncnet.open_connection("::1", port_of(server), framing=Lines()) as conn,
    ):
        await conn.send(b"six")
        assert await conn.receive() == b"SIX"
        assert conn.peername[0] == "::1"


async def test_connect_failure_is_connect_error() -> None:
    server = await asyncnet.start_server(line_echo)
    port = port_of(server)
    await server.shutdown(0)
    with pytest.raises(asyncnet.ConnectError) as info:
        await asyncnet.open_connection("127.0.0.1", port)
    assert isinstance(info.value.__cause__, OSError)


async def test_listening_on_a_used_port_is_connect_error() -> None:
    async with asyncnet.start_server(line_echo) as server:
        with pytest.raises(asyncnet.ConnectError, match="cannot listen on"):
            await asyncnet.start_server(line_echo, port=port_of(server))


# -- ends of streams --------------------------------------------------------------------


async def test_half_close_ends_async_for_and_the_handler_still_replies() -> None:
    async def count(conn: Connection[bytes]) -> None:
        n = 0
        async for _ in conn:
            n += 1
        await conn.send(b"got %d" % n)

    async with (
        asyncnet.start_server(count, framing=Lines()) as server,
        asyncnet.open_connection("127.0.0.1", port_of(server), framing=Lines()) as conn,
    ):
        for _ in range(3):
            conn.send_nowait(b"x")
        conn.send_eof()
        with pytest.raises(asyncnet.ConnectionClosed, match="closed for sending"):
            conn.send_nowait(b"after eof")
        assert await conn.receive() == b"got 3"
        with pytest.raises(asyncnet.EndOfStream):
            await conn.receive()
        # The end is sticky.
        with pytest.raises(asyncnet.EndOfStream):
            await conn.receive()


async def test_handler_return_flushes_everything_it_sent() -> None:
    payload = os.urandom(3 << 20)

    async def blast(conn: Connection[bytes]) -> None:
        conn.send_nowait(payload)

    big = LengthPrefixed(max_frame=4 << 20)
    async with (
        asyncnet.start_server(blast, framing=big) as server,
        asyncnet.open_connection("127.0.0.1", port_of(server), framing=big) as conn,
    ):
        assert await conn.receive() == payload
        with pytest.raises(asyncnet.EndOfStream):
            await conn.receive()


async def test_frame_too_large_reaches_the_handler_after_earlier_frames() -> None:
    seen: list[object] = []

    async def handler(conn: Connection[bytes]) -> None:
        try:
            async for line in conn:
                seen.append(line)
                await conn.send(b"ok " + line)
        except asyncnet.FrameTooLarge as exc:
            seen.append(exc)
            await conn.send(b"ERR line over %d bytes" % exc.limit)

    async with (
        asyncnet.start_server(handler, framing=Lines(8)) as server,
        asyncnet.open_connection("127.0.0.1", port_of(server), framing=Lines()) as conn,
    ):
        conn.send_nowait(b"a")
        conn.send_nowait(b"way too long for eight")
        assert await conn.receive() == b"ok a"
        assert await conn.receive() == b"ERR line over 8 bytes"
        with pytest.raises(asyncnet.EndOfStream):
            await conn.receive()
    assert seen[0] == b"a"
    assert isinstance(seen[1], asyncnet.FrameTooLarge)


async def test_eof_inside_a_frame_reaches_the_handler_as_incomplete_frame() -> None:
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def handler(conn: Connection[bytes]) -> None:
        try:
            async for _ in conn:
                pass
        except asyncnet.IncompleteFrame as exc:
            errors.append(exc)
        done.set()

    async with (
        asyncnet.start_server(handler, framing=LengthPrefixed()) as server,
        asyncnet.open_connection("127.0.0.1", port_of(server)) as raw,
    ):
        raw.send_nowait(b"\x00\x00\x00\x10only")
        raw.send_eof()
        await done.wait()
    assert isinstance(errors[0], asyncnet.IncompleteFrame)
    assert errors[0].received == 4


async def test_uncaught_protocol_error_is_counted_not_logged_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        asyncnet.start_server(line_echo, framing=Lines(4)) as server,
        asyncnet.open_connection("127.0.0.1", port_of(server)) as raw,
    ):
        with caplog.at_level(logging.INFO, logger="asyncnet"):
            raw.send_nowait(b"\x1b[31mtoo long\n")
            await wait_until(lambda: server.statistics().protocol_errors == 1, "counted")
    assert server.statistics().handler_errors == 0
    records = [r for r in caplog.records if r.name == "asyncnet"]
    assert records and all(r.levelno == logging.INFO for r in records)
    # Nothing the peer sent reaches the log unescaped.
    assert all("\x1b" not in r.getMessage() for r in records)


async def test_handler_exception_is_counted_logged_and_the_connection_aborted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(conn: Connection[bytes]) -> None:
        await conn.receive()
        raise RuntimeError("handler bug")

    async with asyncnet.start_server(broken, framing=Lines()) as server:
        async with asyncnet.open_connection(
            "127.0.0.1", port_of(server), framing=Lines()
        ) as conn:
            with caplog.at_level(logging.ERROR, logger="asyncnet"):
                await conn.send(b"boom")
                with pytest.raises((asyncnet.EndOfStream, asyncnet.ReadError)):
                    await conn.receive()
        await wait_until(lambda: server.statistics().current_connections == 0, "gone")
    assert server.statistics().handler_errors == 1
    (record,) = [r for r in caplog.records if r.name == "asyncnet"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("upstream", ["connect", "protocol"])
async def test_another_connections_error_in_the_handler_is_a_handler_error(
    caplog: pytest.LogCaptureFixture, upstream: str
) -> None:
    # The handler's own upstream fails (a ConnectError, a RemoteProtocolError
    # of its own making) while the client's connection is fine: the
    # handler's failure, counted and logged, not the client's departure or
    # the client's protocol error.
    dead_port = _unused_port()

    async def proxy(conn: Connection[bytes]) -> None:
        await conn.receive()
        if upstream == "connect":
            await asyncnet.open_connection("127.0.0.1", dead_port, framing=Lines())
        raise asyncnet.RemoteProtocolError("the upstream sent nonsense")

    async with asyncnet.start_server(proxy, framing=Lines()) as server:
        async with asyncnet.open_connection(
            "127.0.0.1", port_of(server), framing=Lines()
        ) as conn:
            with caplog.at_level(logging.ERROR, logger="asyncnet"):
                await conn.send(b"go")
                with pytest.raises((asyncnet.EndOfStream, asyncnet.ReadError)):
                    await conn.receive()
        await wait_until(lambda: server.statistics().current_connections == 0, "gone")
    stats = server.statistics()
    assert (stats.handler_errors, stats.protocol_errors) == (1, 0)
    (record,) = [r for r in caplog.records if r.name == "asyncnet"]
    assert record.levelno == logging.ERROR
    expected = asyncnet.ConnectError if upstream == "connect" else asyncnet.RemoteProtocolError
    assert record.exc_info is not None and isinstance(record.exc_info[1], expected)


# -- admission, idleness, shutdown ----------------------------------------------------


# Idle timeout, max_connections and shutdown(grace), on every transport:
# tests/framing/test_lifecycle_transports.py.


async def test_serve_forever_returns_when_closed_and_closes_when_cancelled() -> None:
    server = await asyncnet.start_server(line_echo)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not server.is_serving()
    await server.shutdown(0)


# -- backpressure, end to end ---------------------------------------------------------


async def test_slow_handler_pauses_reading_within_the_receive_limit() -> None:
    release = asyncio.Event()
    got: list[bytes] = []
    limit = 32 * 1024
    conns: list[Connection[bytes]] = []

    async def slow(conn: Connection[bytes]) -> None:
        conns.append(conn)
        await release.wait()
        async for frame in conn:
            got.append(frame)

    frames = [b"%08d" % i + b"x" * 1000 for i in range(8000)]  # ~8 MB
    async with (
        asyncnet.start_server(slow, framing=Lines(), receive_limit=limit) as server,
        asyncnet.open_connection("127.0.0.1", port_of(server), framing=Lines()) as conn,
    ):

        async def produce() -> None:
            for frame in frames:
                await conn.send(frame)
            conn.send_eof()

        producer = asyncio.create_task(produce())
        await wait_until(lambda: bool(conns) and conns[0].statistics().reading_paused,
                         "server paused reading")
        # Let the client push all it can: it finishes (the kernel buffers
        # took it) or blocks in drain(); the server holds only its limit.
        await wait_until(lambda: producer.done() or conn.statistics().write_buffer_size > 0,
                         "client sent all it could")
        for _ in range(20):
            await asyncio.sleep(0)
        stats = conns[0].statistics()
        assert stats.reading_paused
        # One read (256 KiB in asyncio) may land past the limit, never more.
        assert stats.queued_bytes + stats.partial_bytes <= limit + 256 * 1024
        assert stats.bytes_received < sum(len(f) + 1 for f in frames)
        release.set()
        await producer
        await wait_until(lambda: len(got) == len(frames), "all frames handled")
    assert got == frames
    assert server.statistics().frames_received == len(frames)


async def test_peer_that_does_not_read_makes_send_wait_at_high_water() -> None:
    high = 64 * 1024
    blocked = asyncio.Event()
    stats_at_block: list[asyncnet.ConnectionStatistics] = []
    frame = b"y" * 16 * 1024

    async def firehose(conn: Connection[bytes]) -> None:
        for _ in range(10_000):
            conn.send_nowait(frame)
            if conn.statistics().write_buffer_size > high:
                stats_at_block.append(conn.statistics())
                blocked.set()
            await conn.drain()
        # never reached: the client does not read

    async with (
        asyncnet.start_server(firehose, framing=LengthPrefixed(), high_water=high) as s,
        asyncnet.open_connection("127.0.0.1", port_of(s), receive_limit=1024),
    ):
        await blocked.wait()
        # Written while not paused, so at most one frame past the mark.
        assert stats_at_block[0].write_buffer_size <= high + len(frame) + 4


# -- the callback style ---------------------------------------------------------------


class UpperLines(asyncnet.FramedProtocol[bytes]):
    def __init__(self) -> None:
        super().__init__(Lines(8))
        self.errors: list[Exception] = []

    def frame_received(self, frame: bytes) -> None:
        self.send_nowait(frame.upper())

    def frame_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.send_nowait(b"ERR")
        assert self.transport is not None
        self.transport.close()


async def test_framed_protocol_in_a_plain_create_server() -> None:
    protocols: list[UpperLines] = []

    def factory() -> UpperLines:
        protocols.append(UpperLines())
        return protocols[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port, framing=Lines()) as conn:
            conn.send_nowait(b"ab")
            conn.send_nowait(b"cd")
            assert [await conn.receive(), await conn.receive()] == [b"AB", b"CD"]
            conn.send_nowait(b"much too long")
            assert await conn.receive() == b"ERR"
            with pytest.raises(asyncnet.EndOfStream):
                await conn.receive()
        assert isinstance(protocols[0].errors[0], asyncnet.FrameTooLarge)
        assert protocols[0].statistics().frames_received == 2
    finally:
        server.close()
        await server.wait_closed()


class CountingUpperLines(UpperLines):
    """UpperLines that counts its reads that gave frames and its transport's writes."""

    def __init__(self) -> None:
        super().__init__()
        self.reads_with_frames = 0
        self.frames_received_in_read = 0
        self.writes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        write = self.transport.write  # type: ignore[union-attr]

        def counting_write(data: bytes | bytearray | memoryview) -> None:
            self.writes += 1
            write(data)

        self.transport.write = counting_write  # type: ignore[union-attr]

    def frame_received(self, frame: bytes) -> None:
        if self.frames_received_in_read == 0:
            self.reads_with_frames += 1
        self.frames_received_in_read += 1
        super().frame_received(frame)

    def data_received(self, data: bytes) -> None:
        self.frames_received_in_read = 0
        super().data_received(data)


async def test_framed_protocol_writes_the_replies_to_one_read_together() -> None:
    protocols: list[CountingUpperLines] = []

    def factory() -> CountingUpperLines:
        protocols.append(CountingUpperLines())
        return protocols[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Pipelined requests, then one over the limit: the replies held for the
        # frames before the error go out before the error reply and the close.
        writer.write(b"".join(b"r%d\n" % i for i in range(10)) + b"much too long\n")
        replies = await reader.read()  # to EOF: the server closes after ERR
        writer.close()
        await writer.wait_closed()
        assert replies == b"".join(b"R%d\n" % i for i in range(10)) + b"ERR\n"
        protocol = protocols[0]
        assert protocol.frames_received == 10
        # One write per read that gave frames, plus the error reply.
        assert protocol.writes == protocol.reads_with_frames + 1
    finally:
        server.close()
        await server.wait_closed()


async def test_framed_protocol_stops_reading_while_the_peer_does_not_read() -> None:
    protocols: list[asyncnet.FramedProtocol[bytes]] = []

    class Amplifier(asyncnet.FramedProtocol[bytes]):
        def frame_received(self, frame: bytes) -> None:
            self.send_nowait(frame * 10)

    def factory() -> Amplifier:
        protocols.append(Amplifier(Lines(), high_water=32 * 1024))
        return protocols[-1]  # type: ignore[return-value]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port, framing=Lines(),
                                            receive_limit=1024) as conn:
            sender = asyncio.create_task(_send_many(conn, b"z" * 100, 50_000))
            await wait_until(lambda: bool(protocols) and protocols[0].reading_paused,
                             "server stopped reading")
            stats = protocols[0].statistics()
            # High water, plus the one reply that took the buffer past it: the
            # rest of the read's requests wait until the peer reads again.
            assert stats.write_buffer_size <= 32 * 1024 + 1000
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            conn.abort()
    finally:
        server.close()
        await server.wait_closed()


class BigReplies(asyncnet.FramedProtocol[bytes]):
    """Answers each line with a 64 KiB reply naming it; an over-long line gets ERR."""

    def __init__(self) -> None:
        super().__init__(Lines(max_length=100), high_water=64 * 1024)
        self.handled = 0
        self.handled_at_error: int | None = None

    def frame_received(self, frame: bytes) -> None:
        self.handled += 1
        self.send_nowait(frame.ljust(64 * 1024 - 1, b"."))

    def frame_error(self, exc: Exception) -> None:
        self.handled_at_error = self.handled
        self.send_nowait(b"ERR")
        self.close()


async def test_framed_protocol_leaves_a_reads_requests_unhandled_while_the_peer_does_not_read() -> (
    None
):
    # One write of many small requests, each calling for a large reply: the
    # replies to the whole read would be 64 MiB. While the peer does not read,
    # the protocol holds at most high water plus one reply; the requests wait
    # decoded, and are answered, in order, once it reads. The error the
    # decoder found after them comes after their replies.
    protocols: list[BigReplies] = []

    def factory() -> BigReplies:
        protocols.append(BigReplies())
        return protocols[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(b"%d\n" % i for i in range(1000)) + b"x" * 200 + b"\n")
        await wait_until(lambda: bool(protocols) and protocols[0].reading_paused,
                         "server stopped reading")
        protocol = protocols[0]
        assert protocol.statistics().write_buffer_size <= 64 * 1024 + 64 * 1024
        assert protocol.handled < 1000
        assert protocol.handled_at_error is None
        replies = await reader.read()  # to EOF: the server closes after ERR
        writer.close()
        await writer.wait_closed()
        lines = replies.split(b"\n")
        assert lines.pop() == b""
        assert lines[-1] == b"ERR"
        assert [line.rstrip(b".") for line in lines[:-1]] == [b"%d" % i for i in range(1000)]
        assert protocol.handled_at_error == 1000
    finally:
        server.close()
        await server.wait_closed()


async def _send_many(conn: Connection[bytes], frame: bytes, n: int) -> None:
    for _ in range(n):
        await conn.send(frame)


async def test_connection_protocols_keep_few_attributes_in_their_dicts() -> None:
    # CPython (3.11 to 3.13) shares one key table between a class's
    # instances for up to 30 attribute names; past that each instance gets
    # a dict of its own, about 2 KiB a connection and a dict lookup per
    # attribute read. The framed protocols keep their state in __slots__,
    # so what lands in the dict (the mixins' attributes) stays far below.
    protocols: list[object] = []

    async def handler(conn: Connection[bytes]) -> None:
        protocols.append(conn._protocol)
        await line_echo(conn)

    async with (
        asyncnet.start_server(handler, framing=Lines()) as srv,
        asyncnet.open_connection("127.0.0.1", port_of(srv), framing=Lines()) as conn,
    ):
        await conn.send(b"x")
        assert await conn.receive() == b"X"
        protocols.append(conn._protocol)
        for protocol in protocols:
            assert len(vars(protocol)) <= 15, sorted(vars(protocol))
