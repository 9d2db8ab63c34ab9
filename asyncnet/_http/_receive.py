"""Where a client connection's received bytes land, so that each is copied as few times as possible.

Three ways, picked per read by :class:`ReceivingProtocol`, the receive side of
:class:`~asyncnet._http._connection.HTTPConnection` (which adds the exchange:
parsing, its states, waiting and sending):

* **The shared read buffer** (:func:`read_buffer`), for heads, small bodies
  and chunked bodies: one buffer per thread, reused by every connection,
  so that no read allocates (a fresh 256 KiB ``bytes`` per read, as asyncio
  makes for a plain protocol, is past glibc's mmap threshold and can cost a
  page fault per touched page). Bytes are copied out before the read returns.
* **A direct body** (:class:`DirectBody`): a ``Content-Length`` body that the
  caller waits for whole is received straight into the ``bytes`` object it
  will be given, so the kernel's copy is the only one.
* **Bulk reads** (:class:`BulkReceiver`): the rest of a long body that cannot
  go direct is read by the transport into objects it allocates, which is one
  copy less than the shared buffer's copy-out.

The body pieces wait in a deque until the caller takes them; a consumer that
falls behind pauses reading by the :class:`~asyncnet._flow.WaterMarks` rule.
(Not :class:`~asyncnet._flow.ReceiveBuffer`: a direct body is counted as
buffered without being a piece, and a caller reading the body whole never
pauses the server.)
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, NamedTuple, cast

from .._errors import LocalProtocolError
from .._flow import READ_SIZE, FlowControlProtocol, WaterMarks, shared_read_buffer
from ._headers import Headers
from ._parser import ResponseParser

__all__ = [
    "DIRECT_MIN",
    "READ_SIZE",
    "BulkReceiver",
    "DirectBody",
    "ReceivingProtocol",
    "read_buffer",
]

#: A body goes direct only when at least this much of it is still to come:
#: below that, the pieces are few and joining them costs as little.
DIRECT_MIN: Final = 128 * 1024

# A direct body is at most this large, so that a server's Content-Length
# alone never makes us set much memory aside (larger bodies are joined).
_DIRECT_MAX: Final = 16 * 1024 * 1024

# The first read of a response that will probably go direct, at most: room for
# a head, while the body stays in the kernel until it can be received in place.
_SHORT_FIRST_READ: Final = 8 * 1024

# A first read longer than this is split after the head (see buffer_updated).
_SPLIT_MIN: Final = 16 * 1024

# While at least this much of a Content-Length body is still to come and it is
# not received directly, the transport allocates each read (BulkReceiver).
_BULK_MIN: Final = 128 * 1024

_local = threading.local()


class _Allocator(NamedTuple):
    """How direct bodies get their memory, and how much of it may wait for data at once."""

    #: Make a ``bytes`` of the given size to receive a body into.
    make: Callable[[int], bytes]
    #: Bytes of direct bodies in flight in one thread, at most. This is memory
    #: set aside on the strength of a ``Content-Length`` alone.
    budget: int


def _zeroed_bytes(size: int) -> bytes:
    return bytes(size)


# bytes(n) writes zeros over its memory. While few direct bodies are in
# flight that memory is recycled warm; while many are, the zeroing is a pass
# over cold memory per body, and the transport's own reads plus one join
# cost less. So without uninitialized allocations, few bodies go direct.
_ZEROED: Final = _Allocator(_zeroed_bytes, 4 * 1024 * 1024)

_allocator: _Allocator | None = None


def _find_allocator() -> _Allocator:
    """Prefer ``PyBytes_FromStringAndSize(NULL, n)``, which leaves the contents unset.

    That is CPython's documented way to make a ``bytes`` to be filled in
    place, and how ``socket.recv`` and ``io`` make theirs: the kernel's copy
    is then the only write. Without ctypes, or off CPython, fall back to
    zeroed ``bytes``.
    """
    try:
        import ctypes

        prototype = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_char_p, ctypes.c_ssize_t)
        # A binding of our own: ctypes.pythonapi's shared attribute keeps
        # whatever argument and result types others gave it.
        make_bytes = prototype(("PyBytes_FromStringAndSize", ctypes.pythonapi))
    except (ImportError, AttributeError, OSError):
        return _ZEROED

    def uninitialized_bytes(size: int) -> bytes:
        body: bytes = make_bytes(None, size)
        return body

    return _Allocator(uninitialized_bytes, 128 * 1024 * 1024)


def allocator() -> _Allocator:
    """The allocator for direct bodies, found on first use."""
    global _allocator
    if _allocator is None:
        _allocator = _find_allocator()
    return _allocator


def read_buffer() -> bytearray:
    """Return the calling thread's shared read buffer.

    Sharing is safe because asyncio calls ``get_buffer``, fills the buffer and
    calls ``buffer_updated`` without running anything else in between, and the
    connection copies the bytes out before ``buffer_updated`` returns.
    """
    return _read_views()[0]


def _read_views() -> tuple[bytearray, memoryview, memoryview]:
    """The thread's shared read buffer, a view of all of it and one of its start.

    The views are shared too (no connection releases them): three objects per
    thread instead of three per connection, which matters to the cyclic
    garbage collector when 10,000 connections are open at once.
    """
    views: tuple[bytearray, memoryview, memoryview] | None = getattr(_local, "views", None)
    if views is None:
        buffer, whole = shared_read_buffer()  # the framed connections' too
        views = _local.views = (buffer, whole, whole[:_SHORT_FIRST_READ])
    return views


class DirectBody:
    """A body received into the memory of the ``bytes`` object that will hold it.

    The ``io.BytesIO`` owns a ``bytes`` from :func:`allocator` (its contents
    unset until received) whose memory :meth:`io.BytesIO.getbuffer` exposes
    without a copy; once no view of it remains, :meth:`io.BytesIO.getvalue`
    returns that very object. It is handed out only once every byte is
    written.
    """

    __slots__ = ("_counted", "_io", "_view", "filled", "size")

    def __init__(self, size: int) -> None:
        self._io: io.BytesIO | None = io.BytesIO(allocator().make(size))
        self._view: memoryview | None = self._io.getbuffer()
        self._counted = size
        _local.direct = getattr(_local, "direct", 0) + size
        #: Bytes received so far.
        self.filled = 0
        #: Size of the whole body.
        self.size = size

    @classmethod
    def start(cls, pieces: Iterable[bytes], buffered: int, left: int) -> DirectBody | None:
        """Begin a direct body whose first ``buffered`` bytes are ``pieces``, or return None.

        None when too little is left to gain, the body is too large, or too
        many direct bodies are in flight in this thread.
        """
        size = buffered + left
        if (
            left < DIRECT_MIN
            or size > _DIRECT_MAX
            or getattr(_local, "direct", 0) + size > allocator().budget
        ):
            return None
        body = cls(size)
        for piece in pieces:
            body.write(piece)
        return body

    def buffer(self) -> memoryview:
        """The part still to be filled, for ``get_buffer``."""
        assert self._view is not None
        return self._view[self.filled :]

    def received(self, nbytes: int) -> None:
        """Record that ``nbytes`` more were written into :meth:`buffer`."""
        self.filled += nbytes
        if self.filled == self.size:
            self._uncount()

    def write(self, data: bytes | memoryview) -> None:
        """Copy ``data`` in (bytes that arrived another way)."""
        assert self._view is not None
        end = self.filled + len(data)
        self._view[self.filled : end] = data
        self.received(len(data))

    def take(self) -> bytes:
        """Return the complete body; the object is spent afterwards."""
        body = self._io
        view = self._view
        if body is None or view is None or self.filled != self.size:
            # Not an assert: the unfilled part may hold stale process memory,
            # which must never reach a caller, even under ``python -O``.
            raise LocalProtocolError(
                f"direct body taken with {self.filled} of {self.size} bytes received"
            )
        self._io = self._view = None
        view.release()
        # No copy, unless a view of the buffer were somehow still alive.
        return body.getvalue()

    def discard(self) -> None:
        """Give up on the body (error, cancellation, lost connection)."""
        self._io = self._view = None
        self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            _local.direct -= self._counted
            self._counted = 0


class BulkReceiver(asyncio.Protocol):
    """Stands in for a connection, through ``transport.set_protocol``, while a long body streams in.

    The transport then reads into ``bytes`` it allocates (the plain
    :class:`asyncio.Protocol` path); every callback goes on to the connection.
    """

    __slots__ = ("conn",)

    def __init__(self, conn: ReceivingProtocol) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.conn.data_received(data)

    def eof_received(self) -> bool | None:
        return self.conn.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()


class ReceivingProtocol(FlowControlProtocol, asyncio.BufferedProtocol):
    """The receive side of a client connection: where each read lands, and the body buffer.

    A buffered protocol: reads go into the thread's shared buffer, or straight
    into a body's final ``bytes`` (:class:`DirectBody`) once the subclass
    starts one; a long body that is streamed instead is read through a
    :class:`BulkReceiver`. Body pieces wait in ``_chunks`` until taken.

    A subclass parses: it implements :meth:`_feed` (bytes for the parser),
    :meth:`_at_response_start` and :meth:`_direct_ended`.
    """

    # Narrowed from the base class: set in connection_made.
    transport: asyncio.Transport | None

    def __init__(self, parser: ResponseParser, body_buffer: int) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._parser = parser
        self._marks = WaterMarks(body_buffer)
        # The rule's fixed high mark, to skip asking it on reads that cannot pause.
        self._high = self._marks.high
        self._chunks: deque[bytes] = deque()
        self._buffered = 0  # body bytes received and not yet taken (direct ones too)
        self._last_activity = 0.0  # loop time of the latest received bytes
        self._direct: DirectBody | None = None  # being received
        self._direct_done: DirectBody | None = None  # complete, for _take_body
        self._bulk: BulkReceiver | None = None  # set while the transport delivers bytes
        self._rbytes, self._rbuf, short_view = _read_views()
        # What get_buffer offers when no direct body is being received: all of
        # the shared buffer, or its start for the first read after a body that
        # went direct (the next one probably will too).
        self._view = self._rbuf
        self._short_view = short_view
        self._max_head = parser.limits.max_head_size
        #: Times this connection paused reading for a slow consumer.
        self.read_pauses = 0
        #: Largest number of body bytes buffered at once (for tests and statistics).
        self.peak_buffered = 0
        #: Bodies received straight into their final object / through bulk reads.
        self.direct_bodies = 0
        self.bulk_bodies = 0

    # -- for the subclass -------------------------------------------------------

    def _feed(self, data: bytes | memoryview) -> None:
        """Parse received bytes (they may be a view of the shared buffer: copy what is kept)."""
        raise NotImplementedError

    def _at_response_start(self) -> bool:
        """True while no byte of the current response has arrived."""
        raise NotImplementedError

    def _direct_ended(self, trailers: Headers) -> None:
        """The direct body is complete: the response ended."""
        raise NotImplementedError

    # -- asyncio.BufferedProtocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports implement the
        # interface without subclassing asyncio.Transport.
        super().connection_made(cast(asyncio.Transport, transport))

    def get_buffer(self, sizehint: int) -> memoryview:
        direct = self._direct
        if direct is None:
            return self._view
        return direct.buffer()

    def buffer_updated(self, nbytes: int) -> None:
        view = self._rbuf
        if self._direct is not None:
            self._direct.received(nbytes)
            self._direct_received(nbytes)
        elif nbytes <= _SPLIT_MIN or not self._at_response_start():
            # A view: the parser copies what it keeps, once.
            self._feed(view[:nbytes])
        else:
            # The first read of a response: the head and a long piece of body
            # go to the parser as two objects, so the body is copied out of the
            # buffer once instead of copied out and then sliced off the head.
            end = self._rbytes.find(b"\r\n\r\n", 0, min(nbytes, self._max_head))
            if end < 0:
                self._feed(view[:nbytes])
            else:
                self._feed(view[: end + 4])
                # The head may have started a direct body; the rest may be empty.
                self._take_more(view[end + 4 : nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        # Bytes delivered whole: bulk reads, or a transport without get_buffer.
        if self._direct is not None:
            self._feed_direct(data)
        elif data:
            self._feed(data)

    def _take_more(self, data: bytes | memoryview) -> None:
        """The rest of a read, unless what came before it broke the connection."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.data_received(data)

    # -- direct bodies and bulk reads ---------------------------------------------

    def _start_direct(self) -> None:
        """Receive the rest of a long ``Content-Length`` body into its final object, if allowed."""
        left = self._parser.direct_body_bytes
        if left:
            direct = DirectBody.start(self._chunks, self._buffered, left)
            if direct is not None:
                self._chunks.clear()
                self._direct = direct
                # The next response probably goes direct too: read its head short.
                self._view = self._short_view
                self.direct_bodies += 1
                self._end_bulk()

    def _feed_direct(self, data: bytes | memoryview) -> None:
        """Copy bytes that arrived outside :meth:`get_buffer` into the direct body."""
        direct = self._direct
        assert direct is not None
        if not data:
            return  # the empty rest of a read split after the head
        take = min(len(data), direct.size - direct.filled)
        direct.write(data[:take])
        self._direct_received(take)
        if take < len(data):
            self._take_more(bytes(data[take:]))

    def _direct_received(self, nbytes: int) -> None:
        """Account for body bytes that went into the direct body."""
        self._last_activity = self._loop.time()
        self._buffered += nbytes
        if self._buffered > self.peak_buffered:
            self.peak_buffered = self._buffered
        end = self._parser.consume_direct_body(nbytes)
        if end is not None:
            self._direct_done = self._direct
            self._direct = None
            self._direct_ended(end.trailers)

    def _bulk_if_long(self) -> None:
        """Let the transport allocate each read while a long body is still to come."""
        transport = self.transport
        if (
            self._bulk is not None
            or transport is None
            or self._parser.direct_body_bytes < _BULK_MIN
        ):
            return
        bulk = BulkReceiver(self)
        try:
            transport.set_protocol(bulk)
        except NotImplementedError:
            return  # a transport that cannot switch protocols reads into the buffer
        self._bulk = bulk
        self.bulk_bodies += 1

    def _end_bulk(self) -> None:
        """Receive into the shared buffer again."""
        if self._bulk is not None:
            self._bulk = None
            transport = self.transport
            if transport is not None and not self._closed:
                transport.set_protocol(self)

    # -- the body buffer ------------------------------------------------------------

    def _buffer_changed(self) -> None:
        """Carry out the water-mark decision for what is buffered now."""
        decision = self._marks.update(self._buffered)
        if decision is not None:
            self.read_pauses += decision
            self._pause_or_resume(pause=decision)

    def _resume_now(self) -> None:
        """Resume reading if paused, whatever is buffered: before any wait, and at the end."""
        if self._marks.update(0) is False:
            self._pause_or_resume(pause=False)

    def _pause_or_resume(self, *, pause: bool) -> None:
        transport = self.transport
        if transport is not None and not self._closed:
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _take_body(self) -> bytes:
        """Return every body byte received and not taken yet, in one piece."""
        direct = self._direct_done
        if direct is not None:
            self._direct_done = None
            self._buffered = 0
            return direct.take()
        chunks = self._chunks
        if len(chunks) == 1:
            data = chunks.popleft()
        else:
            data = b"".join(chunks)
            chunks.clear()
        self._buffered = 0
        return data

    def _drop_body(self) -> None:
        """Forget the body (taken or not) and receive into the shared buffer, reading."""
        self._chunks.clear()
        self._buffered = 0
        if self._direct is not None:
            self._direct.discard()
            self._direct = None
        self._direct_done = None
        if self._bulk is not None:
            self._end_bulk()
        if self._marks.update(0) is False:  # as _resume_now, one call less per exchange
            self._pause_or_resume(pause=False)
