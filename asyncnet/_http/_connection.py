"""One HTTP/1.1 client connection: an :class:`asyncio.Protocol` driving the response parser.

The protocol writes a request, feeds every received byte to the sans-IO
:class:`~asyncnet._http._parser.ResponseParser` as it arrives, and keeps the
body pieces in a bounded buffer (where the bytes land on the way is
:mod:`asyncnet._http._receive`'s job). When a
streaming consumer falls behind, reading from the socket pauses and resumes
once the consumer has drained the buffer, so memory stays bounded however
large the body. Uploads wait on the write side's drain.

The life of one connection::

    connection_made -> [exchange]* -> connection_lost

and of one exchange (``begin`` ... ``finish``)::

    begin -> write_head [-> wait_continue] [-> write_body | send_body]
          -> receive_head -> read_chunk*/read_all -> finish

``wait_continue`` follows a head sent with ``Expect: 100-continue``: it ends
when a ``100 Continue`` arrives or a short timeout passes (send the body) or
when the final response comes first (do not send it). In that last case the
server may still be waiting for the body the head announced, so the
connection is never reused: ``finish`` closes it.

``finish`` hands the connection back to whoever owns it (the pool) only when the
response was read to its end and may carry another request; anything else
(an error, a timeout, a cancelled read, an unread body) aborts the transport.
A connection that receives bytes while no exchange is running is aborted too:
they can never be a response to anything.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

from .._errors import (
    ConnectionClosed,
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TotalTimeout,
    WriteError,
    WriteTimeout,
)
from .._flow import FlowControlProtocol
from ._headers import Headers
from ._parser import (
    NEED_DATA,
    Data,
    EndOfMessage,
    ParserLimits,
    ResponseHead,
    ResponseParser,
)
from ._receive import BulkReceiver, DirectBody, read_buffer
from ._request import LAST_CHUNK, RequestBody, encode_chunk

__all__ = ["DEFAULT_BODY_BUFFER", "HTTPConnection"]

#: Body bytes a connection buffers for a slow consumer before it pauses
#: reading: large enough that a consumer keeping up never stalls the socket
#: (several kernel reads of 64-256 KiB), small enough to bound memory per
#: connection. Resuming happens at a quarter of it, like asyncio's water marks.
DEFAULT_BODY_BUFFER: Final = 1024 * 1024

# Request bodies up to this size are joined to the head and sent in one
# ``transport.write``; larger ones are written separately to avoid the copy.
_JOIN_BODY_LIMIT: Final = 64 * 1024

# The first read of a response that will probably go direct, at most: room for
# a head, while the body stays in the kernel until it can be received in place.
_SHORT_FIRST_READ: Final = 8 * 1024

# A first read longer than this is split after the head (see buffer_updated).
_SPLIT_MIN: Final = 16 * 1024

# While at least this much of a Content-Length body is still to come and it is
# not received directly, the transport allocates each read (BulkReceiver).
_BULK_MIN: Final = 128 * 1024

_EMPTY_TRAILERS: Final = Headers()

# Responses that a client following redirects drains piece by piece instead of
# reading whole, so their bodies never start direct before read_all().
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class HTTPConnection(FlowControlProtocol, asyncio.BufferedProtocol):
    """One HTTP/1.1 connection that carries one request at a time.

    A buffered protocol: reads go into the thread's shared buffer, or straight
    into a body's final ``bytes`` while ``read_all`` waits for a long one; a
    long body that is streamed instead is read through a
    :class:`~asyncnet._http._receive.BulkReceiver`.

    Timeouts matter only while a caller waits: one lazily re-armed timer per
    connection covers the read timeout and the exchange's total deadline.
    """

    def __init__(
        self,
        *,
        parser_limits: ParserLimits | None = None,
        body_buffer: int = DEFAULT_BODY_BUFFER,
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = ResponseParser(parser_limits)
        self._high = body_buffer
        self._low = body_buffer // 4
        # Exchange state.
        self._active = False
        self._head: ResponseHead | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eom = False
        self._trailers: Headers = _EMPTY_TRAILERS
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._wait_since = 0.0
        self._want_all = False
        self._read_whole = False
        self._received_any = False
        self._last_direct = False
        self._direct: DirectBody | None = None  # being received
        self._direct_done: DirectBody | None = None  # complete, for read_all to take
        self._bulk: BulkReceiver | None = None  # set while the transport delivers bytes
        self._rbytes = read_buffer()
        self._rbuf = memoryview(self._rbytes)
        # What get_buffer offers when no direct body is being received: all
        # of the shared buffer, or its start for a short first read.
        self._view = self._rbuf
        self._short_view = self._rbuf[:_SHORT_FIRST_READ]
        self._max_head = self._parser.limits.max_head_size
        self._last_activity = 0.0
        self._read_timeout: float | None = None
        self._write_timeout: float | None = None
        self._deadline: float | None = None
        self._method = "GET"
        # Expect: 100-continue: waiting for the verdict / the body was never sent.
        self._awaiting_continue = False
        self._body_withheld = False
        # Connection state.
        self._lost = False
        self._reading_paused = False
        self._keep_alive = True
        #: Called with this connection once an exchange ends and it may be reused.
        self.on_release: Callable[[HTTPConnection], None] | None = None
        #: Called with this connection when its transport is gone.
        self.on_lost: Callable[[HTTPConnection], None] | None = None
        #: Opaque pool key this connection belongs to.
        self.key: Any = None
        #: Loop time since which the connection has sat idle in a pool.
        self.idle_since = 0.0
        #: Number of requests this connection has carried (including the current one).
        self.requests = 0
        #: Times this connection paused reading for a slow consumer.
        self.read_pauses = 0
        #: Largest number of body bytes buffered at once (for tests and statistics).
        self.peak_buffered = 0
        #: Bodies received straight into their final object / through bulk reads.
        self.direct_bodies = 0
        self.bulk_bodies = 0

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A cast, not an isinstance check: uvloop's transports implement the
        # interface without subclassing asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)

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
        elif nbytes <= _SPLIT_MIN or self._received_any:
            # A view: the parser copies what it keeps, once.
            self.data_received(view[:nbytes])
        else:
            # The first read of a response: the head and a long piece of body
            # go to the parser as two objects, so the body is copied out of the
            # buffer once instead of copied out and then sliced off the head.
            end = self._rbytes.find(b"\r\n\r\n", 0, min(nbytes, self._max_head))
            if end < 0:
                self.data_received(view[:nbytes])
            else:
                self.data_received(view[: end + 4])
                if self._error is None and not self._lost:
                    self._body_received(view[end + 4 : nbytes])

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
            self._trailers = end.trailers
            self._eom = True
            self._keep_alive = self._parser.keep_alive
            self._wake()

    def _body_received(self, data: memoryview) -> None:
        """Take body bytes just read into the shared buffer, after the head."""
        if self._direct is not None:
            # Straight from the buffer into the body's final object.
            self._feed_direct(data)
        else:
            self.data_received(data)

    def _feed_direct(self, data: bytes | memoryview) -> None:
        """Copy bytes that arrived outside :meth:`get_buffer` into the direct body."""
        direct = self._direct
        assert direct is not None
        take = min(len(data), direct.size - direct.filled)
        direct.write(data[:take])
        self._direct_received(take)
        if take < len(data) and self._error is None and not self._lost:
            self.data_received(bytes(data[take:]))

    def data_received(self, data: bytes | memoryview) -> None:
        # ``data`` may be a view of the shared receive buffer: the parser and
        # the direct body copy what they keep, and nothing else holds on to it.
        if self._direct is not None:
            # Bytes delivered another way (a transport without get_buffer).
            self._feed_direct(data)
            return
        if not self._active or self._eom:
            # Bytes nobody asked for: not a response to anything. The connection
            # is never reused; a response already complete stays readable.
            self._keep_alive = False
            self.abort()
            return
        self._received_any = True
        self._view = self._rbuf
        self._last_activity = self._loop.time()
        try:
            events = self._parser.events(data)
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        head: ResponseHead | None = None
        for event in events:
            kind = type(event)
            if kind is Data:
                chunk = event.data  # type: ignore[union-attr]
                if chunk:
                    self._chunks.append(chunk)
                    self._buffered += len(chunk)
            elif kind is ResponseHead:
                self._head = head = event  # type: ignore[assignment]
            else:
                self._trailers = event.trailers  # type: ignore[union-attr]
                self._eom = True
                self._keep_alive = self._parser.keep_alive
        if (
            head is not None
            and self._read_whole
            and not self._eom
            and head.status not in _REDIRECTS
        ):
            # The caller reads this body whole: receive the rest of it straight
            # into its final object from now on.
            self._start_direct()
        buffered = self._buffered
        if buffered > self.peak_buffered:
            self.peak_buffered = buffered
        if self._awaiting_continue and self._parser.interim_responses:
            self._wake()
        waiter = self._waiter
        if (
            waiter is not None
            and self._head is not None
            and (self._eom or not self._want_all)
            and not waiter.done()
        ):
            waiter.set_result(None)
        if (
            buffered > self._high
            and not self._reading_paused
            and not self._want_all
            and self._direct is None  # its memory is set aside already
            and self._transport is not None
        ):
            self._reading_paused = True
            self.read_pauses += 1
            self._transport.pause_reading()
        if (
            not self._eom
            and self._bulk is None
            and self._direct is None
            and self._parser.direct_body_bytes >= _BULK_MIN
            and self._transport is not None
        ):
            bulk = BulkReceiver(self)
            try:
                self._transport.set_protocol(bulk)
            except NotImplementedError:
                pass  # a transport that cannot switch protocols reads into the buffer
            else:
                self._bulk = bulk
                self.bulk_bodies += 1

    def _end_bulk(self) -> None:
        """Receive into the shared buffer again."""
        if self._bulk is not None:
            self._bulk = None
            transport = self._transport
            if transport is not None and not self._lost:
                transport.set_protocol(self)

    def eof_received(self) -> bool | None:
        # Returning None closes the transport; connection_lost then feeds EOF to the parser.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._lost = True
        self._bulk = None
        if self._direct is not None:
            self._direct.discard()
            self._direct = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._keep_alive = False
        if self._active and not self._eom and self._error is None:
            if exc is None:
                self._feed_eof()
            else:
                error = ReadError(self._lost_message(exc))
                error.__cause__ = exc
                self._error = error
        self._wake()
        on_lost = self.on_lost
        self.on_lost = None
        self.on_release = None
        if on_lost is not None:
            on_lost(self)

    def _feed_eof(self) -> None:
        parser = self._parser
        try:
            parser.feed_eof()
            while not self._eom:
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                if type(event) is Data:
                    if event.data:
                        self._chunks.append(event.data)
                        self._buffered += len(event.data)
                elif type(event) is ResponseHead:
                    self._head = event
                elif type(event) is EndOfMessage:
                    self._trailers = event.trailers
                    self._eom = True
        except RemoteProtocolError as exc:
            self._error = exc
            return
        if not self._eom:
            self._error = RemoteProtocolError(
                "server closed the connection without sending a response"
                if not self._received_any
                else "server closed the connection before the response was complete"
            )

    def _lost_message(self, exc: BaseException) -> str:
        if self._head is None:
            return f"connection lost before the response arrived: {exc!r}"
        return f"connection lost while receiving the response body: {exc!r}"

    # -- state ----------------------------------------------------------------

    @property
    def is_lost(self) -> bool:
        """True once the transport is gone."""
        return self._lost

    @property
    def received_any(self) -> bool:
        """True if the current exchange received at least one byte of response."""
        return self._received_any

    def is_reusable(self) -> bool:
        """True if an idle connection may carry another request."""
        transport = self._transport
        return (
            not self._lost
            and not self._active
            and self._keep_alive
            and transport is not None
            and not transport.is_closing()
        )

    def abort(self) -> None:
        """Drop the connection now, without waiting for buffered writes.

        A response still in progress then fails with
        :class:`~asyncnet.ConnectionClosed` (we closed it, the server did not).
        """
        self._keep_alive = False
        if self._active and not self._eom and self._error is None:
            self._error = ConnectionClosed("the connection was closed by the client")
            self._wake()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    def shut_down(self, error: BaseException) -> None:
        """Drop the connection now; a request in flight on it fails with ``error``."""
        if self._active:
            self._fail(error)
        else:
            self.abort()

    def close(self) -> None:
        """Close the connection gracefully (flushing buffered writes first)."""
        self._keep_alive = False
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    # -- one exchange -----------------------------------------------------------

    def begin(
        self,
        method: str,
        read_timeout: float | None,
        write_timeout: float | None,
        deadline: float | None,
        read_whole: bool = False,
    ) -> None:
        """Start an exchange: reset the response state and tell the parser a request goes out.

        ``read_whole`` promises that a body other than a redirect's will be
        read with :meth:`read_all`, so a long one can be received straight
        into its final object from the first byte after the head.
        """
        if self._active:
            raise LocalProtocolError("the connection is already carrying a request")
        self._active = True
        self._head = None
        self._chunks.clear()
        self._buffered = 0
        self._eom = False
        self._trailers = _EMPTY_TRAILERS
        self._error = None
        self._want_all = False
        self._read_whole = read_whole
        self._received_any = False
        if read_whole and self._last_direct:
            # The last response here went direct, and this one probably will:
            # a short first read leaves its body in the kernel to be received
            # in place, instead of copied out of the shared buffer.
            self._view = self._short_view
        self._last_direct = False
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._deadline = deadline
        self._method = method
        self._awaiting_continue = False
        self._body_withheld = False
        self.requests += 1
        self._parser.start_response(method)

    def write_head(self, head: bytes, body: bytes | None = None) -> None:
        """Write the request head and, when small, the whole body in the same write."""
        transport = self._transport
        if self._lost or transport is None or transport.is_closing():
            raise WriteError("the connection was closed before the request could be sent")
        if body:
            if len(body) <= _JOIN_BODY_LIMIT:
                transport.write(head + body)
            else:
                transport.write(head)
                transport.write(body)
        else:
            transport.write(head)

    def write_body(self, body: bytes) -> None:
        """Write a whole body of bytes after its head went out on its own (100-continue)."""
        if body:
            self._write(body)

    async def wait_continue(self, timeout: float | None) -> bool:  # noqa: ASYNC109
        """After a head with ``Expect: 100-continue``: should the body be sent now?

        True once a ``100 Continue`` (or any interim response) arrived, or when
        ``timeout`` seconds pass with no answer (RFC 9110 §10.1.1: a client
        need not wait for ever). False if the final response came first: the
        body is then never sent and the connection is closed after the
        response instead of being reused.
        """
        self._awaiting_continue = True
        cm = asyncio.timeout(timeout)
        try:
            async with cm:
                while True:
                    if self._head is not None:
                        self._body_withheld = True
                        return False
                    if self._error is not None:
                        raise self._error
                    if self._parser.interim_responses:
                        return True
                    await self._wait()
        except TimeoutError:
            if not cm.expired():
                raise  # the exchange's own read timeout or deadline
            return True
        finally:
            self._awaiting_continue = False

    async def send_body(self, body: RequestBody, *, chunked: bool) -> None:
        """Send a streamed body, waiting for the peer whenever the write buffer is full."""
        expected = body.length
        sent = 0
        async for piece in body.chunks():
            if not piece:
                continue
            piece = bytes(piece) if not isinstance(piece, bytes) else piece
            sent += len(piece)
            if expected is not None and sent > expected:
                raise LocalProtocolError(
                    f"request body is longer than its declared length of {expected} bytes"
                )
            if not self._write(encode_chunk(piece) if chunked else piece):
                return
            if self.writing_paused and not await self.wait_writable():
                return
        if expected is not None and sent != expected:
            raise LocalProtocolError(
                f"request body ended after {sent} of its declared {expected} bytes"
            )
        if chunked:
            self._write(LAST_CHUNK)
        if self.writing_paused:
            await self.wait_writable()

    def _write(self, data: bytes) -> bool:
        """Write, or report False when the server already answered and the write can stop."""
        transport = self._transport
        if self._lost or transport is None or transport.is_closing():
            if self._head is not None:
                return False
            self._raise_peer_error()
            raise WriteError("connection lost while sending the request body") from self._error
        transport.write(data)
        return True

    async def wait_writable(self) -> bool:
        """Wait for the peer to drain our write buffer, bounded by the write timeout.

        Returns False if the connection broke but the server has already sent
        its response head (it answered early, e.g. 413): the caller stops
        sending and reads that response.
        """
        when = self._when(self._write_timeout)
        try:
            if when is None:
                await self.drain()
            else:
                async with asyncio.timeout_at(when[0]):
                    await self.drain()
        except ConnectionClosed as exc:
            if self._head is not None:
                return False
            self._raise_peer_error()
            raise WriteError("connection lost while sending the request body") from (
                exc.__cause__ or exc
            )
        except TimeoutError as exc:
            self.abort()
            if when is not None and when[1]:
                raise TotalTimeout("the request's total deadline passed while sending") from exc
            raise WriteTimeout(
                f"the server accepted no request data for {self._write_timeout} seconds"
            ) from exc
        return True

    def _raise_peer_error(self) -> None:
        """While sending: if the peer's bytes broke the protocol, raise that, not a WriteError.

        A server that answers a request still being sent with malformed data
        is why the connection is gone; the caller should see that.
        """
        error = self._error
        if self._received_any and isinstance(error, RemoteProtocolError):
            raise error

    async def receive_head(self) -> ResponseHead:
        """Wait for the final response head."""
        while self._head is None:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._head

    async def read_chunk(self) -> bytes:
        """Return the next piece of the body, ``b""`` once the body is complete."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft()
                self._buffered -= len(data)
                if self._reading_paused and self._buffered <= self._low:
                    self._resume_reading()
                return data
            if self._error is not None:
                raise self._error
            if self._eom:
                return b""
            if self._reading_paused:
                # Never wait for data while reading is paused.
                self._resume_reading()
            await self._wait()

    async def read_all(self) -> bytes:
        """Return the rest of the body in one piece."""
        self._want_all = True
        if self._reading_paused:
            self._resume_reading()
        if self._direct is None and self._error is None and not self._lost:
            self._start_direct()
        while not self._eom:
            if self._error is not None:
                raise self._error
            await self._wait()
        if self._error is not None:
            raise self._error
        return self._take_all()

    def read_all_now(self) -> bytes | None:
        """Return the rest of the body if all of it is here, else None (then use read_all).

        Most small responses arrive with their head: this hands them over
        without a coroutine.
        """
        if self._eom and self._error is None:
            return self._take_all()
        return None

    def _take_all(self) -> bytes:
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

    def _start_direct(self) -> None:
        """Receive the rest of a long ``Content-Length`` body into its final object, if allowed."""
        left = self._parser.direct_body_bytes
        if left:
            direct = DirectBody.start(self._chunks, self._buffered, left)
            if direct is not None:
                self._chunks.clear()
                self._direct = direct
                self._last_direct = True
                self.direct_bodies += 1
                self._end_bulk()

    @property
    def trailers(self) -> Headers:
        """Trailer fields of the current response (empty until the body ended)."""
        return self._trailers

    def release(self) -> None:
        """End the exchange: release the connection if the response completed, else abort."""
        if not self._active:
            return
        self._active = False
        reusable = (
            self._eom
            and not self._chunks
            and self._error is None
            and self._keep_alive
            and not self._lost
            and not self._body_withheld
        )
        self._chunks.clear()
        self._buffered = 0
        if self._direct is not None:
            self._direct.discard()
            self._direct = None
        self._direct_done = None
        self._end_bulk()
        if self._reading_paused:
            self._resume_reading()
        if reusable:
            release = self.on_release
            if release is not None:
                release(self)
                return
        self.abort()

    # -- waiting ----------------------------------------------------------------

    def _when(self, timeout: float | None) -> tuple[float, bool] | None:
        """The loop time a wait must end by, and whether that is the total deadline."""
        deadline = self._deadline
        if timeout is None:
            return None if deadline is None else (deadline, True)
        when = self._loop.time() + timeout
        if deadline is not None and deadline <= when:
            return (deadline, True)
        return (when, False)

    def _wait(self) -> asyncio.Future[None]:
        """A future for the next progress on the exchange, under the read timeout and deadline.

        One timer per connection serves every wait: it is armed when a wait
        starts and none is pending (or the pending one is too late), and when
        it fires it re-arms itself if data arrived meanwhile. A request that
        gets its answer before the timer is due costs no timer operation at all.
        A plain function, not a coroutine: the caller awaits the future itself.
        Once done (woken, failed or cancelled) the future is ignored by
        everything that would wake it, so it needs no clearing.
        """
        loop = self._loop
        waiter = loop.create_future()
        self._waiter = waiter
        read = self._read_timeout
        deadline = self._deadline
        if read is not None or deadline is not None:
            now = loop.time()
            self._wait_since = now
            if read is None:
                assert deadline is not None
                when = deadline
            else:
                when = now + read
                if deadline is not None and deadline < when:
                    when = deadline
            timer = self._timer
            if timer is None or self._timer_when > when:
                if timer is not None:
                    timer.cancel()
                self._timer_when = when
                self._timer = loop.call_at(when, self._on_timer)
        return waiter

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms a new timer
        now = self._loop.time()
        deadline = self._deadline
        if deadline is not None and now >= deadline:
            self._fail(TotalTimeout("the request's total deadline passed"))
            return
        read = self._read_timeout
        when = deadline
        if read is not None:
            # Data may have arrived without waking the waiter (read_all waits
            # for the end only): the read timeout counts from the latest of both.
            quiet_until = max(self._wait_since, self._last_activity) + read
            if quiet_until <= now:
                self._fail(ReadTimeout(f"no data from the server for {read} seconds"))
                return
            if when is None or quiet_until < when:
                when = quiet_until
        if when is not None:
            self._timer_when = when
            self._timer = self._loop.call_at(when, self._on_timer)

    def _fail(self, error: BaseException) -> None:
        """The exchange cannot continue: record why, wake the waiter, drop the connection."""
        if self._error is None:
            self._error = error
        self._keep_alive = False
        self._wake()
        self.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resume_reading(self) -> None:
        self._reading_paused = False
        transport = self._transport
        if transport is not None and not self._lost:
            transport.resume_reading()
