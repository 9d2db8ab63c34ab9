"""The pure pieces the response parser reads with: limits, grammar, lines and fields.

Everything here is a function of its arguments (text or bytes and the
:class:`ParserLimits`): it returns what it read or raises
:class:`~asyncnet.RemoteProtocolError` naming what is wrong, and never keeps
state between calls except the bounded status-line cache. The state machine
that calls these functions, and turns their verdicts into its ``ERROR`` state,
is :mod:`asyncnet._http._parser`.

The head is decoded as Latin-1 once, so every str character stands for one
byte and the character classes below are byte classes. The token grammar
itself (``tchar``, ``quoted-string``) comes from :mod:`asyncnet._http._rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .._errors import RemoteProtocolError, UsageError
from ._headers import share_names
from ._rules import QUOTED_STRING, TCHAR, TOKEN
from ._state import CHUNK_CRLF, CHUNK_DATA, CHUNK_SIZE, Mode

__all__ = [
    "CONNECTION_VALUES",
    "CONTENT_LENGTH_VALUES",
    "TRANSFER_ENCODING_VALUES",
    "ParserLimits",
    "check_line_lengths",
    "check_unfinished_block",
    "check_unfinished_chunk_size",
    "chunk_run",
    "connection_tokens",
    "content_length",
    "field_values",
    "parse_chunk_size_line",
    "parse_fields",
    "parse_fields_slowly",
    "parse_status_line",
    "show",
    "status_line_error",
    "transfer_framing",
]

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


# -- grammar -------------------------------------------------------------------

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
# junk (see parse_fields).
_FIELD_LINE = re.compile(rf"^({TCHAR}+):[ \t]*({_VALUE})[ \t]*\r\n", re.MULTILINE)
_ONE_FIELD = re.compile(rf"({TCHAR}+):[ \t]*({_VALUE})[ \t]*")
_OBS_FOLD = re.compile(rf"[ \t]+({_VALUE})[ \t]*")
_DIGITS = re.compile(r"[0-9]+")
# transfer-coding = token *( OWS ";" OWS token "=" ( token / quoted-string ) )
_CODING = re.compile(rf"({TCHAR}+)(?:[ \t]*;[ \t]*{TCHAR}+=(?:{TCHAR}+|{QUOTED_STRING}))*")
# chunk = chunk-size [ chunk-ext ] CRLF
# chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ), value = token / quoted-string
_CHUNK_LINE = re.compile(
    (
        rf"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*{TCHAR}+"
        rf"(?:[ \t]*=[ \t]*(?:{TCHAR}+|{QUOTED_STRING}))?)*)"
    ).encode("latin-1")
)
# A plain size line (no extension), and the same behind the CRLF that ends
# the previous chunk's data: what chunk_run takes in one match.
_CHUNK_SIZE_AT = re.compile(rb"([0-9A-Fa-f]+)\r\n")
_NEXT_CHUNK_AT = re.compile(rb"\r\n([0-9A-Fa-f]+)\r\n")
_CHUNK_EXT_CHARS = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")
_HEX_BYTES: Final = frozenset(b"0123456789abcdefABCDEF")


def show(text: str | bytes, limit: int = 40) -> str:
    """Quote a piece of peer input for an error message, shortened (never raw to a terminal)."""
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)


def _field_line_error(line: str, what: str) -> str:
    """Explain why ``line`` is not a valid field line (called only on failure)."""
    name, colon, value = line.partition(":")
    if not colon:
        if "\n" in line:
            return f"{what} line {show(line)} contains a bare LF (lines must end with CRLF)"
        if "\r" in line:
            return f"{what} line {show(line)} contains a bare CR"
        return f"{what} line {show(line)} has no colon"
    if not name:
        return f"{what} line {show(line)} has an empty field name"
    if name[-1] in " \t":
        return f"whitespace between {what} name {show(name.rstrip())} and the colon"
    if not TOKEN.fullmatch(name):
        if "\r" in name or "\n" in name:
            return f"{what} line {show(line)} contains a bare CR or LF"
        return f"{what} name {show(name)} is not a token"
    for char in value:
        if char == "\r":
            return f"{what} {name!r} value contains a bare CR"
        if char == "\n":
            return f"{what} {name!r} value contains a bare LF (lines must end with CRLF)"
        if char == "\x00":
            return f"{what} {name!r} value contains a NUL byte"
        if (char < " " and char != "\t") or char == "\x7f":
            return f"{what} {name!r} value contains control character 0x{ord(char):02x}"
    return f"{what} line {show(line)} is malformed"  # pragma: no cover - defensive


def status_line_error(line: str) -> str:
    """Explain why ``line`` is not a valid status line (called only on failure)."""
    if not line:
        return "expected a status line, got an empty line"
    if "\n" in line:
        return f"status line {show(line)} contains a bare LF (lines must end with CRLF)"
    if "\r" in line:
        return f"status line {show(line)} contains a bare CR"
    if not line.startswith("HTTP/"):
        return f"status line {show(line)} does not start with 'HTTP/'"
    if not re.match(r"HTTP/1\.[0-9] ", line):
        version = line[5:].split(" ", 1)[0]
        return f"unsupported HTTP version {show(version)} in status line (expected 1.x)"
    code = line[9:].split(" ", 1)[0]
    if not re.fullmatch(r"[0-9]{3}", code):
        return f"status code {show(code)} is not three digits"
    return f"status line {show(line)} has an invalid reason phrase"


# Status lines repeat ("HTTP/1.1 200 OK"); remembering a few short valid ones
# skips the regex. Bounded: cleared when full, so a peer cannot grow it.
_STATUS_CACHE: dict[str, tuple[int, str, str]] = {}
_STATUS_CACHE_SIZE: Final = 64


def parse_status_line(line: str) -> tuple[int, str, str]:
    cached = _STATUS_CACHE.get(line)
    if cached is not None:
        return cached
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise RemoteProtocolError(status_line_error(line))
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


def parse_fields(text: str, limits: ParserLimits, what: str) -> tuple[list[tuple[str, str]], bool]:
    """Parse field lines, each ending in CRLF, into ``(items, folded)``.

    The whole block is matched in one ``findall``; every match consumes exactly
    one line (anchored at a line start, ending at its LF), so the block is valid
    exactly when the number of matches equals the number of LFs. Otherwise the
    slow path handles obs-fold (``folded`` is then True) or names the error.
    """
    items: list[tuple[str, str]] = _FIELD_LINE.findall(text)
    folded = False
    if len(items) != text.count("\n"):
        items = parse_fields_slowly(text, what)
        folded = True
    if len(items) > limits.max_header_count:
        raise RemoteProtocolError(
            f"{what} section has more than {limits.max_header_count} fields"
        )
    return share_names(items), folded


def parse_fields_slowly(text: str, what: str) -> list[tuple[str, str]]:
    """Line-by-line parse for blocks with obs-fold, or to name the first error."""
    items: list[tuple[str, str]] = []
    for line in text.split("\r\n")[:-1]:
        if line[:1] in (" ", "\t"):
            # obs-fold (RFC 9112 section 5.2): a user agent replaces it by SP.
            fold = _OBS_FOLD.fullmatch(line)
            if not items:
                raise RemoteProtocolError(
                    f"first {what} line {show(line)} starts with whitespace"
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


def check_line_lengths(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        longest = max(map(len, text.split("\r\n")))
        if longest > limit:
            raise RemoteProtocolError(f"{what} line exceeds {limit} bytes")


def content_length(values: list[str], limits: ParserLimits) -> int:
    """The one length all Content-Length fields (and list members) agree on."""
    length: int | None = None
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not _DIGITS.fullmatch(item):
                raise RemoteProtocolError(
                    f"Content-Length value {show(item)} is not a decimal number"
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
                raise RemoteProtocolError(f"Transfer-Encoding {show(item)} is not a valid coding")
            codings.append(match.group(1).lower())
    if not codings:
        raise RemoteProtocolError("Transfer-Encoding field has no coding")
    return codings


def _values_pattern(name: str) -> re.Pattern[str]:
    # One line per field without obs-fold: the value runs from the colon to the
    # CR, less the whitespace around it. ASCII-only case folding, as for tokens.
    return re.compile(rf"\n{name}:[ \t]*([^\r]*?)[ \t]*\r", re.ASCII | re.IGNORECASE)


CONNECTION_VALUES: Final = _values_pattern("connection")
TRANSFER_ENCODING_VALUES: Final = _values_pattern("transfer-encoding")
CONTENT_LENGTH_VALUES: Final = _values_pattern("content-length")


def field_values(
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


def connection_tokens(values: list[str]) -> set[str]:
    return {t.strip(" \t").lower() for value in values for t in value.split(",")}



# -- framing fields of a parsed head -------------------------------------------
# ``text`` is the whole head, ``low`` the same lower-cased, ``items`` its parsed
# fields and ``folded`` whether obs-fold was seen (see field_values).


def transfer_framing(text: str, items: list[tuple[str, str]], folded: bool) -> bool:
    """Read the Transfer-Encoding fields: True if chunked frames the body, False if EOF does.

    Chunked frames the body only as the final coding (RFC 9112 section 6.3,
    rule 4); applied twice it is an error.
    """
    values = field_values("transfer-encoding", TRANSFER_ENCODING_VALUES, text, items, folded)
    codings = _transfer_codings(values)
    if "chunked" in codings[:-1]:
        if codings.count("chunked") > 1:
            raise RemoteProtocolError("Transfer-Encoding applies chunked more than once")
        return False
    return codings[-1] == "chunked"


# -- unfinished blocks and chunk-size lines ------------------------------------
# A head, trailer section or chunk-size line that has not ended yet is checked
# as it arrives, so that input which cannot become valid fails at once, however
# it is split, and each byte is looked at a bounded number of times.


def check_unfinished_block(
    buf: bytes | bytearray,
    start: int,
    scanned: int,
    fields_seen: int,
    trailer: bool,
    eof: bool,
    limits: ParserLimits,
) -> tuple[int, int]:
    """Reject a head or trailer section from ``start`` that cannot become valid.

    Checks the complete lines after the first ``scanned`` bytes and the
    unfinished last one; after ``eof`` nothing can complete it. Returns the
    new ``(scanned, fields_seen)``.
    """
    pending = len(buf) - start
    if eof:
        if trailer:
            raise RemoteProtocolError("connection closed inside the trailer section")
        if pending == 0:
            raise RemoteProtocolError("connection closed before any response bytes were received")
        raise RemoteProtocolError(
            f"connection closed inside the response head after {pending} bytes"
        )
    what = "trailer" if trailer else "response head"
    max_size = limits.max_trailer_size if trailer else limits.max_head_size
    if pending > max_size:
        section = "trailer section" if trailer else "response head"
        raise RemoteProtocolError(f"{section} exceeds {max_size} bytes")
    line_start = start + scanned
    first_field = 0 if trailer else buf.find(b"\n", start) + 1 - start
    while True:
        lf = buf.find(b"\n", line_start)
        if lf < 0:
            break
        fields_seen = _check_line(
            bytes(buf[line_start:lf]), line_start - start, first_field, fields_seen, trailer,
            limits,
        )
        line_start = lf + 1
    # The unfinished last line: checked in place, without copying it.
    end = len(buf)
    if end - line_start > limits.max_line_size + 1:
        raise RemoteProtocolError(f"{what} line exceeds {limits.max_line_size} bytes")
    if buf.find(b"\r", line_start, end - 1) >= 0:
        rest = bytes(buf[line_start : line_start + 41])
        raise RemoteProtocolError(f"{what} line {show(rest)} contains a bare CR")
    first = buf[line_start : line_start + 7]
    if first[:1] in (b" ", b"\t") and (
        line_start == start if trailer else buf.find(b"\n", start) + 1 == line_start
    ):
        name = "trailer" if trailer else "header"
        rest = bytes(buf[line_start : line_start + 41])
        raise RemoteProtocolError(f"first {name} line {show(rest)} starts with whitespace")
    if not trailer and line_start == start and first != b"HTTP/1."[: len(first)]:
        # No status line starts with these bytes.
        rest = bytes(buf[line_start : line_start + 41])
        raise RemoteProtocolError(status_line_error(rest.decode("latin-1")))
    return line_start - start, fields_seen


def _check_line(
    line: bytes, offset: int, first_field: int, fields_seen: int, trailer: bool,
    limits: ParserLimits,
) -> int:
    """Check one complete line (LF excluded) at ``offset`` in a pending block.

    ``first_field`` is the offset of the block's first field line. Returns the
    number of field lines seen with this one.
    """
    what = "trailer" if trailer else "header"
    if not line.endswith(b"\r"):
        raise RemoteProtocolError(
            f"{what} line {show(line)} ends with a bare LF (lines must end with CRLF)"
        )
    text = line[:-1].decode("latin-1")
    if len(text) > limits.max_line_size:
        raise RemoteProtocolError(f"{what} line exceeds {limits.max_line_size} bytes")
    if offset == 0 and not trailer:
        parse_status_line(text)
    elif text[:1] in (" ", "\t"):
        if offset == first_field:
            raise RemoteProtocolError(f"first {what} line {show(text)} starts with whitespace")
        parse_fields_slowly("x: y\r\n" + text + "\r\n", what)
    elif text:
        parse_fields_slowly(text + "\r\n", what)
        fields_seen += 1
        if fields_seen > limits.max_header_count:
            raise RemoteProtocolError(
                f"{what} section has more than {limits.max_header_count} fields"
            )
    return fields_seen


def check_unfinished_chunk_size(
    buf: bytes | bytearray, pos: int, scanned: int, limits: ParserLimits
) -> None:
    """Reject a chunk-size line from ``pos`` (no CRLF yet) that cannot become valid.

    Looks only at what arrived after the first ``scanned`` bytes, so that a
    size line fed a byte at a time costs linear time.
    """
    limit = limits.max_line_size
    end = len(buf)
    if end - pos > limit + 1:
        raise RemoteProtocolError(f"chunk-size line exceeds {limit} bytes")
    if buf.find(b"\n", pos + scanned) >= 0:
        raise RemoteProtocolError(
            "chunk-size line ends with a bare LF (lines must end with CRLF)"
        )
    # The last byte already scanned may be a CR that was allowed then because
    # it ended the buffer (the LF could follow); look at it again.
    cr = buf.find(b"\r", pos + max(scanned - 1, 0))
    if 0 <= cr < end - 1:
        raise RemoteProtocolError("chunk-size line contains a bare CR")
    if end > pos and buf[pos] not in _HEX_BYTES:
        raise RemoteProtocolError(
            f"chunk size {show(bytes(buf[pos:end]))} is not a hexadecimal number"
        )
    cap = limits.max_chunk_size_digits
    head = buf[pos : pos + cap + 1]
    if len(head) > cap and not head.lstrip(b"0123456789abcdefABCDEF"):
        raise RemoteProtocolError(f"chunk size has more than {cap} hex digits")


def parse_chunk_size_line(line: bytes, limits: ParserLimits) -> int:
    """The size of a chunk from its line (CRLF excluded); extensions are checked and ignored."""
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        raise RemoteProtocolError(_chunk_line_error(line))
    digits = match.group(1)
    if len(digits) > limits.max_chunk_size_digits:
        raise RemoteProtocolError(
            f"chunk size has more than {limits.max_chunk_size_digits} hex digits"
        )
    return int(digits, 16)


def _chunk_line_error(line: bytes) -> str:
    """Explain why ``line`` is not a valid chunk-size line (called only on failure)."""
    if b"\n" in line:
        return "chunk-size line ends with a bare LF (lines must end with CRLF)"
    if b"\r" in line:
        return "chunk-size line contains a bare CR"
    head = line.lstrip(b"0123456789abcdefABCDEF")
    if len(head) == len(line):
        return f"chunk size {show(line)} is not a hexadecimal number"
    rest = head.lstrip(b" \t")
    if not rest.startswith(b";"):
        return f"invalid character after chunk size in {show(line)}"
    if not _CHUNK_EXT_CHARS.fullmatch(rest):
        return f"chunk extension {show(rest)} contains a control character"
    return f"malformed chunk extension {show(rest)}"


# -- the fast path ---------------------------------------------------------------


def chunk_run(
    buf: bytes | bytearray | memoryview, pos: int, mode: Mode, left: int, max_digits: int
) -> tuple[bytes, int, Mode, int] | None:
    """FAST PATH: every complete plain chunk in ``buf`` from ``pos``, taken at once.

    The common shape (hex size, CRLF, data, CRLF, no extensions) is consumed
    in one pass, one regular-expression match per chunk boundary, so a read
    carrying many chunks costs one event and one copy. ``mode`` is the
    parser's (one of :data:`~asyncnet._http._state.CHUNK_MODES`) and ``left``
    the bytes of the current chunk still to come. Anything else (an
    extension, the last chunk, a partial size line, an error) stops the run,
    and the parser's step-by-step chunk modes, the reference this must agree
    with, take it from there after the data already taken is delivered.

    Returns None when no data can be taken, else ``(data, pos, mode, left)``:
    the data (always a new ``bytes``, never a view of ``buf``), and where the
    steps would be after it.
    """
    end = len(buf)
    if mode is not CHUNK_DATA:
        # At a size line, or at the CRLF that ends a chunk's data.
        skip = 0 if mode is CHUNK_SIZE else 2
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
        mode = CHUNK_DATA
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
        mode = CHUNK_CRLF
        match = next_chunk(buf, pos)
        if match is None:
            if end - pos >= 2 and buf[pos] == 13 and buf[pos + 1] == 10:
                # The CRLF is here, the next size line is not (whole).
                pos += 2
                mode = CHUNK_SIZE
            break
        after = match.end()
        if after - pos - 4 > max_digits:
            break
        size = int(match.group(1), 16)
        if size == 0:
            break
        pos = after
        left = size
        mode = CHUNK_DATA
    if not spans:
        return None
    if len(spans) == 1 and type(buf) is bytes:
        start, stop = spans[0]
        piece = buf if start == 0 and stop == end else buf[start:stop]
    else:
        with memoryview(buf) as view:
            piece = b"".join([view[start:stop] for start, stop in spans])
    return piece, pos, mode, left
