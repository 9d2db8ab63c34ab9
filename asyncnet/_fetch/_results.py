"""What fetching one URL gives: its result, and its body kept (capped) or sent to a sink.

:class:`FetchResult` is one URL's outcome; :class:`BodySink` is where a body
goes with ``sink=`` instead of memory. The two readers take a response's
body either way, each stopping at ``max_body`` bytes and finalizing the
body iterator at once when it stops early.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Protocol

from .._http._headers import Headers
from .._http._models import Response

__all__ = ["BodySink", "FetchResult", "SinkFactory", "read_capped", "read_into"]


@dataclass(frozen=True, slots=True, init=False)
class FetchResult:
    """What happened to one URL: its response, or the error that stopped it.

    ``ok`` is true for a final status below 400 (after redirects) with no
    error; a 4xx or 5xx answer has ``ok`` false, its ``status`` set and
    ``error`` ``None``, because the server did answer.
    """

    #: The URL exactly as it was given.
    url: str
    #: True when a final response with status < 400 arrived and no error occurred.
    ok: bool
    #: The final status code, or ``None`` when no response arrived.
    status: int | None
    #: The final reason phrase ("" when no response arrived).
    reason: str
    #: The final response headers, or ``None`` when no response arrived.
    headers: Headers | None
    #: The body (content-decoded), possibly cut at ``max_body`` bytes; empty
    #: when ``sink=`` took it (see :attr:`size`).
    body: bytes
    #: Seconds from the first attempt's start to the end, retries included.
    elapsed: float
    #: Requests made for this URL (0 if the deadline passed before it started).
    attempts: int
    #: The exception that ended the last attempt, or ``None``.
    error: Exception | None
    #: True when the body was longer than ``max_body`` and the rest was discarded.
    truncated: bool = False
    #: Position of the URL in the input (useful with :func:`fetch_iter`).
    index: int = 0
    #: The URL of the final response after redirects, or ``None``.
    final_url: str | None = field(default=None)
    #: Body bytes received (content-decoded): ``len(body)`` when the body is
    #: kept, the count streamed to the sink (or dropped) with ``sink=``.
    size: int = 0

    # Written out rather than generated: a frozen dataclass's own __init__
    # sets each field through object.__setattr__ (a global lookup, a bound
    # method made and called per field): 25,800 instructions per result made
    # with keywords, against 17,200 with the slots' own setters below, and
    # 11,900 when the arguments are positional as fetch passes them
    # (callgrind; one result per URL fetched). Assignment after __init__
    # still raises FrozenInstanceError.
    def __init__(
        self,
        url: str,
        ok: bool,
        status: int | None,
        reason: str,
        headers: Headers | None,
        body: bytes,
        elapsed: float,
        attempts: int,
        error: Exception | None,
        truncated: bool = False,
        index: int = 0,
        final_url: str | None = None,
        size: int = 0,
    ) -> None:
        _set_url(self, url)
        _set_ok(self, ok)
        _set_status(self, status)
        _set_reason(self, reason)
        _set_headers(self, headers)
        _set_body(self, body)
        _set_elapsed(self, elapsed)
        _set_attempts(self, attempts)
        _set_error(self, error)
        _set_truncated(self, truncated)
        _set_index(self, index)
        _set_final_url(self, final_url)
        _set_size(self, size)


# The slot descriptors' setters, which FetchResult.__init__ calls directly.
(
    _set_url, _set_ok, _set_status, _set_reason, _set_headers, _set_body, _set_elapsed,
    _set_attempts, _set_error, _set_truncated, _set_index, _set_final_url, _set_size,
) = (getattr(FetchResult, f.name).__set__ for f in fields(FetchResult))


class BodySink(Protocol):
    """Where one response body goes when ``sink=`` is given, instead of memory.

    Both methods run in the event loop between reads, so they should be
    quick (a buffered file write is). ``write`` gets each piece of the
    content-decoded body in order; ``finish`` is called exactly once, with
    ``None`` after the last piece, or with the exception that ended the body
    early (a lost connection, a timeout, the deadline's cancellation), so a
    file sink can keep a complete file and delete a partial one. An
    exception raised by either method becomes that URL's error.
    """

    def write(self, data: bytes) -> None:
        """Take the next piece of the body."""

    def finish(self, error: BaseException | None) -> None:
        """The body ended: completely (``error is None``) or not."""


#: ``sink(url, response)`` is called once per attempt when the final response
#: head has arrived (``url`` as given, ``response`` not yet read); it returns
#: the :class:`BodySink` for this body, or ``None`` to count it and drop it.
SinkFactory = Callable[[str, Response], BodySink | None]


async def read_capped(response: Response, limit: int) -> tuple[bytes, bool]:
    """Keep at most ``limit`` body bytes; stop reading (and drop the rest) past it."""
    kept = bytearray()
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            room = limit - len(kept)
            if len(chunk) > room:
                kept += chunk[:room]
                return bytes(kept), True
            kept += chunk
        return bytes(kept), False
    finally:
        # Leaving early must finalize the iterator now, not whenever the
        # garbage collector gets to it.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def read_into(
    response: Response, target: BodySink | None, limit: int | None
) -> tuple[int, bool]:
    """Stream the body to ``target`` (or drop it), up to ``limit``; (bytes, truncated).

    ``target.finish`` runs exactly once: with ``None`` when every byte
    up to the end (or the cap) was written, else with what stopped it.
    """
    size = 0
    truncated = False
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            if limit is not None and len(chunk) > limit - size:
                chunk = chunk[: limit - size]
                truncated = True
            size += len(chunk)
            if target is not None:
                target.write(chunk)
            if truncated:
                break
    except BaseException as exc:
        if target is not None:
            # The body's own error is the one to report, not a second
            # failure while the sink cleans up after it.
            with contextlib.suppress(Exception):
                target.finish(exc)
        raise
    finally:
        # Leaving early must finalize the iterator now, not whenever the
        # garbage collector gets to it.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    if target is not None:
        target.finish(None)
    return size, truncated
