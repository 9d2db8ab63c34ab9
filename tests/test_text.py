"""The one escaping helper for text a peer controls: nothing a terminal obeys gets through."""

from __future__ import annotations

import errno
import os
import ssl

from hypothesis import given
from hypothesis import strategies as st

from asyncnet._text import describe_error, escape, is_terminal_safe

# The code points no output may carry: C0, DEL, C1, lone surrogates.
FORBIDDEN = {*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0xD800, 0xE000)}


# Any code point at all (surrogates included), with the dangerous ones
# drawn often enough that every run meets them.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from([chr(c) for c in sorted(FORBIDDEN)]),
    )
)
SAFE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")),
)


@given(ANY_TEXT)
def test_escaped_text_holds_no_control_characters(text: str) -> None:
    escaped = escape(text)
    assert not FORBIDDEN.intersection(map(ord, escaped))
    assert is_terminal_safe(escaped)


@given(SAFE_TEXT)
def test_safe_text_is_kept_as_it_is(text: str) -> None:
    assert escape(text) == text


def test_examples() -> None:
    assert escape("a\x1b[31mred\x07") == "a\\x1b[31mred\\x07"
    assert escape("tab\there\r\n") == "tab\\there\\r\\n"
    assert escape("csi\x9b2J del\x7f") == "csi\\x9b2J del\\x7f"
    assert escape("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"
    assert escape("bad\udcff") == "bad\\udcff"


def test_describe_error_names_the_errno_not_asyncios_address_echo() -> None:
    # What loop.sock_connect raises for a refused connection.
    refused = OSError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)")
    assert describe_error(refused) == os.strerror(errno.ECONNREFUSED)
    # An SSLError's errno is OpenSSL's code, not the system's: its text stays.
    tls = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert describe_error(tls) == "[SSL: WRONG_VERSION_NUMBER] wrong version number"
