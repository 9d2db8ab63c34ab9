"""The state of one exchange on an HTTP connection, written down once.

After h11's ``_state.py``: three small enums, one for our side (how much of
the request reached the transport), one for theirs (how far the response has
arrived) and one for how the caller takes the body, which decides where it
is received. :class:`~asyncnet._http._connection.HTTPConnection` holds one of
each and moves them only along these arrows (one read may take the response
several steps at once)::

    RequestState:   IDLE -begin-> SENDING -last request byte written-> SENT
    ResponseState:  IDLE -begin-> WAITING -a byte-> HEAD -final head-> BODY -end-> DONE
    ReadMode:       CHUNKS, or WHOLE (begin with read_whole) -read_all-> ALL
    release:        RequestState and ResponseState back to IDLE
"""

from __future__ import annotations

import enum

__all__ = ["ReadMode", "RequestState", "ResponseState"]


class RequestState(enum.Enum):
    """Our side of the exchange: how much of the request reached the transport."""

    IDLE = "IDLE"  #: no exchange
    SENDING = "SENDING"  #: begun; the head or a streamed body is still to be written
    SENT = "SENT"  #: every byte of the request was handed to the transport


class ResponseState(enum.Enum):
    """Their side of the exchange: how far the response has arrived."""

    IDLE = "IDLE"  #: no exchange
    WAITING = "WAITING"  #: begun; not a byte of response yet
    HEAD = "HEAD"  #: bytes arrived, the final head is not complete
    BODY = "BODY"  #: the final head is here, the body is arriving
    DONE = "DONE"  #: the response ended (its body may still be buffered)


class ReadMode(enum.Enum):
    """How the caller takes the body, which decides where it is received."""

    CHUNKS = "CHUNKS"  #: piece by piece (read_chunk): buffered, reading pauses when full
    WHOLE = "WHOLE"  #: promised whole at begin: a long body goes direct from the head
    ALL = "ALL"  #: read_all is taking it: never pause, wake only at the end
