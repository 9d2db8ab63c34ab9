"""Framed protocols: a framer on a flow-controlled protocol, callback style.

Two layers over :class:`~asyncnet.FlowControlProtocol`:

* :class:`FramedProtocol` (callback style, public, here) feeds received bytes
  to the framing's decoder and calls ``frame_received(frame)`` for each
  frame; ``send_nowait(frame)`` encodes and writes, ``await drain()`` waits
  for the peer. Like the echo server it couples the directions: while the
  peer is not reading our replies (``pause_writing``), we do not read its
  requests.
* ``ConnectionProtocol`` (internal, ``_connection.py``) queues the frames
  instead, for a task that awaits them through :class:`~asyncnet.Connection`
  (the public ``await`` style).

The receive rule of ``ConnectionProtocol``, which bounds its memory, is
written down in ``_connection.py``.

A callback-style protocol may also coalesce its writes across connections
(``coalesce_writes=True``, see ``_coalesce.py``): a reply sent while
other callbacks wait in the same pass of the event loop is held, and all
held replies are written after the pass's last read, as Redis writes its
replies before it sleeps.

The speed of the ``await`` style rests on two choices, written down where
they are made (``_connection.py``): a receiver waiting on an empty queue is
run from the read's own callback when the loop has nothing else to do, and
from one callback per pass otherwise; and the replies it sends to several
frames of one read are written together (the holding is here, in
:meth:`FramedProtocol.send_nowait`).

Callbacks follow asyncio's order (``connection_made [-> data_received]*
[-> eof_received] -> connection_lost``); after a decoding error reading stops
for good and the error is delivered after the frames decoded before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import selector_events
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, cast

from ._coalesce import PassWriter
from ._errors import ConnectionClosed, UsageError
from ._flow import DEFAULT_HIGH, READ_SIZE, FlowControlProtocol, WaterMarks, shared_read_buffer
from ._framing import JOIN_MAX, BuiltinDecoder, FrameDecoder, Framing, Raw

__all__ = [
    "JOIN_MAX",
    "READ_SIZE",
    "ConnectionStatistics",
    "FramedProtocol",
    "abort_quietly",
]

F = TypeVar("F")

# asyncio's plain socket transport (see connection_made).
_SOCKET_TRANSPORT: Final = getattr(selector_events, "_SelectorSocketTransport", None)

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
    #: Wire bytes of those frames, plus 56 (``FRAME_COST``) for each: what
    #: counts against ``receive_limit``.
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


class FramedProtocol(FlowControlProtocol, asyncio.BufferedProtocol, Generic[F]):
    """Callback-style framed protocol for ``loop.create_server`` / ``create_connection``.

    Override :meth:`frame_received` (and optionally :meth:`frame_error`,
    :meth:`end_received`); reply with :meth:`send_nowait` and, from a task,
    ``await`` :meth:`drain`. Reading pauses while the transport's write buffer
    is above ``high_water``, so a peer that does not read its replies cannot
    make us buffer more than ``high_water`` plus one reply: when one read
    holds many frames, those after the reply that went past ``high_water``
    wait, decoded, until the peer reads again (whatever a single
    :meth:`frame_received` call sends is yours to bound).

    With ``coalesce_writes=True``, a reply sent while other callbacks wait in
    the same pass of the event loop (other connections' reads, when many
    clients are busy) is held, at most one reply of up to 16 KiB per
    connection (the replies to one read's frames count as one), and written
    with the others after the pass's last read:
    a client that runs many connections from one event loop, as load
    generators and connection pools do, then wakes once per burst of
    replies instead of once per reply, which costs the server less system
    time per request (``resp_bench.py``: see the RESP example). At low
    concurrency it can cost throughput instead: a held reply waits for the
    rest of the pass, which the client could have spent on it. Off by
    default; on asyncio's own event loop and socket transport only
    (elsewhere replies are written as they are sent).

    When one read completes several frames, what :meth:`send_nowait` sends
    while they are handled is held and written together after the last one
    (or as soon as it and the transport's buffer pass ``high_water``). So
    send through :meth:`send_nowait` rather than ``transport.write``, and
    end the connection with :meth:`close` (or :meth:`send_eof`), which
    writes what is held first: ``transport.close()`` called from
    :meth:`frame_received` would drop the replies held before it.
    Subclasses overriding asyncio callbacks must call ``super()``.
    """

    # Slots rather than instance attributes. With the attributes of the
    # classes above and below this one, a server's await-style connection
    # had 44, past the 30 that CPython keeps in a class's shared key table
    # (3.11 to 3.13), so each connection carried a dict of its own and every
    # attribute read went through it. toolkit_memory.py: 6.8 -> 5.5 KiB per
    # idle connection; toolkit_instructions.py, 64-byte lines, await:
    # 46,444 -> 44,699 instructions per message at concurrency 1, 45,051 ->
    # 42,921 at 10; user CPU at concurrency 100, 4.9-5.1 -> 4.5-4.6 us per
    # message. Subclasses without __slots__ still have a __dict__.
    __slots__ = (
        "_backlog",
        "_builtin_decoder",
        "_coalesce",
        "_coalesced",
        "_cork",
        "_cork_room",
        "_corked",
        "_decoder",
        "_direct",
        "_encode",
        "_eof_sent",
        "_pause_reasons",
        "_raw",
        "_read_view",
        "_reports_error",
        "_socket_transport",
        "_transport",
        "_writer",
        "bytes_received",
        "bytes_sent",
        "frames_received",
        "frames_sent",
        "framing",
        "high_water",
        "low_water",
        "read_pauses",
        "write_pauses",
    )

    # Await style turns this off: its handler waits in send() instead.
    _couple_directions = True

    def __init__(
        self,
        framing: Framing[F] | None = None,
        *,
        high_water: int = DEFAULT_HIGH,
        low_water: int | None = None,
        coalesce_writes: bool = False,
    ) -> None:
        super().__init__()
        marks = WaterMarks(high_water, low_water)  # validates high >= low >= 0
        self.framing: Framing[F] = framing if framing is not None else cast(Framing[F], Raw())
        self.high_water = marks.high
        self.low_water = marks.low
        self._decoder: FrameDecoder[F] = self.framing.decoder()
        self._encode = self.framing.encode
        # Raw(): a read is a frame as it is; data_received skips the decoder
        # and send_nowait the encoder (2 Python calls of the 6 a Raw() echo
        # made per read: 13,600 -> 8,900 instructions per 64-byte message).
        self._raw = type(cast(object, self.framing)) is Raw
        # See BuiltinDecoder: its pending error is read, not asked for.
        self._builtin_decoder = isinstance(self._decoder, BuiltinDecoder)
        # A custom decoder may keep its pending error in a ``pending_error``
        # attribute (docs/protocols.rst): read, it saves the feed(b"") probe
        # and the call around it per read that gave frames (resp_instructions.py
        # -P 1, the RESP example: 51,388 -> 48,626 instructions per request).
        self._reports_error = not self._builtin_decoder and hasattr(self._decoder, "pending_error")
        self._transport: asyncio.Transport | None = None
        # What get_buffer hands out: the thread's read buffer, shared with
        # every other connection (see shared_read_buffer).
        self._read_view = shared_read_buffer()[1]
        self._socket_transport = False
        # coalesce_writes: the loop's PassWriter once connected (None: write
        # at once), and whether it holds a reply of ours.
        self._coalesce = coalesce_writes
        self._writer: PassWriter | None = None
        self._coalesced = False
        self._pause_reasons = 0
        # Frames of a read still to be handled when the peer stopped reading
        # (see _deliver); None: none.
        self._backlog: Iterator[F] | None = None
        self._eof_sent = False
        # Replies held while ConnectionProtocol.data_received runs its
        # receiver on several queued frames, then written in one write (see
        # there); None: every frame is written as it is sent.
        self._cork: list[bytes] | None = None
        # Whether send_nowait may write a one-piece frame at once: no cork on
        # and no PassWriter. One attribute for the two, so that coalescing
        # costs protocols without it nothing (set with _cork and _writer).
        self._direct = True
        self._corked = 0
        self._cork_room = 0
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

        Override to send an error reply first, then call :meth:`close` (which
        writes what is held; ``transport.close()`` would drop it).
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
        # asyncio's socket transport: send_nowait reads its _closing, what its
        # is_closing() returns, rather than make a Python call per frame
        # (toolkit_instructions.py, 64-byte lines, concurrency 1: await 47,180
        # -> 46,640 instructions, callback 33,330 -> 33,030).
        self._socket_transport = type(transport) is _SOCKET_TRANSPORT
        if self._socket_transport and hasattr(transport, "_read_ready__data_received"):
            # asyncio's socket transport: read through data_received, as for
            # a plain Protocol, each read a fresh bytes of at most READ_SIZE.
            # That spares get_buffer, buffer_updated and the copy out of the
            # shared buffer (toolkit_instructions.py, 64-byte lines: callback
            # 33,655 -> 31,960 instructions per message at concurrency 1,
            # 25,849 -> 24,181 at 10; await 48,833 -> 46,444 and 47,882 ->
            # 45,051). READ_SIZE, where asyncio asks for 256 KiB, keeps each
            # read's bytes below glibc's default mmap threshold: no mapping
            # per read (see shared_read_buffer). Set before the first read:
            # asyncio starts reading from a callback after this one.
            transport.max_size = READ_SIZE  # type: ignore[attr-defined]
            transport._read_ready_cb = transport._read_ready__data_received  # type: ignore[attr-defined]
            if self._coalesce:
                self._writer = PassWriter.of(asyncio.get_running_loop())
                self._direct = self._writer is None
        transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Return the buffer the transport reads into: this thread's shared one.

        Other transports than asyncio's socket transport (TLS, uvloop) read
        this way; asyncio's socket transport calls :meth:`data_received`
        (see :meth:`connection_made`).
        """
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        """Copy the bytes just read out of the shared buffer and receive them."""
        self.data_received(self._read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        """Decode ``data`` and hand every completed frame to :meth:`frame_received`."""
        self.bytes_received += len(data)
        if self._raw:
            if data:
                self.frames_received += 1
                self.frame_received(data if type(data) is bytes else bytes(data))  # type: ignore[arg-type]
            return
        decoder = self._decoder
        try:
            frames = decoder.feed(data)
        except Exception as exc:
            self._decode_failed(exc)
            return
        if frames:
            count = len(frames)
            self.frames_received += count
            if count == 1:
                self.frame_received(frames[0])
            else:
                # A pipelining peer: hold the replies to this read's frames and
                # write them together after the last one, one send() instead of
                # one per reply (Netty writes in channelRead and flushes in
                # channelReadComplete). redis-benchmark -c 50 -P 16 against
                # resp_server.py: 4.7 -> 3.3 us of server CPU per request.
                self._deliver(iter(frames))
                if self._backlog is not None:
                    return  # the decoder's error, if any, comes after the backlog
            if not self._builtin_decoder:
                if not self._reports_error:
                    self._check_pending_error()
                elif decoder.pending_error is not None:  # type: ignore[attr-defined]
                    self._decode_failed(decoder.pending_error)  # type: ignore[attr-defined]
            elif decoder._error is not None:  # type: ignore[attr-defined]
                self._decode_failed(decoder._error)  # type: ignore[attr-defined]

    def _deliver(self, frames: Iterator[F]) -> None:
        """Hand several frames of one read to frame_received, their replies held together.

        Stops as soon as the peer stops reading (a reply took the transport's
        buffer above ``high_water``: pause_writing paused reading): the frames
        not yet handled wait in ``_backlog`` until resume_writing, so a read
        of many small requests for large replies costs at most one reply past
        ``high_water``, never the replies to the whole read.
        """
        self._cork = []
        self._direct = False
        transport = self._transport
        self._cork_room = self.high_water - (
            transport.get_write_buffer_size() if transport is not None else 0
        )
        try:
            frame_received = self.frame_received
            for frame in frames:
                frame_received(frame)
                if self._writing_paused:
                    self._backlog = frames
                    break
        finally:
            self._end_cork()
            self._cork = None
            self._direct = self._writer is None

    def eof_received(self) -> bool:
        """Check the stream ended on a frame boundary, then ask :meth:`end_received`.

        Over TLS the connection closes at the peer's EOF, whatever
        :meth:`end_received` returns: asyncio's TLS transport cannot half-close.
        It also reports the EOF while reading is paused (as does the testing
        kit's memory transport), when frames of the last read may still wait:
        they are handled first, at once, since the connection is ending.
        """
        self._take_everything()
        try:
            self._decoder.feed_eof()
        except Exception as exc:
            self._decode_failed(exc)
            keep_open = True
        else:
            keep_open = self.end_received()
        # A transport that cannot half-close (asyncio's TLS transport) closes
        # at the peer's EOF whatever this returns, and logs a warning for
        # every true.
        transport = self._transport
        return bool(keep_open) and transport is not None and transport.can_write_eof()

    def _take_everything(self) -> None:
        """Handle the frames still waiting (the peer's EOF came while reading was paused)."""
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None
            frame_received = self.frame_received
            for frame in backlog:
                frame_received(frame)

    def pause_writing(self) -> None:
        """The peer is not reading: stop reading from it (callback style) until it does."""
        super().pause_writing()
        self.write_pauses += 1
        if self._couple_directions:
            self._pause_reading(_PEER_SLOW)

    def resume_writing(self) -> None:
        """The write buffer fell to the low mark: wake drain waiters and read again.

        Frames of an earlier read left unhandled when the peer stopped reading
        (``_backlog``) are handled first; reading resumes once they all are.
        """
        super().resume_writing()
        if self._couple_directions:
            if self._backlog is not None:
                # From a callback of its own: the transport calls this in the
                # middle of its write handler, which a reply that closes the
                # connection would leave to report the loss a second time.
                asyncio.get_running_loop().call_soon(self._handle_backlog)
            else:
                self._resume_reading(_PEER_SLOW)

    def _handle_backlog(self) -> None:
        """Handle the frames left when the peer stopped reading, then read again."""
        transport = self._transport
        if self._writing_paused or transport is None or transport.is_closing():
            return  # paused again: the next resume_writing comes back here
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None
            try:
                self._deliver(backlog)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # As asyncio's transports treat an exception out of
                # data_received: reported, and the connection aborted.
                asyncio.get_running_loop().call_exception_handler(
                    {
                        "message": "Fatal error: protocol.frame_received() call failed.",
                        "exception": exc,
                        "protocol": self,
                        "transport": transport,
                    }
                )
                transport.abort()
                return
            if self._backlog is not None or self._transport is None:
                return
            # The error the decoder found after the backlog's frames, if any:
            # feeding nothing raises it (the rule every decoder follows).
            self.data_received(b"")
        self._resume_reading(_PEER_SLOW)

    def connection_lost(self, exc: Exception | None) -> None:
        """Release drain waiters and forget the transport."""
        super().connection_lost(exc)
        self._transport = None
        self._backlog = None

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
        if (
            transport is None
            or self._eof_sent
            or (
                transport._closing  # type: ignore[attr-defined]
                if self._socket_transport
                else transport.is_closing()
            )
        ):
            raise ConnectionClosed("the connection is closed for sending")
        encoded: Any = frame if self._raw else self._encode(frame)
        if self._direct and type(encoded) is not tuple:
            # One piece and nothing held, a request/response peer's every
            # frame: written at once, without the checks below (about 200
            # instructions a frame: 64-byte lines through a no-op write,
            # await 24,660 -> 24,420, callback 10,410 -> 10,320).
            transport.write(encoded)
            self.bytes_sent += len(encoded)
            self.frames_sent += 1
            return
        writer = self._writer
        if (
            writer is not None
            and self._cork is None
            and type(encoded) is bytes
            and len(encoded) <= JOIN_MAX
        ):
            # coalesce_writes (see PassWriter): held when other callbacks
            # wait in this pass (beside the writer's own flush), at most one
            # immutable reply of up to JOIN_MAX per connection. PassWriter's
            # waiting() and hold(), inlined: no call per reply.
            held = writer.held
            scheduled = writer.scheduled
            if len(writer.ready) > scheduled and not self._coalesced:
                if not scheduled:
                    writer.schedule()
                held.append((self, transport, encoded))
                self._coalesced = True
            else:
                if held:
                    # The last read of the pass (or a second reply): what is
                    # held goes first.
                    writer.flush_now()
                transport.write(encoded)
            self.bytes_sent += len(encoded)
            self.frames_sent += 1
            return
        if self._coalesced:
            self._writer.flush_now()  # type: ignore[union-attr]
        if type(encoded) is tuple:
            size = 0
            for piece in encoded:
                size += len(piece)
            if size <= JOIN_MAX:
                encoded = b"".join(encoded)
            else:
                cork = self._cork
                if cork:
                    self._flush_cork()
                for piece in encoded:
                    if piece:
                        transport.write(piece)
                if cork is not None:
                    self._cork_room = self.high_water - transport.get_write_buffer_size()
                self.bytes_sent += size
                self.frames_sent += 1
                return
        else:
            size = len(encoded)
        # While the cork is on, its room is what high_water leaves beside the
        # transport's buffer; it is measured again after every write (a flush,
        # or a frame written past the cork), so that held plus buffered bytes
        # stay within high_water plus the last frame.
        cork = self._cork
        if cork is not None and size <= JOIN_MAX and type(encoded) is bytes:
            # Immutable and small: held, and written with the others at once.
            cork.append(encoded)
            self._corked += size
            if self._corked > self._cork_room:
                self._flush_cork()
                self._cork_room = self.high_water - transport.get_write_buffer_size()
        else:
            if cork:
                self._flush_cork()
            transport.write(encoded)
            if cork is not None:
                self._cork_room = self.high_water - transport.get_write_buffer_size()
        self.bytes_sent += size
        self.frames_sent += 1

    def _end_cork(self) -> None:
        """Write what the cork holds; with coalesce_writes, hold it with the pass's replies.

        The replies to one read's frames are held as one reply, under the
        same rules as send_nowait's (other callbacks wait in the pass, at
        most JOIN_MAX bytes, one held reply per connection).
        """
        writer = self._writer
        if writer is not None:
            transport = self._transport
            if (
                self._cork
                and self._corked <= JOIN_MAX
                and not self._coalesced
                and writer.waiting()
                and transport is not None
                and not transport._closing  # type: ignore[attr-defined]
            ):
                cork = self._cork
                writer.hold(self, transport, cork[0] if len(cork) == 1 else b"".join(cork))
                cork.clear()
                self._corked = 0
                return
            if writer.held:
                # The last read of the pass: what is held goes first.
                writer.flush_now()
        self._flush_cork()

    def _flush_cork(self) -> None:
        """Write what the cork holds (in one write); the cork stays on if it was.

        A reply held by coalesce_writes goes first, with every other held one.
        """
        if self._coalesced:
            self._writer.flush_now()  # type: ignore[union-attr]
        cork = self._cork
        if cork:
            data = cork[0] if len(cork) == 1 else b"".join(cork)
            cork.clear()
            self._corked = 0
            transport = self._transport
            # A transport already closing drops writes, as asyncio's do. Its
            # _closing is read as in send_nowait: a flush per message in the
            # await style at concurrency 10 and more (see _run_receivers).
            if transport is not None and not (
                transport._closing  # type: ignore[attr-defined]
                if self._socket_transport
                else transport.is_closing()
            ):
                transport.write(data)

    def close(self) -> None:
        """Close the connection once everything sent was written; idempotent."""
        self._flush_cork()
        if self._transport is not None:
            self._transport.close()

    def send_eof(self) -> None:
        """Half-close: tell the peer we will send nothing more (reading continues)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionClosed("the connection is closed")
        if not transport.can_write_eof():
            raise UsageError("this transport cannot half-close (asyncio's TLS transports cannot)")
        if not self._eof_sent:
            self._flush_cork()
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
        # (Built-in decoders are not asked: data_received reads their _error;
        # nor are decoders with a ``pending_error`` attribute: it is read.)
        if self._reports_error:
            error = self._decoder.pending_error  # type: ignore[attr-defined]
            if error is not None:
                self._decode_failed(error)
            return
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


# Shared by the server and the testing kit: abort without raising on a gone transport.
def abort_quietly(transport: asyncio.BaseTransport | None) -> None:
    """Abort ``transport`` if there is one; a transport already closed is left alone."""
    if transport is not None:
        with contextlib.suppress(Exception):
            cast(asyncio.Transport, transport).abort()
