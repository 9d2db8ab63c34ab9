"""Flow control: the water-mark rule, an awaitable drain, and a bounded receive buffer.

Three small pieces for asyncnet's protocols:

* :class:`WaterMarks` is the pure decision (no I/O, no loop, no clock): fed the
  current buffered size, it says "pause now", "resume now" or "nothing".
  Pause happens strictly above ``high``; resume at or below ``low``; the two
  answers strictly alternate.
* :class:`FlowControlProtocol` turns a transport's ``pause_writing`` /
  ``resume_writing`` calls into :meth:`FlowControlProtocol.drain`, which any
  number of tasks may await at once.
* :class:`ReceiveBuffer` holds received bytes up to a limit and carries out
  the water-mark decisions as ``pause_reading`` / ``resume_reading`` on the
  transport, so a consumer that falls behind stops the peer instead of
  growing memory.

Every protocol that pauses reading decides with :class:`WaterMarks` and every
one that writes much waits with :class:`FlowControlProtocol`.
:class:`ReceiveBuffer` is the ready-made buffer for byte streams (the echo
client's); the HTTP client connection keeps its own body buffer on the same
rule (:class:`asyncnet._http._receive.ReceivingProtocol`), because a body
received straight into its final object counts as buffered without being a
chunk, and a caller reading a body whole never pauses the server.

The protocol callbacks follow asyncio's documented order::

    start -> connection_made [-> data_received]* [-> eof_received] -> connection_lost -> end

with ``pause_writing`` / ``resume_writing`` pairs anywhere between
``connection_made`` and ``connection_lost`` (including inside
``connection_made`` when it writes a lot).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from typing import Final

from ._errors import ConnectionClosed, StreamError, UsageError

__all__ = [
    "DEFAULT_HIGH",
    "DEFAULT_RECEIVE_LIMIT",
    "READ_SIZE",
    "FlowControlProtocol",
    "ReceiveBuffer",
    "WaterMarks",
    "shared_read_buffer",
]

# 64 KiB is asyncio's own default write high-water mark: large enough that a
# busy connection rarely pauses (a few socket sends' worth), small enough that
# ten thousand stalled peers cost well under a gigabyte. The low mark defaults
# to a quarter of it, as in asyncio, so a paused writer resumes with room for
# several writes instead of flapping around a single threshold.
DEFAULT_HIGH: Final = 64 * 1024

# The receive side uses the same size for the same reasons: it is a few
# socket reads' worth, so a consumer that keeps up never pauses the peer.
DEFAULT_RECEIVE_LIMIT: Final = 64 * 1024


class WaterMarks:
    """Pure hysteresis: pause strictly above high, resume at or below low.

    Feed :meth:`update` the current buffered size after every change; it returns
    ``True`` exactly when the caller must pause, ``False`` exactly when it must
    resume, and ``None`` otherwise, so the calls it asks for always alternate.
    """

    __slots__ = ("_high", "_low", "_paused")

    def __init__(self, high: int = DEFAULT_HIGH, low: int | None = None) -> None:
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise UsageError(f"water marks need high >= low >= 0, got high={high} low={low}")
        self._high = high
        self._low = low
        self._paused = False

    @property
    def high(self) -> int:
        """Pause when the buffered size is strictly greater than this."""
        return self._high

    @property
    def low(self) -> int:
        """Resume when the buffered size is at or below this."""
        return self._low

    @property
    def paused(self) -> bool:
        """Whether the last decision was to pause (and no resume has followed)."""
        return self._paused

    def update(self, size: int) -> bool | None:
        """Record the current buffered size and return the action it calls for.

        ``True``: pause now. ``False``: resume now. ``None``: keep the current state.
        """
        if self._paused:
            if size <= self._low:
                self._paused = False
                return False
        elif size > self._high:
            self._paused = True
            return True
        return None

    def __repr__(self) -> str:
        state = "paused" if self._paused else "flowing"
        return f"<WaterMarks high={self._high} low={self._low} {state}>"


class FlowControlProtocol(asyncio.Protocol):
    """An :class:`asyncio.Protocol` whose writers can ``await self.drain()``.

    The transport calls ``pause_writing`` when its write buffer goes above its
    high-water mark and ``resume_writing`` when it falls to the low one; this
    class turns those calls into a wait that any number of tasks may share.
    Subclasses that override ``connection_made``, ``pause_writing``,
    ``resume_writing`` or ``connection_lost`` must call ``super()``.
    """

    transport: asyncio.BaseTransport | None = None

    def __init__(self) -> None:
        # self.transport stays the class attribute's None until connection_made.
        self._writing_paused = False
        self._closed = False
        self._close_exc: BaseException | None = None
        # Plain futures resolved with None: a waiter learns *why* it woke by
        # looking at self._closed, so no future ever holds an exception that
        # could go unretrieved when its waiter was cancelled. Made on the
        # first wait: most connections never wait for a drain, and an empty
        # deque is 760 bytes and one more object for the cyclic garbage
        # collector to walk, for each of 10,000 open connections.
        self._drain_waiters: collections.deque[asyncio.Future[None]] | None = None

    @property
    def writing_paused(self) -> bool:
        """Whether the transport has asked us to stop writing."""
        return self._writing_paused

    @property
    def is_closed(self) -> bool:
        """Whether ``connection_lost`` has run."""
        return self._closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport; subclasses call ``super()`` first."""
        self.transport = transport

    def pause_writing(self) -> None:
        """Stop letting :meth:`drain` return until ``resume_writing``; idempotent."""
        if self._closed:
            return
        self._writing_paused = True

    def resume_writing(self) -> None:
        """Wake every task waiting in :meth:`drain`; idempotent."""
        self._writing_paused = False
        self._wake_drain_waiters()

    def connection_lost(self, exc: Exception | None) -> None:
        """Mark the protocol closed and release every drain waiter with the error."""
        self._closed = True
        self._close_exc = exc
        self._writing_paused = False
        self._wake_drain_waiters()

    def _wake_drain_waiters(self) -> None:
        waiters = self._drain_waiters
        if waiters is None:
            return
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _connection_closed_error(self) -> ConnectionClosed:
        exc = ConnectionClosed("the connection is closed")
        exc.__cause__ = self._close_exc
        return exc

    async def drain(self) -> None:
        """Wait until the transport accepts more data.

        Returns at once unless writing is paused. Raises
        :class:`~asyncnet.ConnectionClosed` once the connection is lost (its
        ``__cause__`` is the error the transport reported, if any), including
        for tasks that were already waiting when it was lost.
        """
        if self._closed:
            raise self._connection_closed_error()
        if not self._writing_paused:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._drain_waiters
        if waiters is None:
            waiters = self._drain_waiters = collections.deque()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            # A cancelled waiter is still queued (only a wake-up dequeues);
            # drop it now so a cancelled drain leaves nothing behind.
            if waiter.cancelled():
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
        if self._closed:
            raise self._connection_closed_error()


class ReceiveBuffer:
    """Bounded receive buffer of byte chunks driving ``pause_reading`` / ``resume_reading``.

    A protocol's ``data_received`` calls :meth:`feed`; a consumer task awaits
    :meth:`read`, :meth:`read_chunk` or :meth:`readexactly`. When more than
    ``limit`` bytes wait unread, reading from the transport is paused; it
    resumes once the consumer brings the buffer to ``low`` or below, and always
    before the consumer waits for data, so it can never wait on a paused peer.
    Only one task may read at a time.
    """

    def __init__(
        self,
        transport: asyncio.ReadTransport | None = None,
        *,
        limit: int = DEFAULT_RECEIVE_LIMIT,
        low: int | None = None,
    ) -> None:
        self._marks = WaterMarks(limit, low)
        self._transport: asyncio.ReadTransport | None = transport
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- producer side (the protocol) ------------------------------------------

    def set_transport(self, transport: asyncio.ReadTransport | None) -> None:
        """Attach the transport to pause and resume (carrying over a pause in force)."""
        self._transport = transport
        if transport is not None and self._marks.paused:
            transport.pause_reading()

    @property
    def limit(self) -> int:
        """Reading pauses when strictly more than this many bytes are buffered."""
        return self._marks.high

    @property
    def low(self) -> int:
        """Reading resumes when the buffer drops to this many bytes or fewer."""
        return self._marks.low

    @property
    def size(self) -> int:
        """Number of buffered, unread bytes."""
        return self._size

    @property
    def reading_paused(self) -> bool:
        """Whether this buffer has paused reading on the transport."""
        return self._marks.paused

    def at_eof(self) -> bool:
        """True when EOF was fed and every buffered byte has been read."""
        return self._eof and self._size == 0

    def feed(self, data: bytes) -> None:
        """Append received bytes; pause reading once more than ``limit`` are buffered."""
        if self._eof:
            raise StreamError("feed() called after feed_eof()")
        if not data:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._marks.update(self._size) is True and self._transport is not None:
            self._transport.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        """Record that the peer will send nothing more."""
        self._eof = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        """Make readers raise ``exc`` once the bytes buffered before it are consumed."""
        self._exception = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- consumer side ------------------------------------------------------------

    def _consumed(self) -> None:
        if self._marks.update(self._size) is False and self._transport is not None:
            self._transport.resume_reading()

    async def _wait_for_data(self, func_name: str) -> None:
        if self._waiter is not None:
            raise StreamError(f"{func_name}() called while another task is waiting for data")
        # Waiting with reading paused would wait forever. It cannot happen: a
        # reader waits only on an empty buffer, every read reports the new
        # size to the water marks, and size 0 is at or below any low mark, so
        # the read that emptied the buffer has already resumed the transport.
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _check_exception(self) -> None:
        if self._exception is not None:
            raise self._exception

    async def read(self, n: int = -1) -> bytes:
        """Return up to ``n`` buffered bytes (all of them if ``n`` is -1), waiting for at least one.

        Returns ``b""`` at EOF (or when ``n`` is 0).
        """
        if n == 0:
            return b""
        while not self._size:
            self._check_exception()
            if self._eof:
                return b""
            await self._wait_for_data("read")
        chunks = self._chunks
        if n < 0 or n >= self._size:
            # join() hands back a lone bytes chunk itself, without a copy.
            data = b"".join(chunks)
            chunks.clear()
            self._size = 0
        else:
            parts: list[bytes] = []
            need = n
            while need:
                chunk = chunks[0]
                if len(chunk) <= need:
                    parts.append(chunks.popleft())
                    need -= len(chunk)
                else:
                    parts.append(chunk[:need])
                    chunks[0] = chunk[need:]
                    need = 0
            data = b"".join(parts)
            self._size -= n
        self._consumed()
        return data

    async def read_chunk(self) -> bytes:
        """Return the next chunk exactly as it was fed (no copy), or ``b""`` at EOF."""
        while not self._size:
            self._check_exception()
            if self._eof:
                return b""
            await self._wait_for_data("read_chunk")
        chunk = self._chunks.popleft()
        self._size -= len(chunk)
        self._consumed()
        return chunk

    async def readexactly(self, n: int) -> bytes:
        """Return exactly ``n`` bytes; raise :class:`asyncio.IncompleteReadError` at an early EOF.

        Bytes are moved out of the buffer as they arrive, so asking for more
        than ``limit`` bytes still keeps the peer flowing instead of stalling.
        """
        if n < 0:
            raise UsageError("readexactly() needs n >= 0")
        if self._size >= n:
            return await self.read(n)
        collected = bytearray()
        while len(collected) < n:
            if not self._size:
                self._check_exception()
                if self._eof:
                    raise asyncio.IncompleteReadError(bytes(collected), n)
                # Whatever woke the wait (data, EOF or an error), read()
                # below takes it or raises it.
                await self._wait_for_data("readexactly")
            collected += await self.read(n - len(collected))
        return bytes(collected)

    def __repr__(self) -> str:
        state = "paused" if self._marks.paused else "reading"
        eof = " eof" if self._eof else ""
        return f"<ReceiveBuffer size={self._size} limit={self.limit} {state}{eof}>"


#: Size of the per-thread read buffer of :func:`shared_read_buffer`: room for
#: an HTTP head and a 64 KiB body in one read, while every copy out of it
#: stays below glibc's default 128 KiB mmap threshold (a larger copy may be
#: mapped, faulted in and unmapped each time).
READ_SIZE: Final = 124 * 1024

_local = threading.local()


def shared_read_buffer() -> tuple[bytearray, memoryview]:
    """Return the calling thread's read buffer and a view of all of it.

    asyncnet's HTTP connections read into it, and so do framed connections
    over transports other than asyncio's socket transport (TLS, uvloop), in
    place of asyncio's fresh 256 KiB ``bytes`` per ``recv`` for a plain
    Protocol. That size is past glibc's mmap threshold until some earlier
    free of a larger block raised it, an accident of the process's history:
    until then every read is an ``mmap``, an ``mremap``, an ``munmap`` and
    two page faults (strace -c and /proc/PID/stat of the line echo server,
    64-byte lines, concurrency 10: 5.1 system calls and 2.0 minor faults per
    message against 2.1 and 0, and about twice the kernel time per message,
    in processes where it happened). Over asyncio's socket transport a
    framed connection takes the plain path instead, with reads of
    ``READ_SIZE``, below that threshold (see
    ``FramedProtocol.connection_made``). One buffer and one view per thread,
    not per connection, also keep objects away from the cyclic garbage
    collector when 10,000 connections are open.

    Sharing is safe because asyncio (selector and TLS transports, uvloop)
    calls ``get_buffer``, fills the buffer and calls ``buffer_updated``
    with nothing else run in between, and every user copies what it keeps
    out of the buffer before ``buffer_updated`` returns.
    """
    shared: tuple[bytearray, memoryview] | None = getattr(_local, "read_buffer", None)
    if shared is None:
        buffer = bytearray(READ_SIZE)
        shared = _local.read_buffer = (buffer, memoryview(buffer))
    return shared
