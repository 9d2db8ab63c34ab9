"""The response parser's states: the public :class:`ParserState` and the modes behind it.

The parser (:mod:`asyncnet._http._parser`, whose documentation draws the
transitions) keeps one state variable, a :class:`Mode`. Each mode names the
:class:`ParserState` it shows as, so the public view is derived from the
same variable and cannot disagree with it.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "AFTER",
    "CHUNK_CRLF",
    "CHUNK_DATA",
    "CHUNK_MODES",
    "CHUNK_SIZE",
    "END",
    "ERROR",
    "HEAD",
    "IDLE",
    "LENGTH",
    "TRAILERS",
    "UNTIL_CLOSE",
    "UPGRADED",
    "Mode",
    "ParserState",
]


class ParserState(enum.Enum):
    """Where a :class:`~asyncnet._http._parser.ResponseParser` is in the request/response cycle."""

    IDLE = "IDLE"  # no request outstanding: any byte received is an error
    HEAD = "HEAD"  # waiting for (or inside) the response head
    BODY = "BODY"  # head returned; body and EndOfMessage still to come
    DONE = "DONE"  # response complete; the connection may carry another request
    CLOSED = "CLOSED"  # response complete (or EOF); the connection must be closed
    ERROR = "ERROR"  # malformed input was seen; the connection must be discarded
    UPGRADED = "UPGRADED"  # 101 or CONNECT 2xx: the bytes are no longer HTTP/1.1


class Mode(enum.Enum):
    """The parser's state; ``shown`` is the :class:`ParserState` it shows as.

    ``AFTER`` shows as ``DONE`` unless the connection cannot be reused
    (``CLOSED``), and ``IDLE`` after EOF as ``CLOSED``: the parser applies
    those two adjustments.
    """

    IDLE = ("IDLE", ParserState.IDLE)
    HEAD = ("HEAD", ParserState.HEAD)
    LENGTH = ("LENGTH", ParserState.BODY)  # inside a Content-Length body
    CHUNK_SIZE = ("CHUNK_SIZE", ParserState.BODY)  # at a chunk-size line
    CHUNK_DATA = ("CHUNK_DATA", ParserState.BODY)  # inside a chunk's data
    CHUNK_CRLF = ("CHUNK_CRLF", ParserState.BODY)  # at the CRLF after a chunk's data
    TRAILERS = ("TRAILERS", ParserState.BODY)  # after the last chunk
    UNTIL_CLOSE = ("UNTIL_CLOSE", ParserState.BODY)  # a body that EOF ends
    END = ("END", ParserState.BODY)  # body complete, EndOfMessage due
    AFTER = ("AFTER", ParserState.DONE)  # response complete
    UPGRADED = ("UPGRADED", ParserState.UPGRADED)
    ERROR = ("ERROR", ParserState.ERROR)  # final

    def __init__(self, label: str, shown: ParserState) -> None:
        # The label keeps the values distinct (several modes show as BODY).
        self.label = label
        self.shown = shown


# The modes under module-level names, for the parser's hot paths: looking a
# member up on an Enum class costs about 0.2 us on Python 3.11, a global about
# 0.02 us, and the parser checks its mode several times per event. These are
# the same objects, only shorter ways to reach them.
(
    IDLE, HEAD, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF,
    TRAILERS, UNTIL_CLOSE, END, AFTER, UPGRADED, ERROR,
) = Mode  # in definition order (tests/http/test_http_parser.py checks each name)
#: The modes of a chunked body before its trailers. A tuple, not a set:
#: membership is then tested by identity, without calling ``Enum.__hash__``.
CHUNK_MODES: Final = (CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF)
