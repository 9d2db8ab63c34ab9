"""A streamed ``multipart/form-data`` encoder (RFC 7578), sans-IO.

:class:`MultipartEncoder` lays out every part's head up front and yields the
body piece by piece: part heads and small values as they are, file objects
:data:`~asyncnet._http._request.FILE_READ_SIZE` bytes at a time through
:class:`~asyncnet._http._request.RequestBody`, so the sender's backpressure
reaches the file and memory stays bounded whatever its size. When every
part's size is known the total is known before the first byte
(``Content-Length``); otherwise :attr:`MultipartEncoder.length` is ``None``
and the body goes chunked.

Names and file names are escaped as the HTML standard's form submission
does (``"`` as ``%22``, CR as ``%0D``, LF as ``%0A``) and otherwise sent as
UTF-8. The boundary is 32 random hex digits; it is checked against every
part whose bytes are at hand (and redrawn if found), and each streamed piece
is scanned as it passes, so a file that happens to contain it fails with
:class:`~asyncnet.LocalProtocolError` instead of being cut short at the
server.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import IO, Any, Final, TypeAlias

from .._errors import LocalProtocolError, UsageError
from ._query import QueryInput, query_pairs
from ._request import RequestBody

__all__ = ["FileContent", "FilesInput", "MultipartEncoder"]

FileContent: TypeAlias = bytes | bytearray | memoryview | str | IO[bytes]
#: What ``files=`` accepts: field name to content, or to a tuple
#: ``(filename, content)`` / ``(filename, content, content_type)``.
FilesInput: TypeAlias = Mapping[
    str,
    FileContent | tuple[str | None, FileContent] | tuple[str | None, FileContent, str | None],
]

# Boundaries drawn before giving up; each collision has odds of 2**-128.
_MAX_BOUNDARY_TRIES: Final = 8
_ESCAPES: Final = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})
# A part's Content-Type is written into the body as a header line.
_BAD_TYPE_CHARS: Final = frozenset("\r\n\0")


def _escape(name: str) -> str:
    return name.translate(_ESCAPES)


class _Part:
    """One part: its head, and its content as bytes or as a body to stream."""

    __slots__ = ("content", "head", "name")

    def __init__(self, name: str, head_fields: list[str], content: bytes | RequestBody) -> None:
        self.name = name
        self.head = head_fields
        self.content = content


def _file_part(name: str, value: Any) -> _Part:
    filename: str | None
    content_type: str | None = None
    if isinstance(value, tuple):
        if len(value) == 2:
            filename, content = value
        elif len(value) == 3:
            filename, content, content_type = value
        else:
            raise UsageError(f"files[{name!r}] must be (filename, content[, content_type])")
        if filename is not None and not isinstance(filename, str):
            raise UsageError(f"files[{name!r}] file name must be str or None")
        if content_type is not None and (
            not isinstance(content_type, str) or _BAD_TYPE_CHARS & set(content_type)
        ):
            raise UsageError(f"files[{name!r}] content type must be a str without CR, LF, NUL")
    else:
        content = value
        path = getattr(content, "name", None)
        filename = os.path.basename(path) if isinstance(path, str) and path else name
    data: bytes | RequestBody
    if isinstance(content, str):
        data = content.encode("utf-8")
    elif isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
    elif hasattr(content, "read"):
        data = RequestBody.from_value(content)
    else:
        raise UsageError(
            f"files[{name!r}] must be bytes, str or a binary file, not {type(content).__name__}"
        )
    disposition = f'form-data; name="{_escape(name)}"'
    if filename is not None:
        disposition += f'; filename="{_escape(filename)}"'
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    fields = [f"Content-Disposition: {disposition}"]
    if content_type is not None:
        fields.append(f"Content-Type: {content_type}")
    return _Part(name, fields, data)


class MultipartEncoder:
    """A ``multipart/form-data`` body from ``data=`` fields and ``files=``.

    :attr:`content_type` carries the boundary; :attr:`length` is the exact
    size, or ``None`` when a file's size is unknown; :attr:`replayable` says
    whether :meth:`chunks` can run again (every file seekable). Fields come
    first, in order, then files.
    """

    __slots__ = ("_boundary", "_parts", "content_type", "length", "replayable")

    def __init__(
        self,
        data: QueryInput = None,
        files: FilesInput | None = None,
        *,
        boundary: str | None = None,
    ) -> None:
        if files is not None and not isinstance(files, Mapping):
            raise UsageError(f"files must be a mapping, not {type(files).__name__}")
        parts = [
            _Part(name, [f'Content-Disposition: form-data; name="{_escape(name)}"'],
                  value.encode("utf-8"))
            for name, value in query_pairs(data, what="data")
        ]
        for name, value in (files or {}).items():
            if not isinstance(name, str):
                raise UsageError(f"files names must be str, not {type(name).__name__}")
            parts.append(_file_part(name, value))
        self._parts = parts
        if boundary is None:
            for _ in range(_MAX_BOUNDARY_TRIES):
                boundary = secrets.token_hex(16)
                if not self._collides(boundary):
                    break
            else:  # pragma: no cover - 2**-1024
                raise LocalProtocolError("no multipart boundary absent from the parts")
        elif self._collides(boundary):
            raise UsageError("the multipart boundary occurs in a part")
        self._boundary = boundary
        self.content_type = f"multipart/form-data; boundary={boundary}"
        length: int | None = len(self._closing())
        replayable = True
        for part in parts:
            size = part.content.length if isinstance(part.content, RequestBody) else len(
                part.content
            )
            if isinstance(part.content, RequestBody):
                replayable = replayable and part.content.replayable
            if length is not None:
                length = None if size is None else length + len(self._head(part)) + size + 2
        self.length = length
        self.replayable = replayable

    def _collides(self, boundary: str) -> bool:
        marker = b"--" + boundary.encode("ascii")
        for part in self._parts:
            if marker in "\r\n".join(part.head).encode("utf-8"):
                return True
            if isinstance(part.content, bytes) and marker in part.content:
                return True
        return False

    def _head(self, part: _Part) -> bytes:
        lines = [f"--{self._boundary}", *part.head, "", ""]
        return "\r\n".join(lines).encode("utf-8")

    def _closing(self) -> bytes:
        return f"--{self._boundary}--\r\n".encode("ascii")

    def body(self) -> RequestBody:
        """This form as a request body (streamed, sized when :attr:`length` is known)."""
        return RequestBody.from_source(self.chunks, self.length, self.replayable)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the encoded body; file contents are read and scanned piece by piece."""
        marker = b"--" + self._boundary.encode("ascii")
        keep = len(marker) - 1
        for part in self._parts:
            yield self._head(part)
            content = part.content
            if isinstance(content, bytes):
                if content:
                    yield content
            else:
                tail = b""
                async for piece in content.chunks():
                    # A marker across two pieces lies within tail + piece[:keep].
                    if marker in piece or marker in tail + piece[:keep]:
                        raise LocalProtocolError(
                            f"file {part.name!r} contains the multipart boundary"
                        )
                    tail = piece[-keep:] if len(piece) >= keep else (tail + piece)[-keep:]
                    yield piece
            yield b"\r\n"
        yield self._closing()
