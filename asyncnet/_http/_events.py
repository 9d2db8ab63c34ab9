"""What the response parser hands back: its events and the NEED_DATA marker.

For each response, in order: one :class:`ResponseHead` (interim 1xx
responses are skipped), zero or more :class:`Data`, one :class:`EndOfMessage`.
:data:`NEED_DATA` means "feed more bytes (or EOF)". Plain values, no behaviour:
the parser (:mod:`asyncnet._http._parser`) makes them, the connection reads them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from ._headers import Headers

__all__ = ["NEED_DATA", "Data", "EndOfMessage", "Event", "NeedData", "ResponseHead"]


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by the parser's ``next_event`` when more bytes (or EOF) are needed.
NEED_DATA: Final = _NeedData.NEED_DATA
#: The type of :data:`NEED_DATA`, for annotations.
NeedData: TypeAlias = Literal[_NeedData.NEED_DATA]


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
