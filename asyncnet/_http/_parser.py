"""A strict, bounded, sans-IO HTTP/1.1 response parser (RFC 9112).

The parser is fed bytes and hands back events; it never touches a socket, a
loop or a clock, so it is tested with byte strings split at every position.

States (:attr:`ResponseParser.state`) and the calls that move between them::

    IDLE --start_response()--> HEAD --head--> BODY --end--> DONE (reusable)
                                 |                    \\--> CLOSED (must close)
                                 |--101/CONNECT 2xx--> UPGRADED
    DONE --start_response()--> HEAD
    any --malformed input--> ERROR

Events, in order, for each response: one :class:`ResponseHead` (interim 1xx
responses are skipped), zero or more :class:`Data`, one :class:`EndOfMessage`.
:data:`NEED_DATA` means "feed more bytes (or EOF)".

Every malformed or oversized input raises :class:`~asyncnet.RemoteProtocolError`
and leaves the parser in ``ERROR``: the connection must be discarded.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, Literal, NoReturn

from .._errors import LocalProtocolError, RemoteProtocolError, UsageError
from ._headers import Headers, share_names

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


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`ResponseParser.next_event` when more bytes (or EOF) are needed.
NEED_DATA: Final = _NeedData.NEED_DATA


# Events are plain slotted records, not frozen dataclasses: a frozen
# dataclass sets each field through object.__setattr__, which made building
# the three events of a small response cost about 1.8 us, a cost every
# response pays. The parser never changes an event after returning it.


@dataclass(slots=True)
class ResponseHead:
    """The status line and header fields of the final (non-1xx) response."""

    status: int
    reason: str
    http_version: str  # "1.1" or "1.0" (any "1.x" the server sent)
    headers: Headers
    #: False when the head has no Content-Encoding field: the body needs no
    #: content decoding, and nobody needs to look the field up to know it.
    content_encoded: bool = True


@dataclass(slots=True)
class Data:
    """A piece of the body, after chunked decoding but before content decoding."""

    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    """The body is complete; ``trailers`` holds fields sent after a chunked body."""

    trailers: Headers


Event = ResponseHead | Data | EndOfMessage


@dataclass(frozen=True)
class ParserLimits:
    """Size limits that bound the memory and work one response head can cost.

    A peer that exceeds a limit gets a :class:`~asyncnet.RemoteProtocolError`
    instead of an ever-growing buffer. The defaults are generous for real
    servers (aiohttp, for one, stops header lines at 8190 bytes).
    """

    #: Longest status line, header or trailer line, or chunk-size line, without
    #: its CRLF; 8 KiB, the line buffer size nginx uses by default.
    max_line_size: int = 8192
    #: Most header fields in one head, and separately in one trailer section.
    max_header_count: int = 100
    #: Largest head (status line, fields, blank line). h11 and Node.js stop at
    #: 16 KiB; 64 KiB leaves room for large cookies and security policies.
    max_head_size: int = 64 * 1024
    #: Largest trailer section after a chunked body.
    max_trailer_size: int = 16 * 1024
    #: Most 1xx interim responses skipped before the final response.
    max_interim_responses: int = 10
    #: Most hex digits in a chunk size (16 digits already allow 2**64 - 1 bytes).
    max_chunk_size_digits: int = 16
    #: Most decimal digits in a Content-Length (19 digits already exceed 2**63).
    max_content_length_digits: int = 19

    def __post_init__(self) -> None:
        for name in (
            "max_line_size",
            "max_header_count",
            "max_head_size",
            "max_trailer_size",
            "max_chunk_size_digits",
            "max_content_length_digits",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"ParserLimits.{name} must be a positive int, got {value!r}")
        value = self.max_interim_responses
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UsageError(
                f"ParserLimits.max_interim_responses must be an int >= 0, got {value!r}"
            )


class ParserState(enum.Enum):
    """Where a :class:`ResponseParser` is in the request/response cycle."""

    IDLE = "IDLE"  # no request outstanding: any byte received is an error
    HEAD = "HEAD"  # waiting for (or inside) the response head
    BODY = "BODY"  # head returned; body and EndOfMessage still to come
    DONE = "DONE"  # response complete; the connection may carry another request
    CLOSED = "CLOSED"  # response complete (or EOF); the connection must be closed
    ERROR = "ERROR"  # malformed input was seen; the connection must be discarded
    UPGRADED = "UPGRADED"  # 101 or CONNECT 2xx: the bytes are no longer HTTP/1.1


# -- grammar -------------------------------------------------------------------
# The head is decoded as Latin-1 once, so every str character stands for one byte
# and the character classes below are byte classes.

_TCHAR = r"[-!#$%&'*+.^_`|~0-9A-Za-z]"
# status-line = HTTP-version SP status-code SP [ reason-phrase ]; the SP before an
# empty reason may be missing, as llhttp, h11 and browsers accept.
_STATUS_LINE = re.compile(r"HTTP/1\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
# field-line = field-name ":" OWS field-value OWS. A value starts and ends with a
# visible character (VCHAR / obs-text) and may hold SP / HTAB inside; the form
# below (first char, greedy middle, last char) is the fastest for ``re``.
_VALUE = (
    r"(?:[\x21-\x7e\x80-\xff][\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff]"
    r"|[\x21-\x7e\x80-\xff]|)"
)
# One match per line, anchored at line starts, so that ``findall`` cannot skip
# junk (see _parse_fields).
_FIELD_LINE = re.compile(rf"^({_TCHAR}+):[ \t]*({_VALUE})[ \t]*\r\n", re.MULTILINE)
_ONE_FIELD = re.compile(rf"({_TCHAR}+):[ \t]*({_VALUE})[ \t]*")
_OBS_FOLD = re.compile(rf"[ \t]+({_VALUE})[ \t]*")
_TOKEN = re.compile(rf"{_TCHAR}+")
_DIGITS = re.compile(r"[0-9]+")
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# transfer-coding = token *( OWS ";" OWS token "=" ( token / quoted-string ) )
_CODING = re.compile(rf"({_TCHAR}+)(?:[ \t]*;[ \t]*{_TCHAR}+=(?:{_TCHAR}+|{_QUOTED}))*")
# chunk = chunk-size [ chunk-ext ] CRLF; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[-!#$%&'*+.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+|"
    rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*)'
)
# A plain size line (no extension), and the same behind the CRLF that ends the
# previous chunk's data: what _read_chunk_run takes in one match.
_CHUNK_SIZE_AT = re.compile(rb"([0-9A-Fa-f]+)\r\n")
_NEXT_CHUNK_AT = re.compile(rb"\r\n([0-9A-Fa-f]+)\r\n")
_CHUNK_EXT_CHARS = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")

_HEX_BYTES: Final = frozenset(b"0123456789abcdefABCDEF")
_NO_BODY_STATUSES: Final = frozenset({204, 304})

# Body framing modes (internal).
_M_IDLE: Final = 0
_M_HEAD: Final = 1
_M_LENGTH: Final = 2
_M_CHUNK_SIZE: Final = 3
_M_CHUNK_DATA: Final = 4
_M_CHUNK_CRLF: Final = 5
_M_TRAILERS: Final = 6
_M_UNTIL_CLOSE: Final = 7
_M_END: Final = 8  # EndOfMessage is due
_M_AFTER: Final = 9  # response complete (DONE or CLOSED)
_M_UPGRADED: Final = 10
_M_ERROR: Final = 11

_BODY_MODES: Final = frozenset(
    {_M_LENGTH, _M_CHUNK_SIZE, _M_CHUNK_DATA, _M_CHUNK_CRLF, _M_TRAILERS, _M_UNTIL_CLOSE, _M_END}
)


def _show(text: str | bytes, limit: int = 40) -> str:
    """Quote a piece of peer input for an error message, shortened."""
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)


def _field_line_error(line: str, what: str) -> str:
    """Explain why ``line`` is not a valid field line (called only on failure)."""
    name, colon, value = line.partition(":")
    if not colon:
        if "\n" in line:
            return f"{what} line {_show(line)} contains a bare LF (lines must end with CRLF)"
        if "\r" in line:
            return f"{what} line {_show(line)} contains a bare CR"
        return f"{what} line {_show(line)} has no colon"
    if not name:
        return f"{what} line {_show(line)} has an empty field name"
    if name[-1] in " \t":
        return f"whitespace between {what} name {_show(name.rstrip())} and the colon"
    if not _TOKEN.fullmatch(name):
        if "\r" in name or "\n" in name:
            return f"{what} line {_show(line)} contains a bare CR or LF"
        return f"{what} name {_show(name)} is not a token"
    for char in value:
        if char == "\r":
            return f"{what} {name!r} value contains a bare CR"
        if char == "\n":
            return f"{what} {name!r} value contains a bare LF (lines must end with CRLF)"
        if char == "\x00":
            return f"{what} {name!r} value contains a NUL byte"
        if (char < " " and char != "\t") or char == "\x7f":
            return f"{what} {name!r} value contains control character 0x{ord(char):02x}"
    return f"{what} line {_show(line)} is malformed"  # pragma: no cover - defensive


def _status_line_error(line: str) -> str:
    """Explain why ``line`` is not a valid status line (called only on failure)."""
    if not line:
        return "expected a status line, got an empty line"
    if "\n" in line:
        return f"status line {_show(line)} contains a bare LF (lines must end with CRLF)"
    if "\r" in line:
        return f"status line {_show(line)} contains a bare CR"
    if not line.startswith("HTTP/"):
        return f"status line {_show(line)} does not start with 'HTTP/'"
    if not re.match(r"HTTP/1\.[0-9] ", line):
        version = line[5:].split(" ", 1)[0]
        return f"unsupported HTTP version {_show(version)} in status line (expected 1.x)"
    code = line[9:].split(" ", 1)[0]
    if not re.fullmatch(r"[0-9]{3}", code):
        return f"status code {_show(code)} is not three digits"
    return f"status line {_show(line)} has an invalid reason phrase"


# Status lines repeat ("HTTP/1.1 200 OK"); remembering a few short valid ones
# skips the regex. Bounded: cleared when full, so a peer cannot grow it.
_STATUS_CACHE: dict[str, tuple[int, str, str]] = {}
_STATUS_CACHE_SIZE: Final = 64


def _parse_status_line(line: str) -> tuple[int, str, str]:
    cached = _STATUS_CACHE.get(line)
    if cached is not None:
        return cached
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise RemoteProtocolError(_status_line_error(line))
    minor, code, reason = match.groups()
    status = int(code)  # exactly three ASCII digits
    if status < 100:
        raise RemoteProtocolError(f"status code {code} is below 100")
    result = (status, "1." + minor, reason or "")
    if len(line) <= 64:
        if len(_STATUS_CACHE) >= _STATUS_CACHE_SIZE:
            _STATUS_CACHE.clear()
        _STATUS_CACHE[line] = result
    return result


def _parse_fields(text: str, limits: ParserLimits, what: str) -> tuple[list[tuple[str, str]], bool]:
    """Parse field lines, each ending in CRLF, into ``(items, folded)``.

    The whole block is matched in one ``findall``; every match consumes exactly
    one line (anchored at a line start, ending at its LF), so the block is valid
    exactly when the number of matches equals the number of LFs. Otherwise the
    slow path handles obs-fold (``folded`` is then True) or names the error.
    """
    items: list[tuple[str, str]] = _FIELD_LINE.findall(text)
    folded = False
    if len(items) != text.count("\n"):
        items = _parse_fields_slowly(text, what)
        folded = True
    if len(items) > limits.max_header_count:
        raise RemoteProtocolError(
            f"{what} section has more than {limits.max_header_count} fields"
        )
    return share_names(items), folded


def _parse_fields_slowly(text: str, what: str) -> list[tuple[str, str]]:
    """Line-by-line parse for blocks with obs-fold, or to name the first error."""
    items: list[tuple[str, str]] = []
    for line in text.split("\r\n")[:-1]:
        if line[:1] in (" ", "\t"):
            # obs-fold (RFC 9112 section 5.2): a user agent replaces it by SP.
            fold = _OBS_FOLD.fullmatch(line)
            if not items:
                raise RemoteProtocolError(
                    f"first {what} line {_show(line)} starts with whitespace"
                )
            if fold is None:
                raise RemoteProtocolError(_field_line_error("x:" + line, what))
            name, value = items[-1]
            more = fold.group(1)
            if more:
                items[-1] = (name, f"{value} {more}" if value else more)
            continue
        match = _ONE_FIELD.fullmatch(line)
        if match is None:
            raise RemoteProtocolError(_field_line_error(line, what))
        items.append((match.group(1), match.group(2)))
    return items


def _check_line_lengths(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        longest = max(map(len, text.split("\r\n")))
        if longest > limit:
            raise RemoteProtocolError(f"{what} line exceeds {limit} bytes")


def _content_length(values: list[str], limits: ParserLimits) -> int:
    """The one length all Content-Length fields (and list members) agree on."""
    length: int | None = None
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not _DIGITS.fullmatch(item):
                raise RemoteProtocolError(
                    f"Content-Length value {_show(item)} is not a decimal number"
                )
            if len(item) > limits.max_content_length_digits:
                raise RemoteProtocolError(
                    f"Content-Length value has more than "
                    f"{limits.max_content_length_digits} digits"
                )
            number = int(item)
            if length is not None and number != length:
                raise RemoteProtocolError(
                    f"conflicting Content-Length values {length} and {number}"
                )
            length = number
    assert length is not None
    return length


def _transfer_codings(values: list[str]) -> list[str]:
    """Lower-cased transfer-coding names, in order, from every Transfer-Encoding field."""
    codings: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue  # empty list elements are allowed (RFC 9110 section 5.6.1)
            match = _CODING.fullmatch(item)
            if match is None:
                raise RemoteProtocolError(f"Transfer-Encoding {_show(item)} is not a valid coding")
            codings.append(match.group(1).lower())
    if not codings:
        raise RemoteProtocolError("Transfer-Encoding field has no coding")
    return codings


def _values_pattern(name: str) -> re.Pattern[str]:
    # One line per field without obs-fold: the value runs from the colon to the
    # CR, less the whitespace around it. ASCII-only case folding, as for tokens.
    return re.compile(rf"\n{name}:[ \t]*([^\r]*?)[ \t]*\r", re.ASCII | re.IGNORECASE)


_CONNECTION_VALUES: Final = _values_pattern("connection")
_TRANSFER_ENCODING_VALUES: Final = _values_pattern("transfer-encoding")
_CONTENT_LENGTH_VALUES: Final = _values_pattern("content-length")


def _field_values(
    name: str, pattern: re.Pattern[str], text: str,
    items: list[tuple[str, str]], folded: bool,
) -> list[str]:
    """The values of every field called ``name`` (lower case) in a parsed head.

    Without obs-fold each field is one line of ``text``, found by ``pattern``
    (one scan, no Python loop over the fields); with obs-fold the parsed
    ``items`` are searched instead.
    """
    if folded:
        return [v for n, v in items if n.lower() == name]
    values: list[str] = pattern.findall(text)
    return values


def _connection_tokens(values: list[str]) -> set[str]:
    return {t.strip(" \t").lower() for value in values for t in value.split(",")}


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
        self._limits = limits if limits is not None else ParserLimits()
        self._buf: bytes | bytearray = b""
        self._pos = 0  # bytes of _buf already consumed
        self._scan = 0  # bytes after _pos already searched for the end of a head
        self._fields_seen = 0  # field lines already checked in a pending head/trailers
        self._mode = _M_IDLE
        self._method = ""
        self._upgrade_requested = False
        self._keep_alive = False
        self._eof = False
        self._error: str | None = None
        self._expected_length = 0  # Content-Length of the current body
        self._body_received = 0
        self._chunk_left = 0
        self._interim = 0
        self._trailing = b""

    # -- public state -----------------------------------------------------------

    @property
    def limits(self) -> ParserLimits:
        """The limits this parser enforces."""
        return self._limits

    @property
    def state(self) -> ParserState:
        """The current :class:`ParserState`."""
        mode = self._mode
        if mode == _M_HEAD:
            return ParserState.HEAD
        if mode in _BODY_MODES:
            return ParserState.BODY
        if mode == _M_IDLE:
            return ParserState.CLOSED if self._eof else ParserState.IDLE
        if mode == _M_AFTER:
            return ParserState.DONE if self.keep_alive else ParserState.CLOSED
        if mode == _M_UPGRADED:
            return ParserState.UPGRADED
        return ParserState.ERROR

    @property
    def keep_alive(self) -> bool:
        """True when the finished response lets the connection carry another request.

        False for ``Connection: close``, an HTTP/1.0 response without
        ``Connection: keep-alive``, a body delimited by EOF, an upgrade, an
        error, or bytes that arrived after the response before any new request.
        """
        return self._keep_alive and self._mode in (_M_AFTER, _M_IDLE) and not self._eof

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the response ended: the new protocol's after an upgrade."""
        if self._mode == _M_UPGRADED:
            return self._trailing
        return bytes(self._buf[self._pos :]) if self._mode == _M_AFTER else b""

    @property
    def direct_body_bytes(self) -> int:
        """Body bytes the caller may receive itself instead of feeding them.

        Non-zero only inside a ``Content-Length`` body with nothing buffered:
        those bytes need no parsing, so an I/O layer can read them straight
        into their final buffer and report them with :meth:`consume_direct_body`.
        """
        if self._mode == _M_LENGTH and self._pos >= len(self._buf) and not self._eof:
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
        if self._mode == _M_AFTER and self.keep_alive and self._pos == len(self._buf):
            self._buf = b""
            self._pos = 0
        elif self._mode != _M_IDLE or self._eof:
            raise LocalProtocolError(
                f"cannot start a new response while the parser is {self.state.value}"
            )
        self._method = method
        self._upgrade_requested = upgrade_requested
        self._mode = _M_HEAD
        self._scan = 0
        self._fields_seen = 0
        self._interim = 0
        self._keep_alive = False

    def feed(self, data: bytes) -> None:
        """Add received bytes; refuses bytes when no response is expected.

        Bytes on an idle connection, or after a response that ended the
        connection, are never parsed as a response: they raise
        :class:`~asyncnet.RemoteProtocolError` and the parser enters ``ERROR``.
        """
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # never keep a reference to a buffer the caller may reuse
        mode = self._mode
        if mode == _M_ERROR:
            raise RemoteProtocolError(f"parser already failed: {self._error}")
        if mode == _M_UPGRADED:
            self._trailing += data
            return
        if self._eof:
            self._fail(f"received {len(data)} bytes after EOF")
        if mode in (_M_IDLE, _M_AFTER):
            if mode == _M_AFTER and not self._keep_alive:
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
            if pos:
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

    def events(self, data: bytes | memoryview) -> list[ResponseHead | Data | EndOfMessage]:
        """Feed ``data`` and return every event it completes (a faster feed+drain loop).

        Stops after :class:`EndOfMessage` (or the head of an upgrade): bytes
        behind it are left for :attr:`trailing_data`, as with :meth:`next_event`.
        Malformed input raises at once, and the events of this call are lost
        with the response they belonged to. ``data`` may be a view of a
        receive buffer that is reused afterwards: the parser keeps no
        reference to it, and copies what it must keep.
        """
        if (
            _M_CHUNK_SIZE <= self._mode <= _M_CHUNK_CRLF
            and self._pos >= len(self._buf)
            and self._scan == 0
            and not self._eof
            and len(data)
        ):
            # A read that continues a chunked body (at a size line, inside a
            # chunk's data or at the CRLF after it), nothing buffered: take its
            # chunks in one run, straight from ``data``.
            run = self._read_chunk_run(data, 0)
            pos = 0 if run is None else self._pos
            self._pos = 0
            if pos >= len(data):
                self._buf = b""
                return [] if run is None else [run]
            # A run that stopped early: keep the rest, as a copy.
            self._buf = data[pos:] if type(data) is bytes else bytes(data[pos:])
            return self._drain([] if run is None else [run])
        if type(data) is not bytes:
            data = bytes(data)
        if (
            self._mode == _M_HEAD
            and type(data) is bytes
            and self._pos >= len(self._buf)
            and not self._eof
        ):
            # The common case: a whole head at the start of a read, often with
            # its whole body. Same steps as feed + next_event, fewer calls.
            end = data.find(b"\r\n\r\n")
            if 0 <= end <= self._limits.max_head_size - 4:
                self._buf = data
                self._pos = end + 4
                try:
                    head = self._parse_head(data[: end + 2].decode("latin-1"))
                except RemoteProtocolError as exc:
                    self._fail(str(exc))
                if head is not None and self._mode == _M_LENGTH:
                    length = self._expected_length
                    if len(data) - end - 4 == length:
                        self._buf = b""
                        self._pos = 0
                        self._body_received = length
                        self._mode = _M_AFTER
                        return [head, Data(data[end + 4 :]), EndOfMessage(Headers())]
                out: list[ResponseHead | Data | EndOfMessage] = [] if head is None else [head]
                if head is not None and self._mode == _M_UPGRADED:
                    return out
                return self._drain(out)
        elif (
            self._mode == _M_LENGTH
            and type(data) is bytes
            and self._pos >= len(self._buf)
            and not self._eof
        ):
            # Body bytes of a Content-Length body, nothing buffered: the same
            # events as feed + next_event, without the detour.
            left = self._expected_length - self._body_received
            size = len(data)
            if 0 < size < left:
                self._body_received += size
                return [Data(data)]
            if size == left:
                self._body_received = self._expected_length
                return [Data(data), self._end_message(Headers())]
        self.feed(data)
        return self._drain([])

    def _drain(
        self, out: list[ResponseHead | Data | EndOfMessage]
    ) -> list[ResponseHead | Data | EndOfMessage]:
        append = out.append
        next_event = self.next_event
        while True:
            event = next_event()
            if event is NEED_DATA:
                return out
            append(event)
            if type(event) is EndOfMessage or self._mode == _M_UPGRADED:
                return out

    def next_event(self) -> ResponseHead | Data | EndOfMessage | Literal[_NeedData.NEED_DATA]:
        """Return the next event, or :data:`NEED_DATA` until more bytes or EOF arrive.

        Raises :class:`~asyncnet.RemoteProtocolError` for malformed input; the
        parser is then dead and every later call raises again.
        """
        mode = self._mode
        if mode == _M_LENGTH:
            return self._read_length()
        if mode == _M_HEAD:
            return self._read_head()
        if mode == _M_END:
            return self._end_message(Headers())
        if mode == _M_UNTIL_CLOSE:
            return self._read_until_close()
        if mode in (_M_CHUNK_SIZE, _M_CHUNK_DATA, _M_CHUNK_CRLF):
            return self._read_chunked()
        if mode == _M_TRAILERS:
            return self._read_trailers()
        if mode == _M_AFTER:
            if self._pos < len(self._buf) and not self._keep_alive:
                extra = len(self._buf) - self._pos
                self._fail(f"received {extra} bytes after a response that ended the connection")
            return NEED_DATA
        if mode == _M_ERROR:
            raise RemoteProtocolError(f"parser already failed: {self._error}")
        return NEED_DATA  # IDLE, UPGRADED

    # -- internals ------------------------------------------------------------

    def _fail(self, message: str) -> NoReturn:
        self._mode = _M_ERROR
        self._error = message
        self._keep_alive = False
        raise RemoteProtocolError(message)

    def _read_head(self) -> ResponseHead | Literal[_NeedData.NEED_DATA]:
        limits = self._limits
        while True:
            buf = self._buf
            start = self._pos
            end = buf.find(b"\r\n\r\n", start + max(self._scan - 3, 0))
            if end < 0:
                self._check_partial_block(trailer=False)
                return NEED_DATA
            size = end + 4 - start
            if size > limits.max_head_size:
                self._fail(f"response head exceeds {limits.max_head_size} bytes")
            text = buf[start : end + 2].decode("latin-1")
            self._pos = end + 4
            self._scan = 0
            self._fields_seen = 0
            try:
                head = self._parse_head(text)
            except RemoteProtocolError as exc:
                self._fail(str(exc))
            if head is not None:
                return head
            # An interim 1xx response was skipped; look for the next head.

    def _check_partial_block(self, trailer: bool) -> None:
        """Reject a head or trailer section that cannot become valid, before its end.

        Checks the complete lines not yet checked and the unfinished last one,
        so an oversized or malformed block fails early however it is split,
        while each byte is scanned a bounded number of times.
        """
        limits = self._limits
        buf = self._buf
        start = self._pos
        pending = len(buf) - start
        what = "trailer" if trailer else "response head"
        if self._eof:
            if trailer:
                self._fail("connection closed inside the trailer section")
            if pending == 0:
                self._fail("connection closed before any response bytes were received")
            self._fail(f"connection closed inside the response head after {pending} bytes")
        max_size = limits.max_trailer_size if trailer else limits.max_head_size
        if pending > max_size:
            section = "trailer section" if trailer else "response head"
            self._fail(f"{section} exceeds {max_size} bytes")
        line_start = start + self._scan
        while True:
            lf = buf.find(b"\n", line_start)
            if lf < 0:
                break
            self._check_line(bytes(buf[line_start:lf]), line_start - start, trailer)
            line_start = lf + 1
        # The unfinished last line: checked in place, without copying it.
        end = len(buf)
        if end - line_start > limits.max_line_size + 1:
            self._fail(f"{what} line exceeds {limits.max_line_size} bytes")
        if buf.find(b"\r", line_start, end - 1) >= 0:
            rest = bytes(buf[line_start : line_start + 41])
            self._fail(f"{what} line {_show(rest)} contains a bare CR")
        first = buf[line_start : line_start + 7]
        if first[:1] in (b" ", b"\t") and (
            line_start == start if trailer else buf.find(b"\n", start) + 1 == line_start
        ):
            name = "trailer" if trailer else "header"
            rest = bytes(buf[line_start : line_start + 41])
            self._fail(f"first {name} line {_show(rest)} starts with whitespace")
        if not trailer and line_start == start and first != b"HTTP/1."[: len(first)]:
            # No status line starts with these bytes.
            rest = bytes(buf[line_start : line_start + 41])
            self._fail(_status_line_error(rest.decode("latin-1")))
        self._scan = line_start - start

    def _check_line(self, line: bytes, offset: int, trailer: bool) -> None:
        """Check one complete line (LF excluded) at ``offset`` in a pending block."""
        what = "trailer" if trailer else "header"
        if not line.endswith(b"\r"):
            self._fail(f"{what} line {_show(line)} ends with a bare LF (lines must end with CRLF)")
        text = line[:-1].decode("latin-1")
        if len(text) > self._limits.max_line_size:
            self._fail(f"{what} line exceeds {self._limits.max_line_size} bytes")
        try:
            if offset == 0 and not trailer:
                _parse_status_line(text)
            elif text[:1] in (" ", "\t"):
                first_field = 0 if trailer else self._buf.find(b"\n", self._pos) + 1 - self._pos
                if offset == first_field:
                    raise RemoteProtocolError(
                        f"first {what} line {_show(text)} starts with whitespace"
                    )
                _parse_fields_slowly("x: y\r\n" + text + "\r\n", what)
            elif text:
                _parse_fields_slowly(text + "\r\n", what)
                self._fields_seen += 1
                if self._fields_seen > self._limits.max_header_count:
                    raise RemoteProtocolError(
                        f"{what} section has more than {self._limits.max_header_count} fields"
                    )
        except RemoteProtocolError as exc:
            self._fail(str(exc))

    def _parse_head(self, text: str) -> ResponseHead | None:
        """Parse one complete head (``text`` ends with the CRLF of its last line).

        Returns None for a skipped interim (1xx) response.
        """
        limits = self._limits
        eol = text.find("\r\n")
        status, version, reason = _parse_status_line(text[:eol])
        if len(text) > limits.max_line_size:
            _check_line_lengths(text, limits.max_line_size, "response head")
        if eol + 2 < len(text):
            items, folded = _parse_fields(text[eol + 2 :], limits, "header")
        else:
            items, folded = [], False
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
            values = _field_values("connection", _CONNECTION_VALUES, text, items, folded)
            if len(values) == 1 and "," not in values[0]:
                connection = {values[0].lower()}
            else:
                connection = _connection_tokens(values)
            if "close" in connection:
                keep_alive = False
            else:
                keep_alive = version != "1.0" or "keep-alive" in connection
        else:
            keep_alive = version != "1.0"
        self._keep_alive = keep_alive
        self._body_received = 0

        method = self._method
        if method == "CONNECT" and status < 300:
            self._upgrade()
            return ResponseHead(status, reason, version, headers)
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            self._mode = _M_END
            return ResponseHead(status, reason, version, headers, "\ncontent-encoding:" in low)

        if "\ntransfer-encoding:" in low:
            if "\ncontent-length:" in low:
                raise RemoteProtocolError(
                    "response has both Transfer-Encoding and Content-Length"
                )
            values = _field_values(
                "transfer-encoding", _TRANSFER_ENCODING_VALUES, text, items, folded
            )
            codings = _transfer_codings(values)
            if "chunked" in codings[:-1]:
                if codings.count("chunked") > 1:
                    raise RemoteProtocolError("Transfer-Encoding applies chunked more than once")
                # chunked is not the final coding: the body runs until EOF
                # (RFC 9112 section 6.3, rule 4).
                self._mode = _M_UNTIL_CLOSE
                self._keep_alive = False
            elif codings[-1] == "chunked":
                self._mode = _M_CHUNK_SIZE
                if version == "1.0":
                    # RFC 9112 section 6.1: framing of a 1.0 message with
                    # Transfer-Encoding is faulty; read it, then close.
                    self._keep_alive = False
            else:
                self._mode = _M_UNTIL_CLOSE
                self._keep_alive = False
        elif "\ncontent-length:" in low:
            values = _field_values(
                "content-length", _CONTENT_LENGTH_VALUES, text, items, folded
            )
            value = values[0]
            if (
                len(values) == 1
                and value.isdigit()
                and value.isascii()
                and len(value) <= limits.max_content_length_digits
            ):
                length = int(value)  # only ASCII digits: int() cannot misread it
            else:
                length = _content_length(values, limits)
            self._expected_length = length
            self._mode = _M_LENGTH if length else _M_END
        else:
            self._mode = _M_UNTIL_CLOSE
            self._keep_alive = False
        return ResponseHead(status, reason, version, headers, "\ncontent-encoding:" in low)

    def _upgrade(self) -> None:
        self._mode = _M_UPGRADED
        self._keep_alive = False
        self._trailing = bytes(self._buf[self._pos :])
        self._buf = b""
        self._pos = 0

    def _end_message(self, trailers: Headers) -> EndOfMessage:
        self._mode = _M_AFTER
        if self._pos < len(self._buf):
            # Bytes that arrived before the next request was sent cannot be its
            # response: the connection is not reused.
            self._keep_alive = False
        else:
            self._buf = b""
            self._pos = 0
        if self._eof:
            self._keep_alive = False
        return EndOfMessage(trailers)

    def _read_length(self) -> Data | EndOfMessage | Literal[_NeedData.NEED_DATA]:
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
            piece = buf if pos == 0 and type(buf) is bytes else bytes(buf[pos:])
            self._buf = b""
            self._pos = 0
            taken = available
        else:
            piece = bytes(buf[pos : pos + left])
            self._pos = pos + left
            taken = left
        self._body_received += taken
        if taken == left:
            self._mode = _M_END
        return Data(piece)

    def _read_until_close(self) -> Data | EndOfMessage | Literal[_NeedData.NEED_DATA]:
        buf = self._buf
        pos = self._pos
        if pos < len(buf):
            piece = buf if pos == 0 and type(buf) is bytes else bytes(buf[pos:])
            self._buf = b""
            self._pos = 0
            self._body_received += len(piece)
            return Data(piece)
        if self._eof:
            return self._end_message(Headers())
        return NEED_DATA

    def _read_chunked(self) -> Data | EndOfMessage | Literal[_NeedData.NEED_DATA]:
        if self._scan == 0:
            run = self._read_chunk_run(self._buf, self._pos)
            if run is not None:
                if self._pos >= len(self._buf):
                    self._buf = b""
                    self._pos = 0
                return run
        while True:
            mode = self._mode
            buf = self._buf
            pos = self._pos
            if mode == _M_CHUNK_DATA:
                available = len(buf) - pos
                if available == 0:
                    break
                left = self._chunk_left
                if available <= left:
                    piece = buf if pos == 0 and type(buf) is bytes else bytes(buf[pos:])
                    self._buf = b""
                    self._pos = 0
                else:
                    piece = bytes(buf[pos : pos + left])
                    self._pos = pos + left
                self._chunk_left = left - len(piece)
                self._body_received += len(piece)
                if self._chunk_left == 0:
                    self._mode = _M_CHUNK_CRLF
                return Data(piece)
            if mode == _M_CHUNK_CRLF:
                if len(buf) - pos < 2:
                    if len(buf) > pos and buf[pos] != 13:
                        self._fail("chunk data is not followed by CRLF")
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    self._fail("chunk data is not followed by CRLF")
                self._pos = pos + 2
                self._mode = _M_CHUNK_SIZE
                continue
            if mode == _M_CHUNK_SIZE:
                size = self._read_chunk_size()
                if size is None:
                    break
                if size == 0:
                    self._mode = _M_TRAILERS
                    self._scan = 0
                    self._fields_seen = 0
                    return self._read_trailers()
                self._chunk_left = size
                self._mode = _M_CHUNK_DATA
                continue
            raise AssertionError(f"unexpected mode {mode}")  # pragma: no cover
        if self._eof:
            self._fail(
                f"connection closed inside a chunked body after {self._body_received} body bytes"
            )
        return NEED_DATA

    def _read_chunk_run(self, buf: bytes | bytearray | memoryview, pos: int) -> Data | None:
        """Take every complete plain chunk in the buffer at once, as one :class:`Data`.

        The common shape (hex size, CRLF, data, CRLF, no extensions) is
        consumed in one pass, one regular-expression match per chunk boundary,
        so a read carrying many chunks costs one event and one copy. Anything
        else (an extension, the last chunk, a partial size line, an error)
        stops the run; the step-by-step path takes it from there, after the
        data already taken is delivered.

        Reads ``buf`` from ``pos``; when it returns data it has moved
        ``_pos`` past what it took (the caller drops a used-up buffer). The
        data returned is always a new ``bytes``, never a view of ``buf``.
        """
        end = len(buf)
        mode = self._mode
        left = self._chunk_left
        max_digits = self._limits.max_chunk_size_digits
        if mode != _M_CHUNK_DATA:
            # At a size line, or at the CRLF that ends a chunk's data.
            skip = 0 if mode == _M_CHUNK_SIZE else 2
            match = (_CHUNK_SIZE_AT if skip == 0 else _NEXT_CHUNK_AT).match(buf, pos)
            if match is None:
                return None
            after = match.end()
            if after - pos - skip - 2 > max_digits:
                return None
            left = int(match.group(1), 16)
            if left == 0:
                return None
            pos = after
            mode = _M_CHUNK_DATA
        spans: list[tuple[int, int]] = []
        next_chunk = _NEXT_CHUNK_AT.match
        while True:
            # In a chunk's data, ``left`` bytes of it still to come.
            if end - pos < left:
                if pos < end:
                    spans.append((pos, end))
                    left -= end - pos
                    pos = end
                break
            stop = pos + left
            spans.append((pos, stop))
            pos = stop
            left = 0
            mode = _M_CHUNK_CRLF
            match = next_chunk(buf, pos)
            if match is None:
                if end - pos >= 2 and buf[pos] == 13 and buf[pos + 1] == 10:
                    # The CRLF is here, the next size line is not (whole).
                    pos += 2
                    mode = _M_CHUNK_SIZE
                break
            after = match.end()
            if after - pos - 4 > max_digits:
                break
            size = int(match.group(1), 16)
            if size == 0:
                break
            pos = after
            left = size
            mode = _M_CHUNK_DATA
        if not spans:
            return None
        self._pos = pos
        self._mode = mode
        self._chunk_left = left
        if len(spans) == 1 and type(buf) is bytes:
            start, stop = spans[0]
            piece = buf if start == 0 and stop == end else buf[start:stop]
        else:
            with memoryview(buf) as view:
                piece = b"".join([view[start:stop] for start, stop in spans])
        self._body_received += len(piece)
        return Data(piece)

    def _read_chunk_size(self) -> int | None:
        buf = self._buf
        pos = self._pos
        limits = self._limits
        limit = limits.max_line_size
        scanned = self._scan
        eol = buf.find(b"\r\n", pos + max(scanned - 1, 0), pos + limit + 2)
        if eol < 0:
            # Check only what arrived since the last look, so that a size line
            # fed a byte at a time costs linear time.
            end = len(buf)
            if end - pos > limit + 1:
                self._fail(f"chunk-size line exceeds {limit} bytes")
            if buf.find(b"\n", pos + scanned) >= 0:
                self._fail("chunk-size line ends with a bare LF (lines must end with CRLF)")
            cr = buf.find(b"\r", pos + scanned)
            if 0 <= cr < end - 1:
                self._fail("chunk-size line contains a bare CR")
            if end > pos and buf[pos] not in _HEX_BYTES:
                self._fail(f"chunk size {_show(bytes(buf[pos:end]))} is not a hexadecimal number")
            cap = limits.max_chunk_size_digits
            head = buf[pos : pos + cap + 1]
            if len(head) > cap and not head.lstrip(b"0123456789abcdefABCDEF"):
                self._fail(f"chunk size has more than {cap} hex digits")
            if self._eof:
                self._fail(
                    "connection closed inside a chunked body after "
                    f"{self._body_received} body bytes"
                )
            self._scan = end - pos
            return None
        self._scan = 0
        line = bytes(buf[pos:eol])
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            self._fail(self._chunk_line_error(line))
        digits = match.group(1)
        if len(digits) > limits.max_chunk_size_digits:
            self._fail(f"chunk size has more than {limits.max_chunk_size_digits} hex digits")
        self._pos = eol + 2
        return int(digits, 16)

    @staticmethod
    def _chunk_line_error(line: bytes) -> str:
        if b"\n" in line:
            return "chunk-size line ends with a bare LF (lines must end with CRLF)"
        if b"\r" in line:
            return "chunk-size line contains a bare CR"
        head = line.lstrip(b"0123456789abcdefABCDEF")
        if len(head) == len(line):
            return f"chunk size {_show(line)} is not a hexadecimal number"
        rest = head.lstrip(b" \t")
        if not rest.startswith(b";"):
            return f"invalid character after chunk size in {_show(line)}"
        if not _CHUNK_EXT_CHARS.fullmatch(rest):
            return f"chunk extension {_show(rest)} contains a control character"
        return f"malformed chunk extension {_show(rest)}"

    def _read_trailers(self) -> EndOfMessage | Literal[_NeedData.NEED_DATA]:
        limits = self._limits
        buf = self._buf
        pos = self._pos
        if len(buf) - pos >= 2 and buf[pos] == 13 and buf[pos + 1] == 10:
            self._pos = pos + 2
            return self._end_message(Headers())
        end = buf.find(b"\r\n\r\n", pos + max(self._scan - 3, 0))
        if end < 0:
            self._check_partial_block(trailer=True)
            return NEED_DATA
        if end + 4 - pos > limits.max_trailer_size:
            self._fail(f"trailer section exceeds {limits.max_trailer_size} bytes")
        text = buf[pos : end + 2].decode("latin-1")
        self._pos = end + 4
        self._scan = 0
        try:
            if text[:1] in (" ", "\t"):
                raise RemoteProtocolError(
                    f"first trailer line {_show(text)} starts with whitespace"
                )
            _check_line_lengths(text, limits.max_line_size, "trailer")
            items, _ = _parse_fields(text, limits, "trailer")
        except RemoteProtocolError as exc:
            self._fail(str(exc))
        return self._end_message(Headers._from_wire(items))
