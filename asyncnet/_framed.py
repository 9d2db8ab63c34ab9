"""Framed connections: a framer on a flow-controlled protocol, callback or ``await`` style.

Two layers over :class:`~asyncnet.FlowControlProtocol`:

* :class:`FramedProtocol` (callback style, public) feeds received bytes to the
  framing's decoder and calls ``frame_received(frame)`` for each frame;
  ``send_nowait(frame)`` encodes and writes, ``await drain()`` waits for the
  peer. Like the echo server it couples the directions: while the peer is not
  reading our replies (``pause_writing``), we do not read its requests.
* :class:`ConnectionProtocol` (internal) queues the frames instead, for a task
  that awaits them through :class:`Connection` (the public ``await`` style).

The receive rule of :class:`ConnectionProtocol`, which bounds its memory:

* reading pauses when ``queued + partial > receive_limit`` while at least one
  frame is queued (``queued``: wire bytes of decoded frames not yet taken;
  ``partial``: the decoder's bytes of the frame under construction);
* it resumes when a frame is taken and ``queued + partial <= receive_low``, or
  the queue is empty, so reading is always flowing before anyone waits;
* with nothing queued it never pauses: the consumer needs the rest of the frame,
  and the framer's own limit (``max_length``/``max_frame``) bounds it.

So, per connection, the bytes held on the receive side are at most
``receive_limit + max_frame + one read`` (a read that arrives while below the
limit is decoded whole), and on the send side ``high_water`` plus the last
frame written before ``send`` waited.

Callbacks follow asyncio's order (``connection_made [-> data_received]*
[-> eof_received] -> connection_lost``); after a decoding error reading stops
for good and the error is delivered after the frames decoded before it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, cast

from ._errors import ConnectionClosed, EndOfStream, ReadError, UsageError
from ._flow import DEFAULT_HIGH, DEFAULT_RECEIVE_LIMIT, FlowControlProtocol, WaterMarks
from ._framing import FrameDecoder, Framing, Raw
from ._lifetime import Site, warn_unclosed

__all__ = [
    "Connection",
    "ConnectionProtocol",
    "ConnectionStatistics",
    "FramedProtocol",
]

F = TypeVar("F")

# Below this size the pieces of an encoded frame are joined and written at once
# (one send); above it each piece is written as it is, so a large payload is
# never copied just to glue a small header to it.
JOIN_MAX: Final = 16 * 1024

# Why reading is paused; reading flows only when no reason is left.
_QUEUE_FULL: Final = 1  # the consumer fell behind (await style)
_PEER_SLOW: Final = 2  # the peer is not reading our replies (callback style)
_STOPPED: Final = 4  # decoding failed or the peer finished: nothing more is wanted


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """A snapshot of one connection's counters, taken by ``statistics()``."""

    #: Bytes read from the peer.
    bytes_received: int
    #: Bytes handed to the transport (encoded frames, framing included).
    bytes_sent: int
    #: Frames decoded from the peer's bytes.
    frames_received: int
    #: Frames sent.
    frames_sent: int
    #: Frames decoded but not yet taken by ``receive()``.
    queued_frames: int
    #: Wire bytes of those frames.
    queued_bytes: int
    #: Bytes the decoder holds for a frame not yet complete.
    partial_bytes: int
    #: Bytes waiting in the transport's write buffer.
    write_buffer_size: int
    #: Whether reading from the peer is paused now.
    reading_paused: bool
    #: Times reading was paused.
    read_pauses: int
    #: Times the write buffer went above its high-water mark.
    write_pauses: int


class FramedProtocol(FlowControlProtocol, Generic[F]):
    """Callback-style framed protocol for ``loop.create_server`` / ``create_connection``.

    Override :meth:`frame_received` (and optionally :meth:`frame_error`,
    :meth:`end_received`); reply with :meth:`send_nowait` and, from a task,
    ``await`` :meth:`drain`. Reading pauses while the transport's write buffer
    is above ``high_water``, so a peer that does not read its replies cannot
    make us buffer more than ``high_water`` plus the replies to one read.
    Subclasses overriding asyncio callbacks must call ``super()``.
    """

    # Await style turns this off: its handler waits in send() instead.
    _couple_directions = True

    def __init__(
        self,
        framing: Framing[F] | None = None,
        *,
        high_water: int = DEFAULT_HIGH,
        low_water: int | None = None,
    ) -> None:
        super().__init__()
        marks = WaterMarks(high_water, low_water)  # validates high >= low >= 0
        self.framing: Framing[F] = framing if framing is not None else cast(Framing[F], Raw())
        self.high_water = marks.high
        self.low_water = marks.low
        self._decoder: FrameDecoder[F] = self.framing.decoder()
        self._encode = self.framing.encode
        self._transport: asyncio.Transport | None = None
        self._pause_reasons = 0
        self._eof_sent = False
        self.bytes_received = 0
        self.bytes_sent = 0
        self.frames_received = 0
        self.frames_sent = 0
        self.read_pauses = 0
        self.write_pauses = 0

    # -- hooks for subclasses ----------------------------------------------------------

    def frame_received(self, frame: F) -> None:
        """Called once per decoded frame, in order. The default ignores it."""

    def frame_error(self, exc: Exception) -> None:
        """Called once when decoding fails (reading has stopped). The default aborts.

        Override to send an error reply first; then close the transport.
        """
        if self._transport is not None:
            self._transport.abort()

    def end_received(self) -> bool:
        """Called when the peer finished sending on a frame boundary.

        Return true to keep the connection open for writing; the default
        returns false, which closes it once everything written was sent.
        """
        return False

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Apply the write water marks."""
        super().connection_made(transport)
        # Not an isinstance check: uvloop's transports implement the interface
        # without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)

    def data_received(self, data: bytes) -> None:
        """Decode ``data`` and hand every completed frame to :meth:`frame_received`."""
        self.bytes_received += len(data)
        decoder = self._decoder
        try:
            frames = decoder.feed(data)
        except Exception as exc:
            self._decode_failed(exc)
            return
        if frames:
            self.frames_received += len(frames)
            for frame in frames:
                self.frame_received(frame)
            self._check_pending_error()

    def eof_received(self) -> bool:
        """Check the stream ended on a frame boundary, then ask :meth:`end_received`."""
        try:
            self._decoder.feed_eof()
        except Exception as exc:
            self._decode_failed(exc)
            return True
        return self.end_received()

    def pause_writing(self) -> None:
        """The peer is not reading: stop reading from it (callback style) until it does."""
        super().pause_writing()
        self.write_pauses += 1
        if self._couple_directions:
            self._pause_reading(_PEER_SLOW)

    def resume_writing(self) -> None:
        """The write buffer fell to the low mark: wake drain waiters and read again."""
        super().resume_writing()
        if self._couple_directions:
            self._resume_reading(_PEER_SLOW)

    def connection_lost(self, exc: Exception | None) -> None:
        """Release drain waiters and forget the transport."""
        super().connection_lost(exc)
        self._transport = None

    # -- sending -------------------------------------------------------------------------------

    def send_nowait(self, frame: F) -> None:
        """Encode ``frame`` and write it without waiting for the peer.

        Raises :class:`~asyncnet.ConnectionClosed` once the connection is
        closing or after :meth:`send_eof`, and the framing's
        :class:`~asyncnet.LocalProtocolError` for a frame it cannot encode.
        Between ``await drain()`` calls this buffers without limit: bound the
        number of frames you send that way.
        """
        transport = self._transport
        if transport is None or transport.is_closing() or self._eof_sent:
            raise ConnectionClosed("the connection is closed for sending")
        encoded = self._encode(frame)
        if type(encoded) is tuple:
            size = 0
            for piece in encoded:
                size += len(piece)
            if size <= JOIN_MAX:
                transport.write(b"".join(encoded))
            else:
                for piece in encoded:
                    if piece:
                        transport.write(piece)
        else:
            size = len(encoded)
            transport.write(cast(bytes, encoded))
        self.bytes_sent += size
        self.frames_sent += 1

    def send_eof(self) -> None:
        """Half-close: tell the peer we will send nothing more (reading continues)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionClosed("the connection is closed")
        if not transport.can_write_eof():
            raise UsageError("this transport cannot half-close (TLS cannot, before Python 3.12)")
        if not self._eof_sent:
            self._eof_sent = True
            transport.write_eof()

    # -- reading control -----------------------------------------------------------------

    def _pause_reading(self, reason: int) -> None:
        if not self._pause_reasons:
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
                self.read_pauses += 1
        self._pause_reasons |= reason

    def _resume_reading(self, reason: int) -> None:
        if self._pause_reasons & reason:
            self._pause_reasons &= ~reason
            transport = self._transport
            if not self._pause_reasons and transport is not None and not transport.is_closing():
                transport.resume_reading()

    @property
    def reading_paused(self) -> bool:
        """Whether reading from the peer is paused now."""
        return bool(self._pause_reasons)

    def _check_pending_error(self) -> None:
        # Decoders return the frames before an error and raise it on the next
        # call: ask at once, so the error is not left waiting for more bytes.
        try:
            self._decoder.feed(b"")
        except Exception as exc:
            self._decode_failed(exc)

    def _decode_failed(self, exc: Exception) -> None:
        self._pause_reading(_STOPPED)
        self.frame_error(exc)

    def _snapshot(self, queued_frames: int, queued_bytes: int) -> ConnectionStatistics:
        transport = self._transport
        return ConnectionStatistics(
            bytes_received=self.bytes_received,
            bytes_sent=self.bytes_sent,
            frames_received=self.frames_received,
            frames_sent=self.frames_sent,
            queued_frames=queued_frames,
            queued_bytes=queued_bytes,
            partial_bytes=self._decoder.buffered,
            write_buffer_size=transport.get_write_buffer_size() if transport else 0,
            reading_paused=self.reading_paused,
            read_pauses=self.read_pauses,
            write_pauses=self.write_pauses,
        )

    def statistics(self) -> ConnectionStatistics:
        """Return a frozen snapshot of this connection's counters."""
        return self._snapshot(0, 0)


class ConnectionProtocol(FramedProtocol[F]):
    """The protocol under a :class:`Connection`: frames wait in a queue bounded in bytes.

    See the module docstring for the pause/resume rule.
    """

    _couple_directions = False

    def __init__(
        self,
        framing: Framing[F] | None = None,
        *,
        high_water: int = DEFAULT_HIGH,
        low_water: int | None = None,
        receive_limit: int = DEFAULT_RECEIVE_LIMIT,
        receive_low: int | None = None,
    ) -> None:
        super().__init__(framing, high_water=high_water, low_water=low_water)
        marks = WaterMarks(receive_limit, receive_low)
        self.receive_limit = marks.high
        self.receive_low = marks.low
        self._frames: collections.deque[F] = collections.deque()
        self._costs: collections.deque[int] = collections.deque()
        self._queued = 0
        # Why no more frames will come, once known: raised after the queue drains.
        self._end: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        """Decode ``data``; queue the frames; pause reading if the queue is over its limit."""
        size = len(data)
        self.bytes_received += size
        decoder = self._decoder
        before = decoder.buffered
        try:
            frames = decoder.feed(data)
        except Exception as exc:
            self._decode_failed(exc)
            return
        if not frames:
            return
        count = len(frames)
        # The wire bytes these frames took; shared out so that taking a frame
        # releases its part of the receive limit.
        consumed = max(size + before - decoder.buffered, 0)
        share, extra = divmod(consumed, count)
        self._frames.extend(frames)
        if count == 1:
            self._costs.append(consumed)
        else:
            self._costs.extend([share] * count)
            self._costs[-1] += extra
        self._queued += consumed
        self.frames_received += count
        self._check_pending_error()
        self._wake()
        if self._queued + decoder.buffered > self.receive_limit:
            self._pause_reading(_QUEUE_FULL)

    def frame_error(self, exc: Exception) -> None:
        """Deliver the error to the consumer after the frames queued before it."""
        if self._end is None:
            self._end = exc
        self._wake()

    def end_received(self) -> bool:
        """The peer finished sending: the consumer sees the end once the queue drains."""
        if self._end is None:
            self._end = EndOfStream("the peer finished sending")
        self._pause_reading(_STOPPED)
        self._wake()
        # Keep the transport open: the handler may still reply (half-close).
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake the consumer with the end of the stream or the transport's error."""
        super().connection_lost(exc)
        if self._end is None:
            if exc is not None:
                error: Exception = ReadError(f"connection lost: {exc}")
                error.__cause__ = exc
            else:
                error = ConnectionClosed("the connection was closed")
            self._end = error
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def receive_nowait(self) -> F:
        """Take the next queued frame; raise ``IndexError`` if none is queued (``_end`` aside)."""
        frame = self._frames.popleft()
        self._queued -= self._costs.popleft()
        if self._pause_reasons & _QUEUE_FULL and (
            not self._frames or self._queued + self._decoder.buffered <= self.receive_low
        ):
            self._resume_reading(_QUEUE_FULL)
        return frame

    async def receive(self) -> F:
        """Return the next frame, waiting for one; raise the end of the stream after the last."""
        while True:
            if self._frames:
                return self.receive_nowait()
            end = self._end
            if end is not None:
                if isinstance(end, EndOfStream):
                    raise EndOfStream(str(end))
                raise end
            if self._waiter is not None:
                raise UsageError("receive() called while another task is receiving")
            # The queue is empty, so reading is flowing (the pop that emptied
            # it resumed it): waiting can never wait on a paused peer.
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    def statistics(self) -> ConnectionStatistics:
        """Return a frozen snapshot of this connection's counters."""
        return self._snapshot(len(self._frames), self._queued)


class Connection(Generic[F]):
    """One framed connection, ``await`` style: iterate or ``receive()`` frames, ``send()`` them.

    Handed to a server's handler, or returned by :func:`~asyncnet.open_connection`.
    ``async for frame in conn`` ends when the peer finishes sending on a frame
    boundary; a framing error (:class:`~asyncnet.FrameTooLarge`,
    :class:`~asyncnet.IncompleteFrame`) is raised from it after the frames
    that came before it. One task may receive at a time; any number may send.
    """

    __slots__ = ("_created_at", "_protocol", "_transport")

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        protocol: ConnectionProtocol[F],
        *,
        created_at: Site | None = None,
    ) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._protocol = protocol
        # Set for connections the caller opened (open_connection), which the
        # caller must close; a server's connections are closed by the server.
        self._created_at = created_at

    def __del__(self) -> None:
        if getattr(self, "_created_at", None) is not None and not self._transport.is_closing():
            warn_unclosed("asyncnet.Connection", self._created_at, self)

    # -- receiving ------------------------------------------------------------------------

    async def receive(self) -> F:
        """Return the next frame.

        Raises :class:`~asyncnet.EndOfStream` when the peer finished on a frame
        boundary, the framing's error (:class:`~asyncnet.FrameTooLarge`,
        :class:`~asyncnet.IncompleteFrame`), :class:`~asyncnet.ReadError` if
        the connection broke, or :class:`~asyncnet.ConnectionClosed` after close.
        """
        return await self._protocol.receive()

    def __aiter__(self) -> Connection[F]:
        return self

    async def __anext__(self) -> F:
        try:
            return await self._protocol.receive()
        except EndOfStream:
            raise StopAsyncIteration from None

    # -- sending ----------------------------------------------------------------------------

    def send_nowait(self, frame: F) -> None:
        """Write ``frame`` without waiting (see :meth:`FramedProtocol.send_nowait`)."""
        self._protocol.send_nowait(frame)

    async def send(self, frame: F) -> None:
        """Write ``frame``, then wait until the transport's buffer is at or below high water.

        Raises :class:`~asyncnet.ConnectionClosed` if the connection closes first.
        """
        self._protocol.send_nowait(frame)
        await self._protocol.drain()

    async def drain(self) -> None:
        """Wait until the transport accepts more (after :meth:`send_nowait` calls)."""
        await self._protocol.drain()

    def send_eof(self) -> None:
        """Half-close: the peer sees the end of our frames; we can still receive."""
        self._protocol.send_eof()

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and close once everything written has been sent. Idempotent."""
        self._transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent bytes (the peer may see a reset). Idempotent."""
        self._transport.abort()

    @property
    def is_closing(self) -> bool:
        """Whether :meth:`close` or :meth:`abort` was called or the connection was lost."""
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone (``connection_lost`` ran)."""
        await asyncio.shield(self._protocol.closed)

    async def aclose(self) -> None:
        """Close gracefully and wait until the connection is gone; abort if cancelled."""
        self._transport.close()
        try:
            await asyncio.shield(self._protocol.closed)
        except asyncio.CancelledError:
            self._transport.abort()
            raise

    async def __aenter__(self) -> Connection[F]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- information ------------------------------------------------------------------------

    @property
    def framing(self) -> Framing[F]:
        """The framing this connection decodes and encodes with."""
        return self._protocol.framing

    @property
    def peername(self) -> Any:
        """The peer's address (as the socket module reports it)."""
        return self._transport.get_extra_info("peername")

    @property
    def sockname(self) -> Any:
        """Our own address."""
        return self._transport.get_extra_info("sockname")

    def extra(self, name: str, default: Any = None) -> Any:
        """Transport information: ``"ssl_object"``, ``"peercert"``, ``"socket"``..."""
        return self._transport.get_extra_info(name, default)

    def statistics(self) -> ConnectionStatistics:
        """Return a frozen snapshot of this connection's counters."""
        return self._protocol.statistics()

    def __repr__(self) -> str:
        state = "closing" if self._transport.is_closing() else "open"
        return f"<Connection {self.peername!r} {self._protocol.framing!r} {state}>"


def connection_factory(
    framing: Framing[F],
    *,
    high_water: int,
    low_water: int | None,
    receive_limit: int,
    receive_low: int | None = None,
) -> Callable[[], ConnectionProtocol[F]]:
    """Return a protocol factory for ``loop.create_connection`` (validates the limits now)."""
    WaterMarks(high_water, low_water)
    WaterMarks(receive_limit, receive_low)

    def factory() -> ConnectionProtocol[F]:
        return ConnectionProtocol(
            framing,
            high_water=high_water,
            low_water=low_water,
            receive_limit=receive_limit,
            receive_low=receive_low,
        )

    return factory


# Shared by the server and the testing kit: abort without raising on a gone transport.
def abort_quietly(transport: asyncio.BaseTransport | None) -> None:
    """Abort ``transport`` if there is one; a transport already closed is left alone."""
    if transport is not None:
        with contextlib.suppress(Exception):
            cast(asyncio.Transport, transport).abort()
