"""The line splitter behind aiter_lines: LF and CRLF, any split, the max_line limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncnet import RemoteProtocolError, UsageError
from asyncnet._http._lines import LineSplitter


def _split(text: str, cuts: list[int], max_line: int = 1000) -> list[str]:
    splitter = LineSplitter(max_line)
    lines: list[str] = []
    start = 0
    for cut in sorted(c for c in cuts if c <= len(text)):
        lines += splitter.feed(text[start:cut])
        start = cut
    lines += splitter.feed(text[start:])
    return lines + splitter.flush()


@given(st.lists(st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)),
                        max_size=10), max_size=8),
       st.lists(st.sampled_from(["\n", "\r\n"]), min_size=8, max_size=8),
       st.lists(st.integers(0, 200), max_size=6), st.booleans())
def test_any_split_gives_the_lines(lines: list[str], endings: list[str], cuts: list[int],
                                   final_newline: bool) -> None:
    text = "".join(line + end for line, end in zip(lines, endings, strict=False))
    if lines and not final_newline:
        text = text[: -len(endings[len(lines) - 1])]
    expected = lines if (lines and (final_newline or lines[-1])) else lines[:-1] if lines else []
    assert _split(text, cuts) == expected


def test_a_lone_cr_stays_in_the_line() -> None:
    assert _split("a\rb\nc\r", [2]) == ["a\rb", "c\r"]


def test_max_line_counts_characters_without_the_ending() -> None:
    assert _split("abc\r\ndef\n", list(range(10)), max_line=3) == ["abc", "def"]
    with pytest.raises(RemoteProtocolError, match="max_line=3"):
        _split("abcd\n", [], max_line=3)
    splitter = LineSplitter(3)
    with pytest.raises(RemoteProtocolError, match="a line is longer than max_line=3 characters"):
        for _ in range(5):
            splitter.feed("ab")
    with pytest.raises(RemoteProtocolError, match="a line is longer than max_line=3 characters"):
        _split("abcd", [], max_line=3)  # the unterminated last line too
    with pytest.raises(UsageError, match=r"^max_line must be an int >= 1"):
        LineSplitter(0)
