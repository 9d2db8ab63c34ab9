"""Text a peer or an input list controls, made safe to show on a terminal.

A URL, a reason phrase, a header value or an error message that quotes them
can carry bytes a terminal obeys: ESC and CSI sequences move the cursor,
rewrite the title or the clipboard, BEL rings, CR overwrites the line that
was printed. Everything that shows such text (the command line,
``repr(Response)``, ``str(HTTPStatusError)``) passes it through
:func:`escape` first, so a hostile server can colour nothing and hide nothing.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl

__all__ = ["describe_error", "escape", "is_terminal_safe"]

# C0 controls, DEL and C1 controls (U+0080-U+009F: 0x9B is a one-byte CSI on
# terminals that accept 8-bit controls), plus lone surrogates, which cannot be
# encoded for output at all (they come from undecodable bytes in sys.argv or
# file names) and would crash a print() instead of showing something.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# The familiar short forms; everything else becomes \xNN or \uNNNN as in repr().
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """Return ``text`` with every control character written as a visible escape.

    C0 controls (tab, newline and ESC included), DEL, C1 controls and lone
    surrogates become ``\\t``, ``\\n``, ``\\r``, ``\\xNN`` or ``\\uNNNN``;
    every other character, non-ASCII letters included, is kept as it is.
    Backslashes are kept too, so the result is for reading, not for parsing
    back.
    """
    return _UNSAFE.sub(_replace, text)


def is_terminal_safe(text: str) -> bool:
    """True when ``text`` holds none of the characters :func:`escape` rewrites."""
    return _UNSAFE.search(text) is None


def describe_error(exc: BaseException) -> str:
    """A one-line, escaped, never-empty reason for ``exc``, to follow "cannot ...: ".

    An ``OSError``'s ``strerror`` ("Connection refused") reads better than
    its ``str()`` ("[Errno 111] Connection refused"); an exception with no
    message (asyncio raises a bare ``ConnectionResetError()`` when the peer
    closes during a TLS handshake) is named by its class, so a message
    never ends in an empty reason. asyncio's "Connect call failed
    ('127.0.0.1', 1)" repeats the address the caller already names; the
    system's own text for its errno ("Connection refused") is used instead.
    """
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if (
        isinstance(exc, OSError)
        # An SSLError's errno is OpenSSL's, a gaierror's the resolver's.
        and not isinstance(exc, (ssl.SSLError, socket.gaierror))
        and exc.errno is not None
        and exc.errno in errno.errorcode
        and str(exc.strerror).startswith("Connect call failed")
    ):
        text = os.strerror(exc.errno)
    text = " ".join(str(text).split())
    if text:
        return escape(text)
    if isinstance(exc, ConnectionError):
        return f"{type(exc).__name__} (the peer closed the connection)"
    return type(exc).__name__
