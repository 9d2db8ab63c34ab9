"""The HTTP client's value types: timeouts, pool limits, and the response.

They hold no sockets themselves: a :class:`Response` reads its body through a
small :class:`BodySource` interface that the connection layer implements, so
the response's rules (read once, decode, close) are independent of the I/O.
"""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import functools
import json as _json
import math
import pkgutil
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import BodyTooLarge, HTTPStatusError, StreamClosed, StreamConsumed, UsageError
from .._text import escape
from ._decoders import ContentDecoder, make_decoder
from ._headers import Headers
from ._lines import DEFAULT_MAX_LINE, LineSplitter
from ._rules import REDIRECT_STATUSES
from ._sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEParser
from ._url import URL

__all__ = ["BodySource", "ClientStatistics", "Limits", "Response", "Timeout"]


def _check_seconds(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise UsageError(f"{name} must be > 0 seconds or None, not {value!r}")


@dataclass(frozen=True, slots=True)
class Timeout:
    """How long each phase of a request may take, in seconds (``None``: no limit).

    ``connect`` covers DNS, TCP and the TLS handshake; ``read`` is the longest
    wait for the next bytes of the response; ``write`` is the longest wait for
    the peer to accept more of the request; ``pool`` is the longest wait for a
    free connection slot; ``total`` is a deadline for the whole request,
    redirects and body included, that no amount of dripping data extends.
    """

    #: DNS resolution, TCP connect (every address tried) and the TLS handshake.
    connect: float | None = 10.0
    #: Each wait for the next bytes of the response; received data restarts it.
    read: float | None = 30.0
    #: Each wait for the server to accept more of the request.
    write: float | None = 30.0
    #: Waiting for a free connection slot in the pool.
    pool: float | None = 10.0
    #: A deadline for the whole request, redirects and body included.
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            _check_seconds(name, getattr(self, name))

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """Turn the ``timeout=`` argument into a :class:`Timeout`.

        A number applies to connect, read, write and pool (like httpx);
        ``None`` disables every limit.
        """
        if isinstance(value, Timeout):
            return value
        if value is None:
            return _NO_TIMEOUT
        _check_seconds("timeout", value)
        return cls(connect=value, read=value, write=value, pool=value, total=None)


_NO_TIMEOUT = Timeout(connect=None, read=None, write=None, pool=None, total=None)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the connection pool (``None``: unbounded).

    ``max_connections`` caps open connections across all hosts and
    ``max_per_host`` those to one (scheme, host, port, TLS settings);
    ``keepalive_expiry`` closes a connection left idle that many seconds.
    The defaults match httpx's total of 100 and aiohttp's per-host habit of
    a small number, and stay below common servers' 60 s idle timeouts.
    """

    #: Connections open at once across all hosts.
    max_connections: int | None = 100
    #: Connections open at once to one (scheme, host, port, TLS settings).
    max_per_host: int | None = 10
    #: Seconds an idle pooled connection is kept before it is closed.
    keepalive_expiry: float | None = 15.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_per_host"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be an int >= 1 or None, not {value!r}")
        _check_seconds("keepalive_expiry", self.keepalive_expiry)


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A snapshot of an :class:`~asyncnet.HTTPClient`'s pool and counters."""

    #: Connections open now (in use, idle, or being opened).
    connections_open: int
    #: Of those, connections idle in the pool, ready for reuse.
    connections_idle: int
    #: Requests waiting for a pool slot right now.
    pool_waiters: int
    #: Connections opened since the client was created.
    connections_opened: int
    #: Requests sent (each redirect hop and retry counts) since creation.
    requests_sent: int
    #: Requests sent on a connection that had already carried one.
    requests_reused: int
    #: Times a connection paused reading because a response body was not consumed fast enough.
    read_pauses: int
    #: Most response body bytes any connection has held unconsumed at once.
    peak_body_buffered: int = 0


class BodySource(Protocol):
    """Where a :class:`Response` gets its raw body from (the connection layer).

    Bodies are the bytes after chunked decoding and before content decoding.
    """

    async def read_chunk(self) -> bytes:
        """Return the next piece of the body, ``b""`` once it is complete."""
        ...

    async def read_all(self) -> bytes:
        """Return the rest of the body in one piece."""
        ...

    def read_all_now(self) -> bytes | None:
        """Return the rest of the body if it has all arrived, else None, without waiting."""
        ...

    @property
    def trailers(self) -> Headers:
        """Trailer fields, complete once the body has been read."""
        ...

    def release(self) -> None:
        """Finish with the body: keep the connection if it was fully read, else drop it."""
        ...


class _EmptyBody:
    """The body of a response that has none left (tests and drained redirects)."""

    trailers = Headers()

    async def read_chunk(self) -> bytes:
        return b""

    async def read_all(self) -> bytes:
        return b""

    def read_all_now(self) -> bytes:
        return b""

    def release(self) -> None:
        pass


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            value = value.strip().strip('"').strip()
            return value or None
    return None


# Codecs Python counts as text encodings that are still no charset a body
# can be written in: "idna" and "undefined" refuse errors="replace" (or
# everything), "punycode" reads only its own ASCII syntax, and the escape
# codecs would turn a body's backslashes into other characters.
_NOT_CHARSETS: frozenset[str] = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
)
# RFC 2978 section 2.3 caps registered charset names at 40 characters.
_MAX_CHARSET_NAME = 40


@functools.cache
def _stdlib_codec_names() -> frozenset[str]:
    """Every name the standard library's codec search can find (modules and aliases)."""
    names = set(encodings.aliases.aliases)
    names.update(module.name for module in pkgutil.iter_modules(encodings.__path__))
    return frozenset(names)


def _text_codec(name: str, *, from_server: bool) -> str | None:
    """The codec that decodes a body in charset ``name``, or ``None`` if it is no text charset.

    Only real text encodings count: ``bytes.decode`` also accepts codecs that
    need bytes-to-bytes work (``base64``, ``zlib``, ``rot13``...) or cannot
    decode with replacement (``idna``, ``undefined``), and raises for them. A
    server's name is looked up only if the standard library knows it, because
    :func:`codecs.lookup` remembers every unknown name it is asked about, for
    ever: a server could grow that cache one made-up charset at a time.
    """
    if from_server:
        if len(name) > _MAX_CHARSET_NAME:
            return None
        key = encodings.normalize_encoding(name.lower())
        known = _stdlib_codec_names()
        if key not in known and key.replace(".", "_") not in known:
            return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    # CodecInfo._is_text_encoding is how bytes.decode itself tells text
    # codecs from the rest; codecs without the flag are text codecs.
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


class _Regroup:
    """Cut a stream of pieces of any size into pieces of ``size`` bytes (``None``: as they come).

    Only the last piece of the stream may be shorter; empty pieces are dropped.
    """

    __slots__ = ("_pending", "_size")

    def __init__(self, size: int | None) -> None:
        self._size = size
        self._pending = bytearray()

    def push(self, piece: bytes) -> list[bytes]:
        """Take ``piece``; return the whole pieces it completes."""
        size = self._size
        if size is None:
            return [piece] if piece else []
        pending = self._pending
        pending += piece
        out = []
        while len(pending) >= size:
            out.append(bytes(pending[:size]))
            del pending[:size]
        return out

    def rest(self) -> list[bytes]:
        """The short last piece, once the stream has ended."""
        rest = [bytes(self._pending)] if self._pending else []
        self._pending.clear()
        return rest


class Response:
    """An HTTP response: status and headers at once, the body when asked for.

    The body can be consumed once, either with :meth:`read` (kept in
    :attr:`content`, so later ``read()`` calls return it again) or by
    iterating :meth:`aiter_bytes`/:meth:`aiter_raw`. A response whose body was
    not read to the end closes its connection instead of returning it to the pool.
    """

    __slots__ = (
        "_closed",
        "_consumed",
        "_content",
        "_decode_content",
        "_max_body",
        "_num_bytes",
        "_source",
        "_trailers",
        "headers",
        "history",
        "http_version",
        "reason",
        "request_method",
        "status",
        "url",
    )

    # Positional arguments are allowed for the client, which builds one
    # response per request: calling a class with keyword arguments costs a
    # dict on every call (about 1,500 instructions for the last two).
    def __init__(
        self,
        status: int,
        reason: str,
        http_version: str,
        headers: Headers,
        url: URL,
        request_method: str,
        source: BodySource | None = None,
        history: list[Response] | None = None,
        decode_content: bool = True,
    ) -> None:
        #: The status code, e.g. ``200``.
        self.status = status
        #: The reason phrase exactly as sent (may be empty).
        self.reason = reason
        #: ``"1.1"`` or ``"1.0"``.
        self.http_version = http_version
        #: Response header fields, case-insensitive, every value kept in order.
        self.headers = headers
        #: The URL this response came from (after redirects); ``str(url)`` for text.
        self.url = url
        #: The method of the request that produced this response.
        self.request_method = request_method
        #: Earlier responses of the redirect chain, oldest first.
        self.history: list[Response] = history if history is not None else []
        self._source: BodySource = source if source is not None else _EmptyBody()
        self._decode_content = decode_content
        self._content: bytes | None = None
        self._consumed = False
        self._closed = False
        self._num_bytes = 0
        self._trailers: Headers | None = None
        self._max_body: int | None = None

    def __repr__(self) -> str:
        # The reason phrase is the server's text (obs-text allows C1 controls).
        return f"<Response [{self.status} {escape(self.reason)}]>"

    # -- metadata -------------------------------------------------------------

    @property
    def trailers(self) -> Headers:
        """Trailer fields sent after a chunked body; empty until the body is read."""
        if self._trailers is not None:
            return self._trailers
        return self._source.trailers

    @property
    def is_closed(self) -> bool:
        """True once the body was read to the end or the response was closed."""
        return self._closed

    @property
    def num_bytes_downloaded(self) -> int:
        """Body bytes received so far, as sent on the wire (before content decoding)."""
        return self._num_bytes

    @property
    def is_redirect(self) -> bool:
        """True for a 301, 302, 303, 307 or 308 that carries a ``Location``."""
        return self.status in REDIRECT_STATUSES and "location" in self.headers

    @property
    def encoding(self) -> str | None:
        """The ``charset`` parameter of ``Content-Type``, if any."""
        return _charset(self.headers.get("content-type"))

    @property
    def content(self) -> bytes:
        """The decoded body, once :meth:`read` has run."""
        if self._content is None:
            raise StreamConsumed(
                "the body was streamed, not read" if self._consumed
                else "call 'await response.read()' before using .content"
            )
        return self._content

    def raise_for_status(self) -> Response:
        """Raise :class:`~asyncnet.HTTPStatusError` for a 4xx or 5xx status, else return self."""
        if 400 <= self.status < 600:
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(
                f"{kind} {self.status} {self.reason!s} for url {self.url}", response=self
            )
        return self

    # -- body -------------------------------------------------------------------

    def _start(self) -> None:
        if self._consumed:
            raise StreamConsumed("the response body was already read or iterated")
        if self._closed:
            raise StreamClosed("the response was closed before its body was read")
        self._consumed = True

    async def read(self) -> bytes:
        """Read the whole body, content-decoded, and keep it in :attr:`content`."""
        if self._content is not None:
            return self._content
        if self._max_body is not None:
            return await self._read_capped(self._max_body)
        self._start()
        try:
            raw = self._source.read_all_now()
            if raw is None:
                raw = await self._source.read_all()
        finally:
            self._close_source()
        self._num_bytes += len(raw)
        content = raw
        if self._decode_content:
            decoder = make_decoder(self.headers.get("content-encoding"))
            if decoder is not None:
                parts = list(decoder.decode(raw))
                parts.append(decoder.flush())
                content = b"".join(parts)
        self._content = content
        return content

    def declared_length(self) -> int | None:
        """The body's ``Content-Length``, or ``None`` if it is chunked or read until close."""
        if "transfer-encoding" in self.headers:
            return None
        value = self.headers.get("content-length")
        if value is None:
            return None
        # The parser accepted it, so it is digits, or a list of equal numbers.
        first = value.partition(",")[0].strip()
        return int(first) if first.isdigit() else None

    def _too_large(self, limit: int) -> BodyTooLarge:
        return BodyTooLarge(
            f"the response body from {self.url} is larger than max_body={limit} bytes",
            limit=limit,
        )

    def check_declared_length(self, limit: int) -> None:
        """Raise :class:`~asyncnet.BodyTooLarge` if ``Content-Length`` exceeds ``limit``."""
        length = self.declared_length()
        if length is not None and length > limit:
            raise self._too_large(limit)

    async def _read_capped(self, limit: int) -> bytes:
        """``read()`` that never holds more than ``limit`` body bytes, raw or decoded."""
        self.check_declared_length(limit)
        self._start()
        try:
            if self.declared_length() is not None:
                # Bounded by Content-Length, checked above: take it whole.
                raw = self._source.read_all_now()
                if raw is None:
                    raw = await self._source.read_all()
                self._num_bytes += len(raw)
                pieces = [raw]
            else:
                pieces = []
                received = 0
                while chunk := await self._source.read_chunk():
                    received += len(chunk)
                    self._num_bytes += len(chunk)
                    if received > limit:
                        raise self._too_large(limit)
                    pieces.append(chunk)
            decoder = (
                make_decoder(self.headers.get("content-encoding"))
                if self._decode_content
                else None
            )
            if decoder is not None:
                decoded: list[bytes] = []
                size = 0
                for raw_piece in pieces:
                    for piece in decoder.iter_decode(raw_piece):
                        size += len(piece)
                        if size > limit:
                            raise self._too_large(limit)
                        decoded.append(piece)
                for piece in decoder.iter_flush():
                    size += len(piece)
                    if size > limit:
                        raise self._too_large(limit)
                    decoded.append(piece)
                pieces = decoded
        finally:
            self._close_source()
        content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._content = content
        return content

    async def text(self, encoding: str | None = None) -> str:
        """Read the body as text: ``encoding``, else the declared charset, else UTF-8.

        Bytes that do not decode become U+FFFD. A name that is no text
        charset (unknown, or a codec such as ``base64``, ``rot13`` or
        ``idna``) is ignored in favour of UTF-8, so whatever ``charset=`` a
        server declares, this returns text rather than raising.
        """
        content = await self.read()
        codec = self._codec(encoding)
        if codec is not None:
            try:
                return content.decode(codec, errors="replace")
            except ValueError:  # UnicodeError included
                pass  # a codec that fails even with replacement: fall back
        return content.decode("utf-8", errors="replace")

    def _codec(self, encoding: str | None) -> str | None:
        """The text codec for ``encoding``, else for the declared charset; None: UTF-8."""
        if encoding:
            return _text_codec(encoding, from_server=False)
        declared = self.encoding
        if declared is not None:
            return _text_codec(declared, from_server=True)
        return None

    async def json(self, **kwargs: Any) -> Any:
        """Read the body and parse it as JSON (UTF-8/16/32 detected)."""
        return _json.loads(await self.read(), **kwargs)

    async def aiter_raw(self, chunk_size: int | None = None) -> AsyncGenerator[bytes, None]:
        """Yield the body as received (chunked framing removed, not content-decoded)."""
        if chunk_size is not None and chunk_size < 1:
            raise UsageError("chunk_size must be >= 1 or None")
        self._start()
        limit = self._max_body
        if limit is not None:
            try:
                self.check_declared_length(limit)
            except BodyTooLarge:
                self._close_source()
                raise
        regroup = None if chunk_size is None else _Regroup(chunk_size)
        try:
            while True:
                chunk = await self._source.read_chunk()
                if not chunk:
                    break
                self._num_bytes += len(chunk)
                if limit is not None and self._num_bytes > limit:
                    raise self._too_large(limit)
                if regroup is None:
                    yield chunk
                else:
                    for piece in regroup.push(chunk):
                        yield piece
            if regroup is not None:
                for piece in regroup.rest():
                    yield piece
        finally:
            self._close_source()

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the body content-decoded, in pieces of ``chunk_size`` if given."""
        if chunk_size is not None and chunk_size < 1:
            raise UsageError("chunk_size must be >= 1 or None")
        decoder = (
            make_decoder(self.headers.get("content-encoding")) if self._decode_content else None
        )
        if decoder is None and chunk_size is None:
            return self.aiter_raw()
        return self._aiter_decoded(decoder, chunk_size)

    async def aiter_text(
        self, chunk_size: int | None = None, *, encoding: str | None = None
    ) -> AsyncIterator[str]:
        """Yield the body as text, decoded incrementally like :meth:`text` decodes it whole.

        ``encoding``, else the declared charset, else UTF-8; a character split
        between two pieces of the body comes out whole.
        """
        codec = self._codec(encoding) or "utf-8"
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        async for piece in self.aiter_bytes(chunk_size):
            text = decoder.decode(piece)
            if text:
                yield text
        text = decoder.decode(b"", final=True)
        if text:
            yield text

    async def aiter_lines(
        self, *, max_line: int = DEFAULT_MAX_LINE, encoding: str | None = None
    ) -> AsyncIterator[str]:
        """Yield the body's lines as text, without their LF or CRLF.

        A line longer than ``max_line`` characters raises
        :class:`~asyncnet.RemoteProtocolError` and closes the connection, so a
        body without newlines cannot make the client hold all of it.
        """
        splitter = LineSplitter(max_line)
        async for text in self.aiter_text(encoding=encoding):
            for line in splitter.feed(text):
                yield line
        for line in splitter.flush():
            yield line

    async def aiter_events(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> AsyncIterator[ServerSentEvent]:
        """Yield the Server-Sent Events of a ``text/event-stream`` body as they arrive.

        An event larger than ``max_event_size`` bytes raises
        :class:`~asyncnet.RemoteProtocolError` and closes the connection.
        """
        parser = SSEParser(max_event_size)
        async for piece in self.aiter_bytes():
            for event in parser.feed(piece):
                yield event

    async def _aiter_decoded(
        self, decoder: ContentDecoder | None, chunk_size: int | None
    ) -> AsyncIterator[bytes]:
        # The decoder's output is pulled one bounded step at a time and handed
        # on before the next step is decoded: a compressed read of 256 KiB may
        # inflate to tens of MiB, which must never be held all at once.
        regroup = _Regroup(chunk_size)
        raw = self.aiter_raw()
        limit = self._max_body
        decoded = 0
        try:
            async for chunk in raw:
                pieces: Iterable[bytes] = (
                    (chunk,) if decoder is None else decoder.iter_decode(chunk)
                )
                for piece in pieces:
                    decoded += len(piece)
                    if limit is not None and decoded > limit:
                        raise self._too_large(limit)
                    for out in regroup.push(piece):
                        yield out
            if decoder is not None:
                for piece in decoder.iter_flush():
                    decoded += len(piece)
                    if limit is not None and decoded > limit:
                        raise self._too_large(limit)
                    for out in regroup.push(piece):
                        yield out
            for out in regroup.rest():
                yield out
        finally:
            await raw.aclose()

    async def aclose(self) -> None:
        """Close the response; an unread body closes its connection rather than reusing it."""
        self._close_source()

    def _close_source(self) -> None:
        if not self._closed:
            self._closed = True
            # Keep this response's trailers: the connection may carry another one next.
            self._trailers = self._source.trailers
            self._source.release()
