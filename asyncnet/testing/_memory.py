"""An in-memory transport pair that honours water marks, and ``memory_connection_pair``.

Each side's write buffer holds what its peer has not read yet: bytes move to
the peer's protocol (``data_received``, in reads of at most ``READ_SIZE``) on
the next loop iteration, unless the peer paused reading. So a peer that stops
reading makes the writer's buffer grow past its high-water mark and
``pause_writing`` fire, exactly as with a socket whose kernel buffers are
full, but deterministically and without sockets.

States of one side: open -> (write_eof: EOF queued behind the data) ->
closing (close: flush, then EOF to the peer, then connection_lost) -> closed.
``abort`` drops the buffer and ends both sides at once, the peer with a
:class:`ConnectionResetError` (what a TCP reset gives).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Final

from .._connection import Connection, ConnectionProtocol
from .._flow import DEFAULT_HIGH, DEFAULT_RECEIVE_LIMIT
from .._framing import Framing, Raw

__all__ = ["MemoryTransport", "memory_connection_pair"]

# The most one data_received call delivers: one socket read's worth.
READ_SIZE: Final = 64 * 1024


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        super().__init__({"peername": ("memory", name), "sockname": ("memory", name)})
        self._loop = loop
        self._name = name
        self._protocol: asyncio.Protocol | None = None
        self.peer: MemoryTransport | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._high = DEFAULT_HIGH
        self._low = DEFAULT_HIGH // 4
        self._writing_paused = False
        self._reading_paused = False
        self._eof_queued = False  # write_eof() or close(): EOF follows the data
        self._eof_delivered = False
        self._closing = False
        self._lost = False
        self._flush_scheduled = False

    # -- wiring ----------------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_queued or self._lost:
            return  # as asyncio does after close: dropped
        if not data:
            return
        self._chunks.append(bytes(data))
        self._size += len(data)
        if not self._writing_paused and self._size > self._high and self._protocol is not None:
            self._writing_paused = True
            self._protocol.pause_writing()
        self._schedule_flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self._eof_queued = True
        self._schedule_flush()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        self._high, self._low = high, low

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        peer = self.peer
        if self._lost or peer is None:
            return
        receiver = peer._protocol
        while self._chunks and not peer._reading_paused and not peer._lost:
            parts: list[bytes] = []
            size = 0
            while self._chunks and size < READ_SIZE:
                chunk = self._chunks.popleft()
                if size + len(chunk) > READ_SIZE:
                    keep = READ_SIZE - size
                    self._chunks.appendleft(chunk[keep:])
                    chunk = chunk[:keep]
                parts.append(chunk)
                size += len(chunk)
            self._size -= size
            if receiver is not None:
                receiver.data_received(b"".join(parts))
        if peer._lost:
            self._chunks.clear()
            self._size = 0
        if self._writing_paused and self._size <= self._low and self._protocol is not None:
            self._writing_paused = False
            self._protocol.resume_writing()
        if self._chunks:
            return  # the peer paused reading: resume_reading will flush again
        if self._eof_queued and not self._eof_delivered and not peer._lost:
            self._eof_delivered = True
            keep_open = receiver.eof_received() if receiver is not None else False
            if not keep_open:
                peer.close()
        if self._closing:
            self._connection_lost(None)

    # -- reading -----------------------------------------------------------------------

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.peer is not None:
                self.peer._schedule_flush()

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    # -- closing ------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        self._eof_queued = True
        self._reading_paused = True
        self._schedule_flush()

    def abort(self) -> None:
        self._abort_with(ConnectionResetError("connection reset by the memory peer"))

    def _abort_with(self, exc: Exception) -> None:
        """Drop both ends now; the peer's protocol gets ``exc`` as the reason."""
        if self._lost:
            return
        self._closing = True
        self._chunks.clear()
        self._size = 0
        self._connection_lost(None)
        peer = self.peer
        if peer is not None and not peer._lost:
            peer._closing = True
            peer._chunks.clear()
            peer._size = 0
            peer._connection_lost(exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        protocol = self._protocol
        if protocol is not None:
            self._loop.call_soon(protocol.connection_lost, exc)

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._name} buffered={self._size}>"


def memory_connection_pair(
    framing: Framing[Any] | None = None,
    *,
    high_water: int = DEFAULT_HIGH,
    low_water: int | None = None,
    receive_limit: int = DEFAULT_RECEIVE_LIMIT,
    receive_low: int | None = None,
) -> tuple[Connection[Any], Connection[Any]]:
    """Return two :class:`~asyncnet.Connection` objects connected in memory.

    Call it from a coroutine (it needs the running loop). Both ends use
    ``framing`` and the same limits; the transport between them pauses the
    writer when the reader stops reading, so backpressure behaves as over a
    socket. Close both (``aclose``) when done.
    """
    loop = asyncio.get_running_loop()
    chosen = framing if framing is not None else Raw()
    left = MemoryTransport(loop, "left")
    right = MemoryTransport(loop, "right")
    left.peer, right.peer = right, left
    conns = []
    for transport in (left, right):
        protocol: ConnectionProtocol[Any] = ConnectionProtocol(
            chosen,
            high_water=high_water,
            low_water=low_water,
            receive_limit=receive_limit,
            receive_low=receive_low,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        conns.append(Connection(transport, protocol))
    return conns[0], conns[1]
