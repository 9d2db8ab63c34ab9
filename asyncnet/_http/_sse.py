"""A Server-Sent Events parser (the HTML standard's ``text/event-stream``), sans-IO.

Feed it the body's bytes in any pieces; it returns the events they complete.
The rules are the HTML standard's "interpreting an event stream": lines end
at CRLF, LF or a lone CR; a leading UTF-8 BOM is dropped; ``:`` starts a
comment; a field's value loses one leading space; ``data`` lines are joined
with LF; ``id`` (unless it holds NUL) sets the last event ID, which every
later event carries; ``retry`` takes ASCII digits only; a blank line
dispatches the event, unless it has no data; unknown fields are ignored, and
a last event without its blank line is dropped at the end of the stream.

Every byte of the event being assembled counts towards ``max_event_size``
(the partial line included), so a server that never ends a line or an event
makes the parser raise :class:`~asyncnet.RemoteProtocolError` rather than
hold the stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .._errors import RemoteProtocolError, UsageError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEParser", "ServerSentEvent"]

#: Largest event :meth:`Response.aiter_events` assembles by default: SSE
#: carries notifications and tokens, usually well under a kilobyte; 1 MiB
#: leaves room for the odd large JSON payload and bounds a hostile stream.
DEFAULT_MAX_EVENT_SIZE: Final = 1024 * 1024

_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event of a ``text/event-stream`` response."""

    #: The event type; ``"message"`` when the server named none.
    event: str = "message"
    #: The data lines, joined with ``"\\n"``.
    data: str = ""
    #: The last event ID the stream set (this event's own, or an earlier one).
    id: str = ""
    #: Reconnection time in milliseconds, if this event set one.
    retry: int | None = None


class SSEParser:
    """Assemble :class:`ServerSentEvent` objects from ``text/event-stream`` bytes.

    States: ``start`` (a BOM may come) -> ``lines``. :attr:`last_event_id` and
    :attr:`retry` keep the latest values seen, for a reconnecting caller.
    """

    __slots__ = (
        "_after_cr",
        "_data",
        "_data_size",
        "_event",
        "_line",
        "_max",
        "_retry",
        "_started",
        "last_event_id",
        "retry",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int) or (
            max_event_size < 1
        ):
            raise UsageError(f"max_event_size must be an int >= 1, not {max_event_size!r}")
        self._max = max_event_size
        self._line = bytearray()
        self._after_cr = False
        self._started = False
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._retry: int | None = None
        #: The last event ID set by the stream ("" before any).
        self.last_event_id = ""
        #: The latest reconnection time in milliseconds, if the stream sent one.
        self.retry: int | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Return the events that ``data`` completes."""
        events: list[ServerSentEvent] = []
        if not data:
            return events
        if not self._started:
            # The BOM may itself arrive split: wait until 3 bytes decide.
            self._line += data
            head = bytes(self._line[:3])
            if len(head) < 3 and _BOM.startswith(head):
                return events
            self._started = True
            data = bytes(self._line[3:] if head == _BOM else self._line)
            self._line.clear()
        start = 0
        if self._after_cr and data[:1] == b"\n":
            start = 1  # the LF of a CRLF whose CR ended the last piece
        self._after_cr = False
        for match in _LINE_END.finditer(data, start):
            if self._line:
                self._line += data[start : match.start()]
                line = bytes(self._line)
                self._line.clear()
            else:
                line = data[start : match.start()]
            self._process(line, events)
            start = match.end()
            if match.end() == len(data) and data[-1:] == b"\r":
                self._after_cr = True
        if start < len(data):
            self._line += data[start:]
            if len(self._line) + self._data_size + len(self._event) > self._max:
                raise self._too_large()
        return events

    def _too_large(self) -> RemoteProtocolError:
        return RemoteProtocolError(f"a server-sent event is larger than {self._max} bytes")

    def _process(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw[:1] == b":":
            if len(raw) > self._max:
                raise self._too_large()
            return  # a comment (often a keep-alive)
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(raw)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = self.retry = int(value)
        if self._data_size + len(self._event) > self._max:
            raise self._too_large()

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if self._data:
            events.append(
                ServerSentEvent(
                    event=self._event or "message",
                    data="\n".join(self._data),
                    id=self.last_event_id,
                    retry=self._retry,
                )
            )
        self._data = []
        self._data_size = 0
        self._event = ""
        self._retry = None
