"""Split text into lines for ``Response.aiter_lines()``, sans-IO and bounded.

Lines end at LF, with an optional CR before it (so CRLF and LF both work; a
lone CR stays part of its line, as in most line protocols). Text is fed in
whatever pieces it arrives in; a line is handed out without its ending once
the LF is seen, and a last line without one is handed out by :meth:`flush`.
A line longer than ``max_line`` characters raises
:class:`~asyncnet.RemoteProtocolError`: without the limit a server that never
sends a newline would make the splitter hold the whole body.
"""

from __future__ import annotations

from typing import Final

from .._errors import RemoteProtocolError, UsageError

__all__ = ["DEFAULT_MAX_LINE", "LineSplitter"]

#: Longest line, in characters, :meth:`Response.aiter_lines` accepts by
#: default: far above any log, CSV or JSON-lines record a person writes,
#: small enough that a runaway line costs a bounded amount of memory.
DEFAULT_MAX_LINE: Final = 1024 * 1024


class LineSplitter:
    """Turn pieces of text into complete lines, holding at most ``max_line`` characters."""

    __slots__ = ("_max_line", "_pending", "_pending_len")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if isinstance(max_line, bool) or not isinstance(max_line, int) or max_line < 1:
            raise UsageError(f"max_line must be an int >= 1, not {max_line!r}")
        self._max_line = max_line
        self._pending: list[str] = []
        self._pending_len = 0

    def _too_long(self) -> RemoteProtocolError:
        return RemoteProtocolError(f"a line is longer than max_line={self._max_line} characters")

    def feed(self, text: str) -> list[str]:
        """Return the lines that ``text`` completes (without their CRLF or LF)."""
        lines: list[str] = []
        start = 0
        limit = self._max_line
        while True:
            end = text.find("\n", start)
            if end < 0:
                break
            if self._pending:
                self._pending.append(text[start:end])
                line = "".join(self._pending)
                self._pending.clear()
                self._pending_len = 0
            else:
                line = text[start:end]
            if line.endswith("\r"):
                line = line[:-1]
            if len(line) > limit:
                raise self._too_long()
            lines.append(line)
            start = end + 1
        if start < len(text):
            rest = text[start:]
            self._pending.append(rest)
            self._pending_len += len(rest)
            # One more character is allowed: it may be the CR of a CRLF.
            if self._pending_len > limit + 1 or (
                self._pending_len == limit + 1 and not rest.endswith("\r")
            ):
                raise self._too_long()
        return lines

    def flush(self) -> list[str]:
        """Return the last line if the text did not end with a newline (at end of body)."""
        if not self._pending:
            return []
        line = "".join(self._pending)
        self._pending.clear()
        self._pending_len = 0
        if len(line) > self._max_line:
            raise self._too_long()
        return [line]
