"""Where a client connection's received bytes land, so that each is copied as few times as possible.

Three ways, picked per read by :class:`~asyncnet._http._connection.HTTPConnection`:

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
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, NamedTuple

from .._errors import LocalProtocolError

if TYPE_CHECKING:
    from ._connection import HTTPConnection

__all__ = ["DIRECT_MIN", "READ_SIZE", "BulkReceiver", "DirectBody", "read_buffer"]

#: Size of the shared read buffer: room for a head and a 64 KiB body in one
#: read, while every copy out of it stays below glibc's default 128 KiB mmap
#: threshold (a larger copy may be mapped, faulted in and unmapped each time).
READ_SIZE: Final = 124 * 1024

#: A body goes direct only when at least this much of it is still to come:
#: below that, the pieces are few and joining them costs as little.
DIRECT_MIN: Final = 128 * 1024

# A direct body is at most this large, so that a server's Content-Length
# alone never makes us set much memory aside (larger bodies are joined).
_DIRECT_MAX: Final = 16 * 1024 * 1024

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
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(READ_SIZE)
    return buffer


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

    def __init__(self, conn: HTTPConnection) -> None:
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
