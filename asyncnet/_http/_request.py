"""Build HTTP/1.1 requests safely: validation, the request head, and body framing.

Everything here is sans-IO: it turns a method, a :class:`~asyncnet._http._url.URL`,
headers and a body into bytes and never touches a socket. Every value that
ends up on the wire is checked first, so a CR, LF or other control character
from a caller raises a ``ValueError`` subclass instead of splitting the
request (header injection, request smuggling).
"""

from __future__ import annotations

import base64
import inspect
import io
import os
import re
import stat
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import IO, Any, Final, TypeAlias

from .._errors import (
    BodyNotReplayable,
    InvalidHeader,
    InvalidMethod,
    LocalProtocolError,
    UsageError,
)
from ._headers import Headers
from ._rules import CREDENTIAL_HEADERS, METHODS_WITH_CONTENT, TOKEN
from ._url import URL

__all__ = [
    "LAST_CHUNK",
    "BodyValue",
    "RequestBody",
    "asks_to_close",
    "basic_auth",
    "encode_chunk",
    "serialize_head",
    "validate_header_items",
    "validate_method",
]

#: Marks the end of a chunked body (no trailers).
LAST_CHUNK: Final = b"0\r\n\r\n"

#: Pieces read from a file body at a time: large enough to keep system calls
#: few, small enough that an upload never holds more than this per read.
FILE_READ_SIZE: Final = 64 * 1024

#: What ``body=`` accepts.
BodyValue: TypeAlias = (
    bytes | bytearray | memoryview | str | Iterable[bytes] | AsyncIterable[bytes] | IO[bytes] | None
)

# RFC 9110 §5.5 field-value: visible ASCII, obs-text, space and tab. Excludes
# every other control (CR, LF, NUL...) and anything past U+00FF, which has no
# byte in the latin-1 encoding headers are written in.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# Validated and upper-cased methods; bounded because callers choose the keys.
_METHOD_CACHE: dict[str, str] = {}
_METHOD_CACHE_MAX: Final = 64

# Header names handled by serialize_head itself (lower case).
_FRAMING: Final = frozenset({"host", "content-length", "transfer-encoding"})


def validate_method(method: str) -> str:
    """Return ``method`` upper-cased, after checking it is an RFC 9110 token.

    Upper-casing matches what httpx and aiohttp do with ``"get"``; a method
    with a space, a control character or a separator raises
    :class:`~asyncnet.InvalidMethod`.
    """
    try:
        cached = _METHOD_CACHE.get(method)
    except TypeError:  # unhashable: not a str, refused below
        cached = None
    if cached is not None:
        return cached
    if not isinstance(method, str) or not TOKEN.fullmatch(method):
        raise InvalidMethod(f"method must be a token (RFC 9110 §9.1), not {method!r}")
    upper = method.upper()
    if len(_METHOD_CACHE) < _METHOD_CACHE_MAX:
        _METHOD_CACHE[method] = upper
    return upper


def _as_str(item: object, what: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, (bytes, bytearray)):
        return bytes(item).decode("latin-1")
    raise InvalidHeader(f"header {what} must be str or bytes, not {type(item).__name__}")


# A checked field: (name, lower-case name, value without surrounding
# whitespace, the field's line as sent).
_Field = tuple[str, str, str, str]

# Fields already checked, keyed by the (name, value) pair given. Clients send
# the same few fields on every request, so checking each once pays; the cache
# is emptied when full, which bounds it whatever the keys.
_FIELD_CACHE: dict[tuple[object, object], _Field] = {}
_FIELD_CACHE_MAX: Final = 1024
# Credentials (CREDENTIAL_HEADERS) are never kept in it after their request.


def _check_field(name: object, value: object) -> _Field:
    key = (name, value)
    try:
        cached = _FIELD_CACHE.get(key)
    except TypeError:  # an unhashable name or value: reported below
        cached = None
        key = None  # type: ignore[assignment]
    if cached is not None:
        return cached
    name_s = name if isinstance(name, str) else _as_str(name, "name")
    value_s = value if isinstance(value, str) else _as_str(value, "value")
    if TOKEN.fullmatch(name_s) is None:
        raise InvalidHeader(f"header name must be a token (RFC 9110 §5.1): {name_s!r}")
    if _FIELD_VALUE.fullmatch(value_s) is None:
        raise InvalidHeader(
            f"header {name_s!r} has a control or non-latin-1 character in its value: {value_s!r}"
        )
    value_s = value_s.strip(" \t")
    lower = name_s.lower()
    field = (name_s, lower, value_s, f"{name_s}: {value_s}\r\n")
    if key is not None and lower not in CREDENTIAL_HEADERS:
        if len(_FIELD_CACHE) >= _FIELD_CACHE_MAX:
            _FIELD_CACHE.clear()
        _FIELD_CACHE[key] = field
    return field


def validate_header_items(
    headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    """Check header fields and return them as a list of ``(name, value)`` pairs.

    Names must be tokens; values may hold visible characters, spaces, tabs and
    latin-1 obs-text but no CR, LF, NUL or other control character. Leading
    and trailing whitespace of a value is removed: RFC 9110 §5.5 says it is
    not part of the value. Raises :class:`~asyncnet.InvalidHeader`.
    """
    if headers is None:
        return []
    given: object = headers
    if isinstance(given, (Headers, Mapping)):
        pairs: Iterable[Any] = given.items()
    elif isinstance(given, (str, bytes, bytearray)):
        raise InvalidHeader("headers must be a mapping or pairs, not a string")
    else:
        pairs = headers
    out: list[tuple[str, str]] = []
    cache = _FIELD_CACHE
    for pair in pairs:
        try:
            field = cache.get(pair)
        except TypeError:
            field = None
        if field is None:
            try:
                name, value = pair
            except (TypeError, ValueError):
                raise InvalidHeader(f"header must be a (name, value) pair, not {pair!r}") from None
            field = _check_field(name, value)
        out.append((field[0], field[2]))
    return out


def serialize_head(
    method: str,
    url: URL,
    headers: list[tuple[str, str]],
    body_length: int | None,
    *,
    chunked: bool,
) -> bytes:
    """Return the request line and header block, ending with the blank line.

    ``Host`` comes first (the caller's, if given, else from ``url``). Framing is
    decided here so that ``Content-Length`` and ``Transfer-Encoding`` are never
    both sent: ``chunked=True`` sends ``Transfer-Encoding: chunked``;
    otherwise ``body_length`` (if not ``None``) is sent as ``Content-Length``,
    except that a zero length is omitted for methods other than POST, PUT and
    PATCH. A caller's own ``Content-Length`` must equal ``body_length``, a
    caller's ``Transfer-Encoding`` must be just ``chunked`` and only with
    ``chunked=True``, else :class:`~asyncnet.InvalidHeader`. Method and
    headers are validated again here, so nothing unchecked reaches the wire.
    """
    method = validate_method(method)
    if chunked and body_length is not None:
        raise LocalProtocolError("a chunked body has no length; pass body_length=None")
    if body_length is not None and body_length < 0:
        raise LocalProtocolError(f"negative body length {body_length}")
    host: str | None = None
    lines: list[str] = [f"{method} {url.target} HTTP/1.1\r\n", "", ""]
    cache = _FIELD_CACHE
    for pair in headers:
        field = cache.get(pair)
        if field is None:
            name, value = pair
            field = _check_field(name, value)
        lower = field[1]
        if lower in _FRAMING:
            if lower == "host":
                if host is not None:
                    raise InvalidHeader("more than one Host header")
                host = field[2]
                lines[1] = field[3]
            elif lower == "content-length":
                _check_content_length(field[2], body_length, chunked)
            else:
                _check_transfer_encoding(field[2], chunked)
            continue
        lines.append(field[3])
    if host is None:
        lines[1] = f"Host: {url.host_header}\r\n"
    elif not host:
        raise InvalidHeader("empty Host header")
    if chunked:
        lines[2] = "Transfer-Encoding: chunked\r\n"
    elif body_length is not None and (body_length or method in METHODS_WITH_CONTENT):
        lines[2] = f"Content-Length: {body_length}\r\n"
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def asks_to_close(headers: list[tuple[str, str]]) -> bool:
    """True if the request's own ``Connection`` field says ``close`` (RFC 9112 §9.6).

    Such a request is the last on its connection, whatever the response says.
    """
    for name, value in headers:
        if name.lower() == "connection" and any(
            token.strip(" \t").lower() == "close" for token in value.split(",")
        ):
            return True
    return False


def _check_content_length(value: str, body_length: int | None, chunked: bool) -> None:
    value = value.strip(" \t")
    if chunked:
        raise InvalidHeader(
            "Content-Length given for a body of unknown length sent chunked; "
            "pass the length as body_length instead"
        )
    if body_length is None:
        raise InvalidHeader("Content-Length given for a request without a body")
    # ASCII digits only, and few enough that int() is safe and cheap.
    if not (value.isascii() and value.isdigit() and len(value) <= 20) or int(value) != body_length:
        raise InvalidHeader(
            f"Content-Length {value!r} does not match the body's {body_length} bytes"
        )


def _check_transfer_encoding(value: str, chunked: bool) -> None:
    if value.strip(" \t").lower() != "chunked":
        raise InvalidHeader(f"unsupported request Transfer-Encoding {value!r}: only chunked")
    if not chunked:
        raise InvalidHeader("Transfer-Encoding: chunked given for a body of known length")


def encode_chunk(data: bytes) -> bytes:
    """Frame ``data`` as one chunk of a chunked body; ``b""`` for empty data.

    An empty chunk is the end-of-body marker, so empty pieces are dropped
    rather than framed (use :data:`LAST_CHUNK` to end the body).
    """
    if not data:
        return b""
    return b"".join((b"%x\r\n" % len(data), data, b"\r\n"))


def basic_auth(username: str, password: str | None = None) -> str:
    """Return an ``Authorization`` value for HTTP Basic authentication (RFC 7617).

    Credentials are UTF-8 encoded, the one charset RFC 7617 names; a user name
    containing ``:`` cannot be expressed and raises :class:`~asyncnet.InvalidHeader`.
    """
    if ":" in username:
        raise InvalidHeader("a Basic auth user name cannot contain ':'")
    raw = f"{username}:{password or ''}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _as_bytes(piece: object) -> bytes:
    if isinstance(piece, bytes):
        return piece
    if isinstance(piece, (bytearray, memoryview)):
        return bytes(piece)
    raise UsageError(f"body pieces must be bytes, not {type(piece).__name__}")


class RequestBody:
    """A request body normalized from whatever the caller passed as ``body=``.

    :attr:`length` is known for bytes, str, lists of bytes and sized files
    (sent with ``Content-Length``) and ``None`` for iterators and streams
    (sent chunked). :attr:`replayable` bodies can be sent again for a 307/308
    redirect or a retry; one-shot streams raise
    :class:`~asyncnet.BodyNotReplayable` the second time.
    """

    __slots__ = (
        "_consumed",
        "_data",
        "_file",
        "_file_start",
        "_iterable",
        "_source",
        "length",
        "replayable",
    )

    length: int | None
    replayable: bool

    def __init__(self) -> None:
        self._data: bytes | tuple[bytes, ...] | None = None
        self._file: Any = None
        self._file_start = 0
        self._iterable: Iterable[Any] | AsyncIterable[Any] | None = None
        self._source: Callable[[], AsyncIterator[bytes]] | None = None
        self._consumed = False
        self.length = 0
        self.replayable = True

    @classmethod
    def from_value(cls, body: BodyValue) -> RequestBody:
        """Wrap ``body``: bytes, str (UTF-8), bytearray/memoryview, a list or
        iterable or async iterable of bytes, or a binary file-like object."""
        self = cls()
        if body is None:
            return self
        if isinstance(body, bytes):
            self._data = body
            self.length = len(body)
        elif isinstance(body, str):
            self._data = body.encode("utf-8")
            self.length = len(self._data)
        elif isinstance(body, (bytearray, memoryview)):
            # A copy: the caller may change a bytearray after the request starts.
            self._data = bytes(body)
            self.length = len(self._data)
        elif hasattr(body, "read"):
            self._init_file(body)
        elif isinstance(body, (list, tuple)):
            pieces = tuple(p for p in map(_as_bytes, body) if p)
            self._data = pieces
            self.length = sum(map(len, pieces))
        elif isinstance(body, Mapping):
            raise UsageError("a mapping is not a body: encode it (e.g. json=) or pass bytes")
        elif isinstance(body, (AsyncIterable, Iterable)):
            self._iterable = body
            self.length = None
            self.replayable = False
        else:
            raise UsageError(f"unsupported body type {type(body).__name__}")
        return self

    @classmethod
    def from_source(
        cls, source: Callable[[], AsyncIterator[bytes]], length: int | None, replayable: bool
    ) -> RequestBody:
        """Wrap a body generated on demand (a multipart encoder): ``source()``
        starts it afresh each time it is sent, ``length`` is its exact size
        or ``None`` (sent chunked)."""
        self = cls()
        self._source = source
        self.length = length
        self.replayable = replayable
        return self

    def _init_file(self, file: Any) -> None:
        if isinstance(file, io.TextIOBase):
            raise UsageError("a file body must be opened in binary mode")
        self._file = file
        self.length = None
        self.replayable = False
        if inspect.iscoroutinefunction(file.read):
            # An asynchronous file object: its seek and tell are coroutines
            # too, so it is streamed rather than measured.
            return
        try:
            seekable = file.seekable() is True
        except (AttributeError, OSError, ValueError):
            seekable = False
        if not seekable:
            return
        try:
            start = file.tell()
            size: int | None = None
            try:
                st = os.fstat(file.fileno())
            except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
                pass
            else:
                if stat.S_ISREG(st.st_mode):
                    size = st.st_size
            if size is None:
                size = file.seek(0, os.SEEK_END)
                file.seek(start)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        if not isinstance(start, int) or not isinstance(size, int):
            return
        self._file_start = start
        self.length = max(size - start, 0)
        self.replayable = True

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the body's raw pieces (not chunk-encoded); empty pieces are skipped.

        A file of known length yields exactly :attr:`length` bytes (a file
        that turns out shorter raises :class:`~asyncnet.LocalProtocolError`),
        read :data:`FILE_READ_SIZE` bytes at a time.
        """
        if not self.replayable:
            if self._consumed:
                raise BodyNotReplayable("the request body was a one-shot stream, already sent")
            self._consumed = True
        data = self._data
        if data is not None:
            if isinstance(data, bytes):
                if data:
                    yield data
            else:
                for piece in data:
                    yield piece
        elif self._file is not None:
            async for piece in self._file_chunks():
                yield piece
        elif self._source is not None:
            async for piece in self._source():
                if piece:
                    yield piece
        elif self._iterable is not None:
            iterable = self._iterable
            if isinstance(iterable, AsyncIterable):
                async for item in iterable:
                    piece = _as_bytes(item)
                    if piece:
                        yield piece
            else:
                for item in iterable:
                    piece = _as_bytes(item)
                    if piece:
                        yield piece

    async def _file_chunks(self) -> AsyncIterator[bytes]:
        file = self._file
        remaining = self.length
        if remaining is not None:
            file.seek(self._file_start)
        while remaining is None or remaining > 0:
            size = FILE_READ_SIZE if remaining is None else min(FILE_READ_SIZE, remaining)
            result = file.read(size)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, str):
                raise UsageError("a file body must be opened in binary mode")
            piece = _as_bytes(result)
            if not piece:
                if remaining:
                    raise LocalProtocolError(
                        f"file body ended {remaining} bytes short of its length {self.length}"
                    )
                return
            if remaining is not None:
                if len(piece) > remaining:
                    piece = piece[:remaining]
                remaining -= len(piece)
            yield piece
