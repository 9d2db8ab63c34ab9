"""One HTTP/1.1 client connection: an :class:`asyncio.Protocol` driving the response parser.

The protocol writes a request, feeds every received byte to the sans-IO
:class:`~asyncnet._http._parser.ResponseParser` as it arrives, and keeps the
body pieces in a bounded buffer (where the bytes land on the way is
:mod:`asyncnet._http._receive`'s job). When a streaming consumer falls behind,
reading from the socket pauses and resumes once the consumer has drained the
buffer (the rule is :class:`~asyncnet._flow.WaterMarks`), so memory stays
bounded however large the body. Uploads wait on the write side's drain.

The life of one connection, and of one exchange on it::

    connection_made -> [exchange]* -> connection_lost
    begin -> write_head [-> send_body] -> receive_head -> read_chunk*/read_all -> release

The state of an exchange is written down in :class:`HTTPConnection`.

``wait_continue`` follows a head sent with ``Expect: 100-continue``: it ends
when a ``100 Continue`` arrives or a short timeout passes (send the body) or
when the final response comes first (do not send it). In that last case the
request stays incomplete, so :meth:`HTTPConnection.release` closes the
connection instead of reusing it: the server may still be waiting for the
body the head announced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeAlias

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
from ._exchange import ReadMode, RequestState, ResponseState
from ._headers import Headers
from ._parser import (
    NEED_DATA,
    Data,
    EndOfMessage,
    ParserLimits,
    ResponseHead,
    ResponseParser,
)
from ._receive import ReceivingProtocol
from ._request import LAST_CHUNK, RequestBody, encode_chunk
from ._rules import REDIRECT_STATUSES

__all__ = ["DEFAULT_BODY_BUFFER", "HTTPConnection"]

#: Body bytes a connection buffers for a slow consumer before it pauses
#: reading: large enough that a consumer keeping up never stalls the socket
#: (several kernel reads of 64-256 KiB), small enough to bound memory per
#: connection. Resuming happens at a quarter of it, like asyncio's water marks.
DEFAULT_BODY_BUFFER: Final = 1024 * 1024

# Request bodies up to this size are joined to the head and sent in one
# ``transport.write``; larger ones are written separately to avoid the copy.
_JOIN_BODY_LIMIT: Final = 64 * 1024

_EMPTY_TRAILERS: Final = Headers()

_Event: TypeAlias = ResponseHead | Data | EndOfMessage

# Module-level names for the hot paths: a global is one dictionary lookup;
# an enum member through its class goes through the enum metaclass (ten times
# slower on CPython 3.11).
_NO_REQUEST: Final = RequestState.IDLE
_SENDING: Final = RequestState.SENDING
_SENT: Final = RequestState.SENT
_IDLE: Final = ResponseState.IDLE
_WAITING: Final = ResponseState.WAITING
_HEAD: Final = ResponseState.HEAD
_BODY: Final = ResponseState.BODY
_DONE: Final = ResponseState.DONE
_ALL: Final = ReadMode.ALL
_WHOLE: Final = ReadMode.WHOLE
_CHUNKS: Final = ReadMode.CHUNKS


class HTTPConnection(ReceivingProtocol):
    """One HTTP/1.1 connection that carries one request at a time.

    Where received bytes land is :class:`~asyncnet._http._receive.ReceivingProtocol`'s
    job; this class parses them, keeps the exchange's state, waits and sends.
    Timeouts matter only while a caller waits: one lazily re-armed timer per
    connection covers the read timeout and the exchange's total deadline.

    The state of an exchange is the three small enums of
    :mod:`asyncnet._http._exchange` (our side, their side, and how the caller
    takes the body), which move only along the arrows written down there.

    A failure (malformed bytes, a timeout, the connection lost or aborted) leaves
    the states where they are and records the error, which every later wait
    raises; so the states still tell a stale keep-alive connection (response
    ``WAITING``) from a broken response. ``release`` hands the connection to
    ``on_release`` (the pool) only when both sides finished -- request ``SENT``,
    response ``DONE``, every body byte taken -- with no error, the parser saying
    keep-alive, the request not saying ``Connection: close``, and the transport
    open; anything else aborts the transport. Bytes that arrive while the response
    is ``IDLE`` or ``DONE`` answer nothing: they abort the connection too.
    """

    def __init__(
        self,
        *,
        parser_limits: ParserLimits | None = None,
        body_buffer: int = DEFAULT_BODY_BUFFER,
    ) -> None:
        super().__init__(ResponseParser(parser_limits), body_buffer)
        # The exchange (see the class docstring).
        self._request = _NO_REQUEST
        self._response = _IDLE
        self._mode = _CHUNKS
        self._error: BaseException | None = None
        self._close_after = False  # the request said Connection: close
        self._head: ResponseHead | None = None
        self._trailers: Headers = _EMPTY_TRAILERS
        # Waiting: the caller's future and the one timer (see _wait).
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._wait_since = 0.0
        self._read_timeout: float | None = None
        self._write_timeout: float | None = None
        self._deadline: float | None = None
        # Expect: 100-continue: waiting for the verdict.
        self._awaiting_continue = False
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

    # -- asyncio.Protocol (the receive paths are ReceivingProtocol's) -------------

    def eof_received(self) -> bool | None:
        # Returning None closes the transport; connection_lost then feeds EOF to the parser.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._bulk = None  # the transport is gone: nothing to switch back
        if self._direct is not None:
            # Unfinished, so never readable; what is buffered stays readable.
            self._direct.discard()
            self._direct = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._response in (_WAITING, _HEAD, _BODY) and self._error is None:
            if exc is None:
                self._feed_eof()
            else:
                self._error = ReadError(self._lost_message(exc))
                self._error.__cause__ = exc
        self._wake()
        on_lost = self.on_lost
        self.on_lost = None
        self.on_release = None
        if on_lost is not None:
            on_lost(self)

    # -- received bytes ---------------------------------------------------------

    def _feed(self, data: bytes | memoryview) -> None:
        """Parse received bytes and act on the events: buffer, wake, pause, pick a path."""
        response = self._response
        if response is _IDLE or response is _DONE:
            # Bytes nobody asked for: not a response to anything. The connection
            # is never reused; a response already complete stays readable.
            self.abort()
            return
        if response is _WAITING:
            self._response = _HEAD
        self._view = self._rbuf
        self._last_activity = self._loop.time()
        try:
            events = self._parser.events(data)
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        head = self._take_events(events)
        if (
            head is not None
            and self._mode is not _CHUNKS
            and self._response is not _DONE
            # A redirect's body is drained piece by piece by a client following
            # it, never read whole: it never starts direct before read_all().
            and head.status not in REDIRECT_STATUSES
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
            and (self._response is _DONE or self._mode is not _ALL)
            and not waiter.done()
        ):
            waiter.set_result(None)
        if self._direct is None:  # a direct body's memory is set aside already
            if self._mode is not _ALL and buffered > self._high:
                self._buffer_changed()
            if self._response is not _DONE:
                self._bulk_if_long()

    def _at_response_start(self) -> bool:
        return self._response is _WAITING

    def _direct_ended(self, trailers: Headers) -> None:
        self._trailers = trailers
        self._response = _DONE
        self._wake()

    def _take_events(self, events: Iterable[_Event]) -> ResponseHead | None:
        """Buffer the body, keep the head and trailers; return the head if one came."""
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
                self._response = _BODY
            else:
                self._trailers = event.trailers  # type: ignore[union-attr]
                self._response = _DONE
        return head

    def _feed_eof(self) -> None:
        """The server closed cleanly mid-exchange: end a body delimited by close, or fail."""
        parser = self._parser
        events: list[_Event] = []
        try:
            parser.feed_eof()
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                events.append(event)
                if type(event) is EndOfMessage:
                    break
        except RemoteProtocolError as exc:
            self._error = exc
            return
        finally:
            self._take_events(events)
        if self._response is not _DONE:
            self._error = RemoteProtocolError(
                "server closed the connection without sending a response"
                if self._response is _WAITING
                else "server closed the connection before the response was complete"
            )

    def _lost_message(self, exc: BaseException) -> str:
        if self._head is None:
            return f"connection lost before the response arrived: {exc!r}"
        return f"connection lost while receiving the response body: {exc!r}"

    # -- state ----------------------------------------------------------------

    @property
    def is_lost(self) -> bool:
        """True once the transport is gone (the same as :attr:`is_closed`)."""
        return self._closed

    @property
    def received_any(self) -> bool:
        """True if the current exchange received at least one byte of response."""
        return self._response is not _WAITING and self._response is not _IDLE

    def is_reusable(self) -> bool:
        """True if an idle connection may carry another request."""
        transport = self.transport
        return (
            self._request is _NO_REQUEST
            and transport is not None
            and not self._closed
            and not transport.is_closing()
        )

    def abort(self) -> None:
        """Drop the connection now, without waiting for buffered writes.

        A response still in progress then fails with
        :class:`~asyncnet.ConnectionClosed` (we closed it, the server did not).
        """
        if self._response in (_WAITING, _HEAD, _BODY) and self._error is None:
            self._error = ConnectionClosed("the connection was closed by the client")
            self._wake()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    def shut_down(self, error: BaseException) -> None:
        """Drop the connection now; a request in flight on it fails with ``error``."""
        if self._request is not _NO_REQUEST:
            self._fail(error)
        else:
            self.abort()

    def close(self) -> None:
        """Close the connection gracefully (flushing buffered writes first)."""
        transport = self.transport
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
        *,
        close_after: bool = False,
    ) -> None:
        """Start an exchange: reset the response state and tell the parser a request goes out.

        ``read_whole`` promises that a body other than a redirect's will be
        read with :meth:`read_all`, so a long one can be received straight
        into its final object from the first byte after the head.
        ``close_after`` says the request asks for ``Connection: close``: the
        connection is then closed at the end of the exchange.
        """
        if self._request is not _NO_REQUEST:
            raise LocalProtocolError("the connection is already carrying a request")
        self._request = _SENDING
        self._response = _WAITING
        self._mode = _WHOLE if read_whole else _CHUNKS
        self._error = None
        self._close_after = close_after
        self._head = None
        self._chunks.clear()
        self._buffered = 0
        self._trailers = _EMPTY_TRAILERS
        if not read_whole:
            self._view = self._rbuf
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._deadline = deadline
        self._awaiting_continue = False
        self.requests += 1
        self._parser.start_response(method)

    def write_head(
        self, head: bytes, body: bytes | None = None, *, body_follows: bool = False
    ) -> None:
        """Write the request head and, when small, the whole body in the same write.

        ``body_follows``: the body is streamed next with :meth:`send_body`, so
        the request is not complete yet.
        """
        transport = self.transport
        if self._closed or transport is None or transport.is_closing():
            raise WriteError("the connection was closed before the request could be sent")
        if body:
            if len(body) <= _JOIN_BODY_LIMIT:
                transport.write(head + body)
            else:
                transport.write(head)
                transport.write(body)
        else:
            transport.write(head)
        if not body_follows:
            self._request = _SENT

    def write_body(self, body: bytes) -> None:
        """Write a whole body of bytes after its head went out on its own (100-continue)."""
        if body and not self._write(body):
            return  # the server answered and hung up: the request stays incomplete
        self._request = _SENT

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
        """Send a streamed body, waiting for the peer whenever the write buffer is full.

        Returns early, leaving the request incomplete, when the server has
        answered and stopped taking the body (the connection broke or the
        write timed out after a response head arrived): the caller then reads
        that response. Any other failure, the caller's own included,
        propagates. Either way an incomplete request closes the connection at
        :meth:`release`.
        """
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
        if chunked and not self._write(LAST_CHUNK):
            return
        self._request = _SENT
        if self.writing_paused:
            await self.wait_writable()

    def _write(self, data: bytes) -> bool:
        """Write, or report False when the server already answered and the write can stop."""
        transport = self.transport
        if self._closed or transport is None or transport.is_closing():
            if self._head is not None:
                return False
            self._raise_peer_error()
            raise WriteError("connection lost while sending the request body") from self._error
        transport.write(data)
        return True

    async def wait_writable(self) -> bool:
        """Wait for the peer to drain our write buffer, bounded by the write timeout.

        Returns False if the connection broke or the write timeout passed but
        the server has already sent its response head (it answered early, e.g.
        413, and stopped reading): the caller stops sending and reads that
        response.
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
            if self._head is not None and not (when is not None and when[1]):
                # The server answered and stopped reading: its answer stands.
                return False
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
        if self.received_any and isinstance(error, RemoteProtocolError):
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
                self._buffer_changed()
                return data
            if self._error is not None:
                raise self._error
            if self._response is _DONE:
                return b""
            self._resume_now()  # never wait for data while reading is paused
            await self._wait()

    async def read_all(self) -> bytes:
        """Return the rest of the body in one piece."""
        self._mode = _ALL
        self._resume_now()
        if self._direct is None and self._error is None and not self._closed:
            self._start_direct()
        while self._response is not _DONE:
            if self._error is not None:
                raise self._error
            await self._wait()
        if self._error is not None:
            raise self._error
        return self._take_body()

    def read_all_now(self) -> bytes | None:
        """Return the rest of the body if all of it is here, else None (then use read_all).

        Most small responses arrive with their head: this hands them over
        without a coroutine.
        """
        if self._response is _DONE and self._error is None:
            return self._take_body()
        return None

    @property
    def trailers(self) -> Headers:
        """Trailer fields of the current response (empty until the body ended)."""
        return self._trailers

    def release(self) -> None:
        """End the exchange: hand the connection on if both sides finished cleanly, else abort."""
        if self._request is _NO_REQUEST:
            return
        transport = self.transport
        reusable = (
            self._request is _SENT
            and self._response is _DONE
            and self._error is None
            and not self._chunks
            and not self._close_after
            and self._parser.keep_alive
            and transport is not None
            and not self._closed
            and not transport.is_closing()
        )
        self._request = _NO_REQUEST
        self._response = _IDLE
        # What only the exchange needed (its Response copied the head's parts
        # and the trailers): an idle connection that kept them would hold
        # about 8 more objects for the cyclic garbage collector to walk, on
        # each of the thousands of connections a crawl keeps idle (measured:
        # 29 -> 21 tracked objects per idle connection, 5,000 idle).
        self._head = None
        self._trailers = _EMPTY_TRAILERS
        self._waiter = None
        self._drop_body()
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
        self._wake()
        self.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
