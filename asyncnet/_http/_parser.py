"""A strict, bounded, sans-IO HTTP/1.1 response parser (RFC 9112): the state machine.

The parser is fed bytes and hands back events (:mod:`asyncnet._http._events`);
it never touches a socket, a loop or a clock, so it is tested with byte
strings split at every position. What a line, a field or a chunk-size line
may hold is decided by the pure functions of :mod:`asyncnet._http._readers`;
this module decides what comes next.

One variable, ``_mode`` (a :class:`~asyncnet._http._state.Mode`), says where
the parser is. Every transition, and what causes it::

    IDLE --start_response()--> HEAD
    HEAD --1xx head, skipped (at most max_interim_responses)--> HEAD
    HEAD --101 (upgrade requested) or 2xx to CONNECT--> UPGRADED
    HEAD --head of a HEAD request, 204, 304, Content-Length: 0--> END
    HEAD --Content-Length: n > 0--> LENGTH --n body bytes--> END
    HEAD --chunked as the last coding--> CHUNK_SIZE
         CHUNK_SIZE --size n > 0--> CHUNK_DATA --n bytes--> CHUNK_CRLF --CRLF--> CHUNK_SIZE
         CHUNK_SIZE --size 0--> TRAILERS --blank line: EndOfMessage--> AFTER
    HEAD --no framing field, or another last coding--> UNTIL_CLOSE --EOF: EndOfMessage--> AFTER
    END --EndOfMessage--> AFTER
    LENGTH --consume_direct_body() of the last bytes: EndOfMessage--> AFTER
    AFTER --start_response(), reusable and nothing extra received--> HEAD
    any --malformed, oversized or unsolicited input--> ERROR (final)

The public :class:`ParserState` is a coarser view of the same variable (each
mode names the state it shows as)::

    IDLE --start_response()--> HEAD --head--> BODY --end--> DONE (reusable)
                                 |                    \\--> CLOSED (must close)
                                 |--101/CONNECT 2xx--> UPGRADED
    DONE --start_response()--> HEAD
    any --malformed input--> ERROR

Every malformed or oversized input raises :class:`~asyncnet.RemoteProtocolError`
and leaves the parser in ``ERROR``: the connection must be discarded.

The fast path lives in two marked places: :meth:`ResponseParser.events`,
which takes a read that arrives with nothing buffered in fewer steps, and
:func:`~asyncnet._http._readers.chunk_run`, which takes many plain chunks in
one pass. Both move through the same modes and call the same readers as the
steps, which are the reference they must agree with; the tests compare the
two at every split position (``StepParser`` in ``tests/support/parser_helpers.py``).
"""

from __future__ import annotations

from typing import Final, NoReturn

from .._errors import LocalProtocolError, RemoteProtocolError
from ._events import NEED_DATA, Data, EndOfMessage, Event, NeedData, ResponseHead
from ._headers import Headers
from ._readers import (
    CONNECTION_VALUES,
    CONTENT_LENGTH_VALUES,
    ParserLimits,
    check_line_lengths,
    check_unfinished_block,
    check_unfinished_chunk_size,
    chunk_run,
    connection_tokens,
    content_length,
    field_values,
    parse_chunk_size_line,
    parse_fields,
    parse_status_line,
    transfer_framing,
)
from ._rules import NO_BODY_STATUSES
from ._state import (
    AFTER,
    CHUNK_CRLF,
    CHUNK_DATA,
    CHUNK_MODES,
    CHUNK_SIZE,
    END,
    ERROR,
    HEAD,
    IDLE,
    LENGTH,
    TRAILERS,
    UNTIL_CLOSE,
    UPGRADED,
    ParserState,
)

__all__ = [
    "NEED_DATA",
    "Data",
    "EndOfMessage",
    "Event",
    "ParserLimits",
    "ParserState",
    "ResponseHead",
    "ResponseParser",
]

_DEFAULT_LIMITS: Final = ParserLimits()  # frozen: one for all parsers given none


class ResponseParser:
    """Turn the bytes of HTTP/1.1 responses into events, strictly and within limits.

    One parser serves one connection: call :meth:`start_response` when a
    request has been sent, :meth:`feed` every received chunk (and
    :meth:`feed_eof` at EOF), and drain :meth:`next_event` until it returns
    :data:`NEED_DATA`. After :class:`EndOfMessage`, :attr:`keep_alive` says
    whether the connection may carry another request.
    """

    __slots__ = (
        "_body_received",
        "_buf",
        "_chunk_left",
        "_eof",
        "_error",
        "_expected_length",
        "_fields_seen",
        "_interim",
        "_keep_alive",
        "_limits",
        "_method",
        "_mode",
        "_pos",
        "_scan",
        "_trailing",
        "_upgrade_requested",
    )

    def __init__(self, limits: ParserLimits | None = None) -> None:
        self._limits = limits if limits is not None else _DEFAULT_LIMITS
        self._buf: bytes | bytearray = b""
        self._pos = 0  # bytes of _buf already consumed
        # Bytes after _pos already checked in a pending head, trailer or size
        # line, and field lines already checked in a pending head or trailer
        # section. Both are back at 0 whenever a response ends, so a new one
        # starts from here.
        self._scan = 0
        self._fields_seen = 0
        self._mode = IDLE
        self._keep_alive = False
        self._eof = False
        self._chunk_left = 0  # bytes of the current chunk still to come
        self._interim = 0
        # Set before they are first read, so not here: by start_response(),
        # _method and _upgrade_requested; by a final head, _expected_length
        # (its Content-Length) and _body_received; by an upgrade, _trailing
        # (the bytes after its head); by a failure, _error. Reading one out of
        # turn raises AttributeError instead of using a made-up value.

    # -- public state -----------------------------------------------------------

    @property
    def limits(self) -> ParserLimits:
        """The limits this parser enforces."""
        return self._limits

    @property
    def state(self) -> ParserState:
        """The current :class:`ParserState`."""
        mode = self._mode
        if mode is IDLE and self._eof:
            return ParserState.CLOSED
        if mode is AFTER and not self.keep_alive:
            return ParserState.CLOSED
        return mode.shown

    @property
    def keep_alive(self) -> bool:
        """True when the finished response lets the connection carry another request.

        False for ``Connection: close``, an HTTP/1.0 response without
        ``Connection: keep-alive``, a body delimited by EOF, an upgrade, an
        error, or bytes that arrived after the response before any new request.
        """
        mode = self._mode
        return self._keep_alive and (mode is AFTER or mode is IDLE) and not self._eof

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the response ended: the new protocol's after an upgrade."""
        if self._mode is UPGRADED:
            return self._trailing
        return bytes(self._buf[self._pos :]) if self._mode is AFTER else b""

    @property
    def direct_body_bytes(self) -> int:
        """Body bytes the caller may receive itself instead of feeding them.

        Non-zero only inside a ``Content-Length`` body with nothing buffered:
        those bytes need no parsing, so an I/O layer can read them straight
        into their final buffer and report them with :meth:`consume_direct_body`.
        """
        if self._mode is LENGTH and self._pos >= len(self._buf) and not self._eof:
            return self._expected_length - self._body_received
        return 0

    @property
    def interim_responses(self) -> int:
        """Interim (1xx) responses skipped so far for the current request.

        A client that sent ``Expect: 100-continue`` watches this to learn that
        the server wants the body.
        """
        return self._interim

    def consume_direct_body(self, nbytes: int) -> EndOfMessage | None:
        """Count ``nbytes`` body bytes the caller received itself.

        At most :attr:`direct_body_bytes` may be reported. Returns the
        :class:`EndOfMessage` when they complete the body, else None; the bytes
        themselves produce no :class:`Data` event.
        """
        left = self.direct_body_bytes
        if not 0 < nbytes <= left:
            raise LocalProtocolError(
                f"cannot consume {nbytes} body bytes directly ({left} may be)"
            )
        self._body_received += nbytes
        if nbytes == left:
            return self._end_message(Headers())
        return None

    # -- driving ----------------------------------------------------------------

    def start_response(self, method: str, *, upgrade_requested: bool = False) -> None:
        """Expect the response to a request with ``method`` that has just been sent.

        Allowed only when no response is outstanding and the connection is
        reusable (``IDLE`` or ``DONE``); ``upgrade_requested`` allows a 101.
        """
        # A reusable AFTER needs no reset: _end_message emptied the buffer (bytes
        # left behind the response make it not reusable), and a byte fed since
        # fails the parser. The length check confirms that nothing is buffered.
        mode = self._mode
        if not (mode is AFTER and self.keep_alive and self._pos == len(self._buf)) and (
            mode is not IDLE or self._eof
        ):
            raise LocalProtocolError(
                f"cannot start a new response while the parser is {self.state.value}"
            )
        self._method = method
        self._upgrade_requested = upgrade_requested
        self._mode = HEAD
        self._interim = 0
        # _scan and _fields_seen are 0 already (see __init__), and _keep_alive
        # is left as it is: until a final head sets it, the mode (HEAD) makes
        # keep_alive false whatever it holds.

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; refuses bytes when no response is expected.

        Bytes on an idle connection, or after a response that ended the
        connection, are never parsed as a response: they raise
        :class:`~asyncnet.RemoteProtocolError` and the parser enters ``ERROR``.
        The parser keeps no reference to a buffer the caller may reuse.
        """
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)
        mode = self._mode
        if mode is ERROR:
            raise RemoteProtocolError(f"parser already failed: {self._error}")
        if mode is UPGRADED:
            self._trailing += data
            return
        if self._eof:
            self._fail(f"received {len(data)} bytes after EOF")
        if mode is IDLE or mode is AFTER:
            if mode is AFTER and not self._keep_alive:
                reason = "after a response that ended the connection"
            else:
                reason = "while no response was expected"
            self._fail(f"received {len(data)} unsolicited bytes {reason}")
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            self._buf = data
            self._pos = 0
        elif type(buf) is bytearray:
            del buf[:pos]
            self._pos = 0
            buf += data
        else:
            grown = bytearray(memoryview(buf)[pos:])
            grown += data
            self._buf = grown
            self._pos = 0

    def feed_eof(self) -> None:
        """Record that the peer closed the connection; :meth:`next_event` reports the outcome."""
        self._eof = True

    def events(self, data: bytes | memoryview) -> list[Event]:
        """Feed ``data`` and return every event it completes: :meth:`feed`, then drain.

        Stops after :class:`EndOfMessage` (or the head of an upgrade): bytes
        behind it are left for :attr:`trailing_data`, as with :meth:`next_event`.
        Malformed input raises at once, and the events of this call are lost
        with the response they belonged to. ``data`` may be a view of a
        receive buffer that is reused afterwards: the parser keeps no
        reference to it, and copies what it must keep.

        FAST PATH: a read that arrives with nothing buffered and starts a
        response, continues a ``Content-Length`` body or brings more chunks
        (taken in one run straight from ``data``, never copying a view whole)
        is read in fewer steps, calling the readers the drain loop would call,
        in its order. Without it this is ``feed(data)`` and the loop (the
        tests' ``StepParser``).
        """
        mode = self._mode
        if self._pos < len(self._buf) or self._scan or self._eof:
            pass
        elif mode in CHUNK_MODES:
            run = self._read_chunk_run(data, 0)
            if run is not None:
                rest = data[self._pos :]
                self._buf = b""
                self._pos = 0
                if not rest:
                    return [run]
                self.feed(rest)
                return self._drain([run])
        elif mode is HEAD or mode is LENGTH:
            # What feed() does with a read when nothing is buffered and a
            # response is expected (no EOF): the read becomes the buffer.
            self._buf = data if type(data) is bytes else bytes(data)
            self._pos = 0
            out: list[Event] = []
            if mode is HEAD:
                head = self._read_head()
                if head is NEED_DATA:
                    return out
                out.append(head)
                mode = self._mode
            if mode is LENGTH and self._pos < len(self._buf):
                data_event = self._read_length()
                assert data_event is not NEED_DATA  # bytes are available
                out.append(data_event)
                mode = self._mode
            if mode is END:
                out.append(self._end_message(Headers()))
                return out
            if mode is LENGTH or mode is UPGRADED:
                return out  # the read is used up, or no longer HTTP
            return self._drain(out)
        self.feed(data)
        return self._drain([])

    def _drain(self, out: list[Event]) -> list[Event]:
        append = out.append
        next_event = self.next_event
        while True:
            event = next_event()
            if event is NEED_DATA:
                return out
            append(event)
            if type(event) is EndOfMessage or self._mode is UPGRADED:
                return out

    def next_event(self) -> Event | NeedData:
        """Return the next event, or :data:`NEED_DATA` until more bytes or EOF arrive.

        Raises :class:`~asyncnet.RemoteProtocolError` for malformed input; the
        parser is then dead and every later call raises again.
        """
        mode = self._mode
        if mode is LENGTH:
            return self._read_length()
        if mode is HEAD:
            return self._read_head()
        if mode is END:
            return self._end_message(Headers())
        if mode in CHUNK_MODES:
            return self._read_chunked()
        if mode is UNTIL_CLOSE:
            return self._read_until_close()
        if mode is TRAILERS:
            return self._read_trailers()
        if mode is AFTER:
            if self._pos < len(self._buf) and not self._keep_alive:
                extra = len(self._buf) - self._pos
                self._fail(f"received {extra} bytes after a response that ended the connection")
            return NEED_DATA
        if mode is ERROR:
            raise RemoteProtocolError(f"parser already failed: {self._error}")
        return NEED_DATA  # IDLE, UPGRADED

    # -- transitions shared by several modes --------------------------------------

    def _fail(self, message: str) -> NoReturn:
        self._mode = ERROR  # final: keep_alive is false, whatever _keep_alive holds
        self._error = message
        raise RemoteProtocolError(message)

    def _upgrade(self) -> None:
        self._mode = UPGRADED  # final: keep_alive is false, whatever _keep_alive holds
        self._trailing = bytes(self._buf[self._pos :])
        # _pos needs no reset: against the emptied buffer any _pos means nothing
        # is buffered, and an upgraded parser buffers nothing again.
        self._buf = b""

    def _end_message(self, trailers: Headers) -> EndOfMessage:
        self._mode = AFTER
        if self._pos < len(self._buf):
            # Bytes that arrived before the next request was sent cannot be its
            # response: the connection is not reused.
            self._keep_alive = False
        else:
            self._buf = b""
            self._pos = 0
        # After EOF, keep_alive is false whatever _keep_alive holds.
        return EndOfMessage(trailers)

    # -- HEAD ---------------------------------------------------------------------

    def _take_block(self, trailer: bool) -> str | None:
        """The next head or trailer section up to its last CRLF, consumed; None until it ends."""
        buf = self._buf
        start = self._pos
        scanned = self._scan  # (no max(): a head is read for every response)
        end = buf.find(b"\r\n\r\n", start + scanned - 3 if scanned > 3 else start)
        if end < 0:
            self._check_unfinished_block(trailer)
            return None
        limit = self._limits.max_trailer_size if trailer else self._limits.max_head_size
        if end + 4 - start > limit:
            self._fail(f"{'trailer section' if trailer else 'response head'} exceeds {limit} bytes")
        self._pos = end + 4
        self._scan = 0
        self._fields_seen = 0
        return buf[start : end + 2].decode("latin-1")

    def _read_head(self) -> ResponseHead | NeedData:
        while True:
            text = self._take_block(False)
            if text is None:
                return NEED_DATA
            try:
                head = self._parse_head(text)
            except RemoteProtocolError as exc:
                self._fail(str(exc))
            if head is not None:
                return head
            # An interim 1xx response was skipped; look for the next head.

    def _check_unfinished_block(self, trailer: bool) -> None:
        """Reject a head or trailer section that cannot become valid, before its end."""
        try:
            self._scan, self._fields_seen = check_unfinished_block(
                self._buf, self._pos, self._scan, self._fields_seen, trailer, self._eof,
                self._limits,
            )
        except RemoteProtocolError as exc:
            self._fail(str(exc))

    def _parse_head(self, text: str) -> ResponseHead | None:
        """Parse one complete head (``text`` ends with the CRLF of its last line).

        Sets the mode the head leads to; returns None for a skipped interim
        (1xx) response.
        """
        limits = self._limits
        eol = text.find("\r\n")
        status, version, reason = parse_status_line(text[:eol])
        if len(text) > limits.max_line_size:
            check_line_lengths(text, limits.max_line_size, "response head")
        items, folded = parse_fields(text[eol + 2 :], limits, "header")  # ([], False) for none
        headers = Headers._from_wire(items)

        if status < 200:
            if status == 101:
                if not self._upgrade_requested:
                    raise RemoteProtocolError(
                        "received 101 Switching Protocols but no upgrade was requested"
                    )
                self._upgrade()
                return ResponseHead(status, reason, version, headers)
            self._interim += 1
            if self._interim > limits.max_interim_responses:
                raise RemoteProtocolError(
                    f"more than {limits.max_interim_responses} interim (1xx) responses"
                )
            return None

        # Framing fields are found in the lower-cased head: each field line
        # follows an LF (the status line comes first), and names are tokens
        # directly followed by the colon, so "\nname:" finds exactly them.
        low = text.lower()
        if "\nconnection:" in low:
            values = field_values("connection", CONNECTION_VALUES, text, items, folded)
            if len(values) == 1 and "," not in values[0]:
                connection = {values[0].lower()}
            else:
                connection = connection_tokens(values)
            self._keep_alive = "close" not in connection and (
                version != "1.0" or "keep-alive" in connection
            )
        else:
            self._keep_alive = version != "1.0"
        self._body_received = 0
        method = self._method
        if method == "CONNECT" and status < 300:
            self._upgrade()
            return ResponseHead(status, reason, version, headers)
        if method == "HEAD" or status in NO_BODY_STATUSES:
            self._mode = END
        elif "\ntransfer-encoding:" in low:
            if "\ncontent-length:" in low:
                raise RemoteProtocolError(
                    "response has both Transfer-Encoding and Content-Length"
                )
            if transfer_framing(text, items, folded):
                self._mode = CHUNK_SIZE
                if version == "1.0":
                    # RFC 9112 section 6.1: framing of a 1.0 message with
                    # Transfer-Encoding is faulty; read it, then close.
                    self._keep_alive = False
            else:
                # Such a body, like one without framing below, ends only at
                # EOF, after which keep_alive is false whatever _keep_alive holds.
                self._mode = UNTIL_CLOSE
        elif "\ncontent-length:" in low:
            values = field_values("content-length", CONTENT_LENGTH_VALUES, text, items, folded)
            value = values[0]
            if (
                len(values) == 1
                and value.isdigit()
                and value.isascii()
                and len(value) <= limits.max_content_length_digits
            ):
                length = int(value)  # only ASCII digits: int() cannot misread it
            else:
                length = content_length(values, limits)
            self._expected_length = length
            self._mode = LENGTH if length else END
        else:
            self._mode = UNTIL_CLOSE
        # content_encoded by position: a keyword makes the call build a dict,
        # a cost every response would pay.
        return ResponseHead(status, reason, version, headers, "\ncontent-encoding:" in low)

    # -- LENGTH and UNTIL_CLOSE ---------------------------------------------------

    def _read_length(self) -> Data | NeedData:
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        left = self._expected_length - self._body_received
        if available == 0:
            if self._eof:
                self._fail(
                    f"connection closed after {self._body_received} of "
                    f"{self._expected_length} body bytes"
                )
            return NEED_DATA
        if available <= left:
            # A bytes object sliced from 0 is itself: a whole read is handed out uncopied.
            piece = buf[pos:] if type(buf) is bytes else bytes(buf[pos:])
            self._buf = b""
            self._pos = 0
            taken = available
        else:
            piece = bytes(buf[pos : pos + left])
            self._pos = pos + left
            taken = left
        self._body_received += taken
        if taken == left:
            self._mode = END
        return Data(piece)

    def _read_until_close(self) -> Data | EndOfMessage | NeedData:
        buf = self._buf
        pos = self._pos
        if pos < len(buf):
            piece = buf[pos:] if type(buf) is bytes else bytes(buf[pos:])
            # _pos is left past the end of the emptied buffer: this mode's
            # readers take that as nothing buffered, and feed() replaces both.
            # Nor is _body_received counted: no message of this mode names it.
            self._buf = b""
            return Data(piece)
        if self._eof:
            return self._end_message(Headers())
        return NEED_DATA

    # -- CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS --------------------------------

    def _read_chunked(self) -> Data | EndOfMessage | NeedData:
        if self._scan == 0:
            # The fast path first (see the module documentation).
            run = self._read_chunk_run(self._buf, self._pos)
            if run is not None:
                if self._pos >= len(self._buf):
                    self._buf = b""
                    self._pos = 0
                return run
        # The reference: one step of the chunk modes at a time.
        while True:
            mode = self._mode
            buf = self._buf
            pos = self._pos
            if mode is CHUNK_DATA:
                available = len(buf) - pos
                if available == 0:
                    break
                left = self._chunk_left
                if available <= left:
                    piece = buf[pos:] if type(buf) is bytes else bytes(buf[pos:])
                    self._buf = b""
                    self._pos = 0
                else:
                    piece = bytes(buf[pos : pos + left])
                    self._pos = pos + left
                self._chunk_left = left - len(piece)
                self._body_received += len(piece)
                if self._chunk_left == 0:
                    self._mode = CHUNK_CRLF
                return Data(piece)
            if mode is CHUNK_CRLF:
                if len(buf) - pos < 2:
                    if len(buf) > pos and buf[pos] != 13:
                        self._fail("chunk data is not followed by CRLF")
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    self._fail("chunk data is not followed by CRLF")
                self._pos = pos + 2
                self._mode = CHUNK_SIZE
                # On to the size line that follows.
            size = self._read_chunk_size()  # mode is CHUNK_SIZE
            if size is None:
                break
            if size == 0:
                # _scan is 0 again now that the size line is whole, and
                # _fields_seen still is since the head ended.
                self._mode = TRAILERS
                return self._read_trailers()
            self._chunk_left = size
            self._mode = CHUNK_DATA
        if self._eof:
            self._fail(
                f"connection closed inside a chunked body after {self._body_received} body bytes"
            )
        return NEED_DATA

    def _read_chunk_size(self) -> int | None:
        """The next chunk's size, its line consumed; None until the whole line is here."""
        buf = self._buf
        pos = self._pos
        scanned = self._scan
        eol = buf.find(b"\r\n", pos + max(scanned - 1, 0), pos + self._limits.max_line_size + 2)
        try:
            if eol < 0:
                check_unfinished_chunk_size(buf, pos, scanned, self._limits)
                if self._eof:
                    raise RemoteProtocolError(
                        "connection closed inside a chunked body after "
                        f"{self._body_received} body bytes"
                    )
                self._scan = len(buf) - pos
                return None
            size = parse_chunk_size_line(bytes(buf[pos:eol]), self._limits)
        except RemoteProtocolError as exc:
            self._fail(str(exc))
        self._scan = 0
        self._pos = eol + 2
        return size

    def _read_chunk_run(self, buf: bytes | bytearray | memoryview, pos: int) -> Data | None:
        """Apply the fast path :func:`~asyncnet._http._readers.chunk_run` to ``buf``.

        After data, ``_pos`` is past what it took (the caller drops a used-up
        buffer) and the mode is where the steps would be.
        """
        run = chunk_run(buf, pos, self._mode, self._chunk_left, self._limits.max_chunk_size_digits)
        if run is None:
            return None
        piece, self._pos, self._mode, self._chunk_left = run
        self._body_received += len(piece)
        return Data(piece)

    def _read_trailers(self) -> EndOfMessage | NeedData:
        limits = self._limits
        buf = self._buf
        pos = self._pos
        if len(buf) - pos >= 2 and buf[pos] == 13 and buf[pos + 1] == 10:
            self._pos = pos + 2
            return self._end_message(Headers())
        text = self._take_block(True)
        if text is None:
            return NEED_DATA
        try:
            # parse_fields refuses a first line that starts with whitespace.
            check_line_lengths(text, limits.max_line_size, "trailer")
            items, _ = parse_fields(text, limits, "trailer")
        except RemoteProtocolError as exc:
            self._fail(str(exc))
        return self._end_message(Headers._from_wire(items))
