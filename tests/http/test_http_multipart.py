"""The multipart encoder, sans-IO: parsed back by the stdlib email parser, sizes, boundaries."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asyncnet import LocalProtocolError, UsageError
from asyncnet._http._multipart import MultipartEncoder
from asyncnet._http._request import FILE_READ_SIZE
from tests.support.forms import parse_form


def _body(encoder: MultipartEncoder) -> bytes:
    async def collect() -> bytes:
        return b"".join([piece async for piece in encoder.chunks()])

    return asyncio.run(collect())


def _escaped(name: str) -> str:
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


# Backslashes are left out: the HTML standard sends them as they are, while the
# email parser reads quoted-strings by RFC 5322 and takes them for escapes
# (Node's parser, which follows the HTML standard, gets them in test_http_forms).
names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\\")
    | st.sampled_from(['"', "\r", "\n"]),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60)
@given(st.lists(st.tuples(names, st.text(max_size=20)), max_size=3),
       st.dictionaries(names, st.tuples(names, st.binary(max_size=300)), max_size=3))
def test_email_parser_reads_back_fields_and_files(fields: list[tuple[str, str]],
                                                  files: dict[str, tuple[str, bytes]]) -> None:
    assume(fields or files)  # the email parser reads an empty form as no multipart at all
    fields = [(n, v.replace("\r", "").replace("\n", "")) for n, v in fields]
    encoder = MultipartEncoder(fields, {k: (fn, data) for k, (fn, data) in files.items()})
    body = _body(encoder)
    assert encoder.length == len(body)
    parsed = parse_form(encoder.content_type, body)
    expected = [(_escaped(n), None, None, v.encode()) for n, v in fields] + [
        (_escaped(k), _escaped(fn), "application/octet-stream", data)
        for k, (fn, data) in files.items()
    ]
    got = [(n, f, None if t is None else t.split(";")[0], p) for n, f, t, p in parsed]
    # The email parser guesses no types; ours come from the file name.
    got = [(n, f, t if f is None else "application/octet-stream", p) for n, f, t, p in got]
    assert got == expected
    boundary = encoder.content_type.partition("boundary=")[2]
    assert len(boundary) == 32
    assert body.count(b"--" + boundary.encode()) == len(fields) + len(files) + 1


class CountingFile(io.BytesIO):
    """A seekable file that records the size of each read."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def test_file_objects_are_read_in_pieces_with_a_known_length() -> None:
    data = bytes(range(256)) * 1000  # 256 000 bytes
    fileobj = CountingFile(data, "/tmp/report.csv")
    encoder = MultipartEncoder({"a": "1"}, {"upload": fileobj})
    assert encoder.length is not None and encoder.replayable
    body = _body(encoder)
    assert len(body) == encoder.length
    assert max(fileobj.reads) <= FILE_READ_SIZE and len(fileobj.reads) >= 4
    parsed = parse_form(encoder.content_type, body)
    assert parsed[1][:3] == ("upload", "report.csv", "text/csv")
    assert parsed[1][3] == data
    # Replayable: a second run gives the same bytes.
    assert _body(encoder) == body


class Pipe:
    """A non-seekable binary reader: its size is unknown up front."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def seekable(self) -> bool:
        return False


def test_unknown_sizes_make_the_body_chunked_and_one_shot() -> None:
    encoder = MultipartEncoder(None, {"f": ("x.bin", Pipe(b"abc"), "application/x-test")})
    assert encoder.length is None and not encoder.replayable
    parsed = parse_form(encoder.content_type, _body(encoder))
    assert parsed == [("f", "x.bin", "application/x-test", b"abc")]


def test_a_boundary_in_a_part_is_never_used() -> None:
    with pytest.raises(UsageError, match="boundary"):
        MultipartEncoder({"a": "x--abc"}, boundary="abc")
    # A streamed file holding the boundary fails instead of ending the part early,
    # also when the boundary straddles two reads.
    for offset in (0, FILE_READ_SIZE - 3, FILE_READ_SIZE + 7):
        data = bytearray(FILE_READ_SIZE * 2)
        data[offset : offset + 34] = b"--" + b"b" * 32
        encoder = MultipartEncoder(None, {"f": CountingFile(bytes(data), "f")}, boundary="b" * 32)
        with pytest.raises(LocalProtocolError, match="boundary"):
            _body(encoder)


@pytest.mark.parametrize(
    ("data", "files", "rule"),
    [
        (None, ["not", "a", "mapping"], "files must be a mapping, not list"),
        (None, {"f": 42}, "files['f'] must be bytes, str or a binary file, not int"),
        (None, {"f": ("name",)}, "files['f'] must be (filename, content[, content_type])"),
        (
            None,
            {"f": ("name", b"x", "text/plain\r\nX-Evil: 1")},
            "files['f'] content type must be a str without CR, LF, NUL",
        ),
        (None, {1: b"x"}, "files names must be str, not int"),
        ({"a": object()}, None, "value of 'a' must be str, int, float, bool or None"),
    ],
)
def test_bad_input_raises_usage_error(data: Any, files: Any, rule: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(rule)):
        MultipartEncoder(data, files)
