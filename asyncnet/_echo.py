"""A flow-controlled echo server and client built on :mod:`asyncnet._flow`.

The server couples the two directions of each connection: when the peer stops
reading and our write buffer goes above its high-water mark, we stop reading
from that peer (``pause_writing -> pause_reading``) until the buffer drains
(``resume_writing -> resume_reading``). Per connection, user-space memory is
therefore bounded by the high-water mark plus one read, whatever the peer does.

The client is the producer on the other side of that coupling: when its own
writes pause it stops producing, but it never stops reading, because a
client that also stopped reading would deadlock against a relaying server.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl as _ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from ._connect import open_stream
from ._errors import ConnectionClosed, ReadError, UsageError
from ._flow import (
    DEFAULT_HIGH,
    DEFAULT_RECEIVE_LIMIT,
    FlowControlProtocol,
    ReceiveBuffer,
    WaterMarks,
)
from ._lifetime import Opening, Site, caller_site, warn_unclosed
from ._server_core import ServedProtocol, ServerCore, check_listen_arguments

__all__ = [
    "BulkResult",
    "EchoClient",
    "EchoClientProtocol",
    "EchoServer",
    "EchoServerProtocol",
    "EchoServerStatistics",
    "open_echo_client",
    "start_echo_server",
]

# The size of one chunk the bulk mode produces: large enough that per-write
# overhead is negligible, small enough to stay well under the write high mark.
BULK_CHUNK_SIZE: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class EchoServerStatistics:
    """A snapshot of an :class:`EchoServer`'s counters, taken by ``statistics()``.

    Counts are totals since the server started unless named ``current``/``paused``.
    """

    #: Connections open now (refused ones are never counted here).
    current_connections: int
    #: Connections accepted and served since start.
    total_connections: int
    #: Connections closed at once: ``max_connections`` were open, or shutdown had begun.
    refused_connections: int
    #: Bytes read from peers.
    bytes_received: int
    #: Bytes echoed: received, less what is still queued and what the server
    #: discarded when it aborted a connection (shutdown, idle timeout). When a
    #: peer resets the connection, asyncio drops its unsent bytes before the
    #: protocol can count them, so those are included.
    bytes_sent: int
    #: Times a connection's write buffer went above the high-water mark.
    write_pauses: int
    #: Connections whose reading is paused now because their peer is not reading.
    paused_connections: int
    #: Largest write buffer of any connection at the moment it paused, in bytes.
    max_write_buffer: int
    #: Connections closed because their peer made no progress for ``idle_timeout``.
    idle_timeouts: int


# Bytes read per recv_into(): the same as asyncio's selector transport reads
# per recv() for a plain Protocol, so the bound stays "high water + one read".
READ_SIZE: Final = 256 * 1024

# Reads up to this size are echoed as a copy: copying 1 KiB cost less than a
# memoryview slice plus the two write-buffer checks a view of the shared buffer
# needs (about 100 ns less per read), 4 KiB already more. A copy may stay
# queued in the transport as long as it likes, and at this size it comes from
# the heap, never from freshly mapped memory.
COPY_MAX: Final = 2 * 1024


def _not_connected(data: bytes | bytearray | memoryview) -> None:
    raise ConnectionClosed("data arrived before connection_made()")


class _SharedReadBuffer:
    """The buffer a server's connections receive into, one at a time.

    Reading into a preallocated buffer avoids allocating (and, past glibc's
    mmap threshold, mapping and unmapping) a fresh ``bytes`` for every read.
    One buffer serves every connection of a server because asyncio calls
    ``get_buffer``, fills it and calls ``buffer_updated`` without yielding in
    between, and the echo hands the bytes on before returning.
    """

    __slots__ = ("data", "view")

    def __init__(self) -> None:
        self.data = bytearray(READ_SIZE)
        self.view = memoryview(self.data)

    def replace(self) -> None:
        # The transport kept a reference to the current buffer; leave it that one.
        self.data = bytearray(READ_SIZE)
        self.view = memoryview(self.data)


# Placeholder until a protocol has its buffer; allocates nothing.
_NO_BUFFER: Final = _SharedReadBuffer.__new__(_SharedReadBuffer)


class EchoServerProtocol(ServedProtocol, FlowControlProtocol, asyncio.BufferedProtocol):
    """Echoes every byte back to its sender, pausing reads while the sender is not reading.

    Usable on its own with :meth:`asyncio.loop.create_server`, or through
    :func:`start_echo_server`, which adds connection limits and statistics.
    ``high_water`` / ``low_water`` are the write-buffer marks (pause strictly
    above high, resume at or below low); ``idle_timeout`` closes a peer that
    neither sends nor reads for that many seconds.
    """

    _server: EchoServer | None

    def __init__(
        self,
        *,
        high_water: int = DEFAULT_HIGH,
        low_water: int | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__()
        marks = WaterMarks(high_water, low_water)  # validates high >= low >= 0
        if idle_timeout is not None and not idle_timeout > 0:
            raise UsageError(f"idle_timeout must be positive or None, got {idle_timeout!r}")
        self.high_water = marks.high
        self.low_water = marks.low
        self.idle_timeout = idle_timeout
        self.bytes_received = 0
        self.write_pauses = 0
        self.max_write_buffer = 0
        self._discarded = 0
        self._transport: asyncio.Transport | None = None
        self._write: Callable[[bytes | bytearray | memoryview], None] = _not_connected
        self._buffered: Callable[[], int] = int
        # False only while the transport's write buffer is known to be empty:
        # our writes are the only thing that fills it.
        self._backlog = True
        # Set by the server (shared) or in connection_made (own buffer).
        self._read_buffer: _SharedReadBuffer = _NO_BUFFER

    # -- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Apply the water marks and start serving (or refuse, if the server is full)."""
        super().connection_made(transport)
        # Not an isinstance check: uvloop's transports are not asyncio.Transport
        # subclasses, yet implement the same interface.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        # Bound methods, cached: buffer_updated is the hot path.
        self._write = transport.write
        self._buffered = transport.get_write_buffer_size
        if self._read_buffer is _NO_BUFFER:
            self._read_buffer = _SharedReadBuffer()
        if self._start_serving(transport, self.idle_timeout):
            transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Return the buffer the transport reads into (one read's worth)."""
        # A memoryview, not the bytearray: asyncio's TLS layer fills the buffer
        # in pieces through slices of it, and a bytearray slice is a copy.
        return self._read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        """Write the bytes just read straight back; the water marks do the rest."""
        if nbytes <= COPY_MAX:
            self._write(self._read_buffer.data[:nbytes])
            # Whether the copy went out whole is not checked: assume it did not.
            self._backlog = True
        elif self._backlog and self._buffered():
            # Behind a backlog the transport queues what it is given: hand it
            # a copy of exactly these bytes, never the reusable buffer.
            self._write(self._read_buffer.view[:nbytes].tobytes())
        else:
            self._write(self._read_buffer.view[:nbytes])
            if self._buffered():
                # Not all of it went out and the transport may hold a view of
                # the shared buffer (asyncio 3.12+ and uvloop do): let it keep
                # that buffer and read into a new one from now on.
                self._read_buffer.replace()
                self._backlog = True
            else:
                self._backlog = False
        self.bytes_received += nbytes

    def data_received(self, data: bytes) -> None:
        """Write the data straight back (for transports that deliver ``bytes``)."""
        self._write(data)
        self._backlog = True
        self.bytes_received += len(data)

    def eof_received(self) -> bool:
        """The peer finished sending: close once everything received has been echoed."""
        # Returning False makes the transport call close(), which flushes the
        # write buffer before it closes the socket: half-close loses nothing.
        return False

    def pause_writing(self) -> None:
        """The peer is not keeping up: stop reading from it until it does."""
        super().pause_writing()
        transport = self._transport
        if transport is None:
            return
        self.write_pauses += 1
        size = transport.get_write_buffer_size()
        if size > self.max_write_buffer:
            self.max_write_buffer = size
        transport.pause_reading()

    def resume_writing(self) -> None:
        """The peer drained our buffer to the low mark: read from it again."""
        super().resume_writing()
        if self._transport is not None:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the idle timer and report to the server."""
        super().connection_lost(exc)
        self._transport = None
        self._stop_serving()

    # -- used by the server -----------------------------------------------------------

    @property
    def reading_paused(self) -> bool:
        """Whether reading from the peer is paused because it is not reading."""
        # Reading is paused exactly while writing is: pause_writing and
        # resume_writing carry the one decision to both directions.
        return self.writing_paused

    @property
    def bytes_unsent(self) -> int:
        """Bytes echoed but still waiting in the write buffer."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def _progress(self) -> int:
        # Everything received is echoed, so bytes in measure both directions.
        return self.bytes_received

    def _counters(self) -> dict[str, int]:
        transport = self._transport
        live = transport is not None
        # Once the connection has ended, what never went out is what we discarded.
        unsent = self.bytes_unsent if live else self._discarded
        return {
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_received - unsent,
            "write_pauses": self.write_pauses,
            "paused_connections": int(live and self.reading_paused),
            "max_write_buffer": self.max_write_buffer,
        }

    def _shutting_down(self) -> None:
        # close() stops reading and flushes what was already echoed, then closes.
        if self._transport is not None:
            self._transport.close()

    def _abort(self) -> None:
        transport = self._transport
        if transport is not None:
            self._discarded += transport.get_write_buffer_size()
            transport.abort()


class EchoServer(ServerCore[EchoServerStatistics]):
    """A running echo server: ``async with`` it, read its ``statistics()``, shut it down.

    Returned by :func:`start_echo_server`, already accepting. On
    ``shutdown(grace)`` each open connection stops reading and closes once
    everything it already received has been echoed; whatever has not
    finished after ``grace`` seconds is aborted. Leaving the ``async with``
    block calls ``shutdown(0)``: stop accepting, flush what can be flushed
    at once, abort the rest.
    """

    _peak_counters = frozenset({"max_write_buffer"})

    def __init__(
        self,
        *,
        high_water: int,
        low_water: int | None,
        idle_timeout: float | None,
        max_connections: int | None,
        protocol_class: type[EchoServerProtocol],
    ) -> None:
        marks = WaterMarks(high_water, low_water)
        super().__init__(
            EchoServerStatistics, max_connections=max_connections, idle_timeout=idle_timeout
        )
        self.high_water = marks.high
        self.low_water = marks.low
        self._protocol_class = protocol_class
        self._read_buffer = _SharedReadBuffer()

    def _make_protocol(self) -> EchoServerProtocol:
        protocol = self._protocol_class(
            high_water=self.high_water,
            low_water=self.low_water,
            idle_timeout=self.idle_timeout,
        )
        protocol._server = self
        protocol._read_buffer = self._read_buffer
        return protocol

    def statistics(self) -> EchoServerStatistics:
        """Return a frozen snapshot of the server's counters."""
        return self._snapshot()


def start_echo_server(
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    path: str | None = None,
    high_water: int = DEFAULT_HIGH,
    low_water: int | None = None,
    idle_timeout: float | None = None,
    max_connections: int | None = None,
    ssl: _ssl.SSLContext | None = None,
    reuse_port: bool = False,
    backlog: int = 100,
    protocol_class: type[EchoServerProtocol] = EchoServerProtocol,
) -> Opening[EchoServer]:
    """Start an echo server on ``host:port`` (or the Unix socket ``path``).

    Use as ``server = await start_echo_server(...)`` or ``async with
    start_echo_server(...) as server`` (shut down on exit). ``port=0`` picks
    a free port (see ``server.sockets``). Raises
    :class:`~asyncnet.ConnectError` if the address cannot be bound.
    """
    check_listen_arguments(host, port, path, reuse_port)
    server = EchoServer(
        high_water=high_water,
        low_water=low_water,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        protocol_class=protocol_class,
    )
    return server._opening(server._make_protocol, host, port, path, ssl, backlog, reuse_port)


# -- client ---------------------------------------------------------------------------


class EchoClientProtocol(FlowControlProtocol):
    """The client side: writes wait in ``drain()`` when paused, reads always continue.

    Received bytes go to :attr:`received`, a bounded :class:`~asyncnet.ReceiveBuffer`;
    the connection's end (EOF or error) is recorded there too.
    """

    def __init__(self, *, receive_limit: int = DEFAULT_RECEIVE_LIMIT) -> None:
        super().__init__()
        self.received = ReceiveBuffer(limit=receive_limit)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Attach the receive buffer to the transport."""
        super().connection_made(transport)
        self.received.set_transport(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        """Buffer the echoed bytes (pausing reads only if the reader falls behind)."""
        self.received.feed(data)

    def eof_received(self) -> None:
        """The server closed its side; readers see EOF once the buffer is empty."""
        self.received.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake readers with EOF, or with :class:`~asyncnet.ReadError` after an error."""
        super().connection_lost(exc)
        self.received.set_transport(None)
        if exc is not None:
            error = ReadError(f"connection lost: {exc}")
            error.__cause__ = exc
            self.received.set_exception(error)
        else:
            self.received.feed_eof()
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk transfer sent and got back; :attr:`ok` when they are identical."""

    #: Bytes written to the server.
    bytes_sent: int
    #: Bytes read back from the server.
    bytes_received: int
    #: SHA-256 (hex) of everything sent.
    sent_sha256: str
    #: SHA-256 (hex) of everything received.
    received_sha256: str
    #: Seconds from the start of the transfer until the last byte came back.
    seconds: float

    @property
    def ok(self) -> bool:
        """True when exactly the same bytes came back, in the same order."""
        return (
            self.bytes_sent == self.bytes_received and self.sent_sha256 == self.received_sha256
        )


class EchoClient:
    """A connection to an echo server: :meth:`echo` for round trips, :meth:`bulk` for streams.

    Created by :func:`open_echo_client`. Round trips are serialized; a
    concurrent :meth:`echo` waits its turn.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: EchoClientProtocol,
        *,
        created_at: Site | None = None,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lock = asyncio.Lock()
        self._created_at = created_at

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and not transport.is_closing():
            warn_unclosed("asyncnet.EchoClient", self._created_at, self)

    async def __aenter__(self) -> EchoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def protocol(self) -> EchoClientProtocol:
        """The underlying protocol."""
        return self._protocol

    @property
    def transport(self) -> asyncio.Transport:
        """The underlying transport."""
        return self._transport

    def _check_open(self) -> None:
        if self._protocol.is_closed or self._transport.is_closing():
            raise ConnectionClosed("the echo connection is closed")

    async def echo(self, data: bytes) -> bytes:
        """Send ``data`` and return the same number of bytes read back.

        Raises :class:`~asyncnet.ReadError` if the server closes before that
        many bytes came back.
        """
        async with self._lock:
            self._check_open()
            # Nothing of ours is in flight here, so waiting for drain cannot
            # starve the server of a reader.
            await self._protocol.drain()
            self._transport.write(data)
            try:
                return await self._protocol.received.readexactly(len(data))
            except asyncio.IncompleteReadError as exc:
                raise ReadError(
                    f"server closed after echoing {len(exc.partial)} of {len(data)} bytes"
                ) from exc

    async def bulk(self, nbytes: int, *, chunk_size: int = BULK_CHUNK_SIZE) -> BulkResult:
        """Stream ``nbytes`` to the server while reading the echo, and compare both.

        The writer waits in ``drain()`` whenever writing is paused; the reader
        never stops, so the transfer cannot deadlock against a relaying server.
        Every chunk is distinct, so a reordering changes the hash.
        """
        if nbytes < 0 or chunk_size < 8:
            raise UsageError("bulk() needs nbytes >= 0 and chunk_size >= 8")
        async with self._lock:
            self._check_open()
            start = time.perf_counter()
            sent_hash = hashlib.sha256()
            received_hash = hashlib.sha256()
            received = 0
            block = os.urandom(chunk_size)
            protocol = self._protocol
            transport = self._transport

            async def produce() -> None:
                remaining = nbytes
                index = 0
                while remaining > 0:
                    await protocol.drain()
                    chunk = index.to_bytes(8, "big") + block[8:]
                    if remaining < len(chunk):
                        chunk = chunk[:remaining]
                    sent_hash.update(chunk)
                    transport.write(chunk)
                    remaining -= len(chunk)
                    index += 1

            async def consume() -> None:
                nonlocal received
                buffer = protocol.received
                while received < nbytes:
                    chunk = await buffer.read(nbytes - received)
                    if not chunk:
                        return
                    received_hash.update(chunk)
                    received += len(chunk)

            producer = asyncio.create_task(produce())
            try:
                await consume()
            except BaseException:
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
                raise
            if received < nbytes or not producer.done():
                # The server ended the stream early: report what came back.
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
            else:
                await producer
            return BulkResult(
                bytes_sent=nbytes,
                bytes_received=received,
                sent_sha256=sent_hash.hexdigest(),
                received_sha256=received_hash.hexdigest(),
                seconds=time.perf_counter() - start,
            )

    async def aclose(self) -> None:
        """Close the connection and wait until it is gone.

        Bytes still unsent are discarded (their echo could no longer be
        read), so closing never waits on a peer that stopped reading.
        """
        transport = self._transport
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()
        await asyncio.shield(self._protocol.closed)


def open_echo_client(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    path: str | None = None,
    ssl: _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    connect_timeout: float | None = 10.0,
    receive_limit: int = DEFAULT_RECEIVE_LIMIT,
    high_water: int = DEFAULT_HIGH,
    low_water: int | None = None,
) -> Opening[EchoClient]:
    """Connect to an echo server and return an :class:`EchoClient`.

    Use as ``client = await open_echo_client(...)`` (then ``await
    client.aclose()``) or ``async with open_echo_client(...) as client``
    (closed on exit). Connection failures raise
    :class:`~asyncnet.ConnectError` (or :class:`~asyncnet.ConnectTimeout`),
    with the ``OSError`` as the cause.
    """
    marks = WaterMarks(high_water, low_water)
    # The caller's line, for the ResourceWarning of a client never closed.
    site = caller_site()

    def factory() -> EchoClientProtocol:
        return EchoClientProtocol(receive_limit=receive_limit)

    async def connect() -> EchoClient:
        transport, protocol = await open_stream(
            factory,
            host,
            port,
            path=path,
            ssl_context=ssl,
            server_hostname=server_hostname,
            connect_timeout=connect_timeout,
            # What OpenSSL says when our own ClientHello comes back: an echo
            # server without TLS does exactly that.
            hello_echoed=(
                "the server sent the TLS hello straight back: it echoes in plain text, "
                "not TLS (start it with --certfile, or connect without TLS)"
            ),
        )
        transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=marks.high, low=marks.low)
        return EchoClient(transport, protocol, created_at=site)

    return Opening(connect)
