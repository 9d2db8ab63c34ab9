"""The response parser at the boundaries mutation testing found unpinned (docs/development.rst).

Each test drives the sans-IO parser with bytes through ``feed()``,
``next_event()``, ``events()`` and the direct-body interface, as an I/O layer
does, and checks what comes out: events, verdicts, error messages, state.
"""

from __future__ import annotations

import pytest

from asyncnet import LocalProtocolError, RemoteProtocolError
from asyncnet._http._headers import Headers
from asyncnet._http._parser import (
    NEED_DATA,
    Data,
    EndOfMessage,
    ParserLimits,
    ParserState,
    ResponseHead,
    ResponseParser,
)
from tests.support.parser_helpers import drive_all_splits

CRLF = b"\r\n"


def head(status_line: bytes, *fields: bytes) -> bytes:
    return status_line + CRLF + b"".join(f + CRLF for f in fields) + CRLF


CHUNKED = head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked")


# -- interim responses -------------------------------------------------------------


def test_interim_responses_are_counted_from_zero_for_every_request() -> None:
    parser = ResponseParser()
    assert parser.interim_responses == 0
    parser.start_response("POST")
    assert parser.interim_responses == 0
    parser.feed(head(b"HTTP/1.1 100 Continue"))
    assert parser.next_event() is NEED_DATA
    assert parser.interim_responses == 1
    events = parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 0"))
    assert [type(e) for e in events] == [ResponseHead, EndOfMessage]
    parser.start_response("GET")
    assert parser.interim_responses == 0


def test_exactly_max_interim_responses_are_skipped() -> None:
    raw = head(b"HTTP/1.1 100 Continue") * 2 + head(b"HTTP/1.1 200 OK", b"Content-Length: 0")
    outcome = drive_all_splits(raw, limits=ParserLimits(max_interim_responses=2))
    assert outcome.error is None
    assert outcome.events == [("head", 200, "OK", "1.1", [("Content-Length", "0")]), ("end", [])]


# -- events() when no response is expected -------------------------------------------


def test_events_refuses_bytes_on_an_idle_parser() -> None:
    parser = ResponseParser()
    with pytest.raises(RemoteProtocolError, match="19 unsolicited bytes while no response"):
        parser.events(head(b"HTTP/1.1 200 OK"))
    assert parser.state is ParserState.ERROR


def test_events_refuses_bytes_after_a_keep_alive_response() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 0"))
    assert parser.state is ParserState.DONE
    with pytest.raises(RemoteProtocolError, match="unsolicited bytes while no response"):
        parser.events(b"HTTP/1.1 200 OK\r\n")
    assert parser.state is ParserState.ERROR


def test_a_failed_parser_repeats_its_first_error() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    with pytest.raises(RemoteProtocolError, match="does not start with 'HTTP/'"):
        parser.events(head(b"SPDY/3 200 OK"))
    first = "parser already failed: status line 'SPDY/3 200 OK' does not start with 'HTTP/'"
    for call in (
        parser.next_event,
        lambda: parser.feed(b"x"),
        lambda: parser.events(b"x"),
    ):
        with pytest.raises(RemoteProtocolError) as info:
            call()
        assert str(info.value) == first


# -- events() stops at the end of the response -------------------------------------------


@pytest.mark.parametrize("connection", [b"Connection: close", b"Connection: keep-alive"])
def test_events_stops_at_the_end_of_a_chunked_response_with_bytes_behind_it(
    connection: bytes,
) -> None:
    # Bytes behind a response in the same read are left for trailing_data;
    # they are refused (the connection is not reused) only by a later call.
    parser = ResponseParser()
    parser.start_response("GET")
    raw = head(b"HTTP/1.1 200 OK", connection, b"Transfer-Encoding: chunked")
    events = parser.events(raw + b"2\r\nok\r\n0\r\n\r\nextra")
    assert events[1:] == [Data(b"ok"), EndOfMessage(Headers())]
    assert parser.state is ParserState.CLOSED
    assert not parser.keep_alive
    assert parser.trailing_data == b"extra"
    with pytest.raises(RemoteProtocolError, match="5 bytes after a response that ended"):
        parser.next_event()


# -- Connection fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fields", "keep_alive"),
    [
        (b"1.1", [b"Connection: keep-alive", b"Connection: close"], False),
        (b"1.1", [b"Connection: close", b"Connection: keep-alive"], False),
        (b"1.1", [b"Connection: upgrade", b"Connection: x-other"], True),
        (b"1.0", [b"Connection: x-other", b"Connection: keep-alive"], True),
        (b"1.0", [b"Connection: keep-alive", b"Connection: x-other"], True),
        (b"1.0", [b"Connection: x-other", b"Connection: x-more"], False),
    ],
)
def test_every_connection_field_counts(
    version: bytes, fields: list[bytes], keep_alive: bool
) -> None:
    raw = head(b"HTTP/" + version + b" 200 OK", *fields, b"Content-Length: 2") + b"ok"
    outcome = drive_all_splits(raw)
    assert outcome.error is None
    assert outcome.body == b"ok"
    assert outcome.keep_alive is keep_alive


# -- chunked bodies -----------------------------------------------------------------------


def test_a_cr_after_chunk_data_followed_by_anything_but_lf_fails_at_once() -> None:
    # No EOF: the second byte after the data already proves the CRLF missing.
    outcome = drive_all_splits(CHUNKED + b"5\r\nhello\rX")
    assert outcome.error is not None
    assert "chunk data is not followed by CRLF" in outcome.error


def test_chunk_size_line_of_exactly_max_line_size_is_accepted() -> None:
    limits = ParserLimits(max_line_size=40)
    line = b"1;a=" + b"b" * 36
    assert len(line) == 40
    outcome = drive_all_splits(CHUNKED + line + b"\r\nx\r\n0\r\n\r\n", limits=limits)
    assert outcome.error is None
    assert outcome.body == b"x"
    longer = drive_all_splits(CHUNKED + line + b"b\r\nx\r\n0\r\n\r\n", limits=limits)
    assert longer.error is not None
    assert "chunk-size line exceeds 40 bytes" in longer.error


# -- bodies the caller receives itself ------------------------------------------------------


def test_a_direct_body_can_be_consumed_one_byte_at_a_time() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    events = parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 3"))
    assert [type(e) for e in events] == [ResponseHead]
    for left in (3, 2):
        assert parser.direct_body_bytes == left
        assert parser.consume_direct_body(1) is None
    assert parser.direct_body_bytes == 1
    with pytest.raises(LocalProtocolError, match="cannot consume 2 body bytes directly"):
        parser.consume_direct_body(2)
    assert parser.consume_direct_body(1) == EndOfMessage(Headers())
    assert parser.state is ParserState.DONE
    assert parser.direct_body_bytes == 0


# -- limits (asyncnet.ParserLimits) ---------------------------------------------------------


def test_parser_limit_defaults_are_the_documented_values() -> None:
    limits = ParserLimits()
    assert limits.max_line_size == 8192
    assert limits.max_header_count == 100
    assert limits.max_head_size == 65536
    assert limits.max_trailer_size == 16384
    assert limits.max_interim_responses == 10
    assert limits.max_chunk_size_digits == 16
    assert limits.max_content_length_digits == 19


def test_every_limit_may_be_one() -> None:
    one = ParserLimits(
        max_line_size=1, max_header_count=1, max_head_size=1, max_trailer_size=1,
        max_interim_responses=1, max_chunk_size_digits=1, max_content_length_digits=1,
    )
    assert one.max_line_size == one.max_head_size == one.max_chunk_size_digits == 1


def test_a_header_line_of_exactly_max_line_size_is_accepted_however_split() -> None:
    line = b"X: " + b"a" * 37
    assert len(line) == 40
    raw = head(b"HTTP/1.1 200 OK", line, b"Content-Length: 0")
    outcome = drive_all_splits(raw, limits=ParserLimits(max_line_size=40))
    assert outcome.error is None
    assert outcome.events[0][4] == [("X", "a" * 37), ("Content-Length", "0")]


# -- a pending head or trailer section fails as soon as it cannot become valid ---------------
# No EOF in these: the bytes received already prove the response malformed.

SMALL_LINES = ParserLimits(max_line_size=40)


@pytest.mark.parametrize(
    ("raw", "limits", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 38 + b"\r\n", SMALL_LINES,
         "header line exceeds 40 bytes"),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n \x01\r\n", ParserLimits(),
         "value contains control character 0x01"),
        (CHUNKED + b"0\r\n A: b\r\nB", ParserLimits(), "first trailer line ' A: b' starts"),
    ],
    ids=["complete-line-too-long", "bad-continuation-line", "first-trailer-line-folded"],
)
def test_a_pending_block_fails_at_the_first_line_that_cannot_be_valid(
    raw: bytes, limits: ParserLimits, message: str
) -> None:
    outcome = drive_all_splits(raw, limits=limits)
    assert outcome.error is not None
    assert message in outcome.error


def test_a_long_quoted_line_is_shown_cut_at_40_characters() -> None:
    # Error messages quote peer input shortened, and say so with "...".
    exact = b"X" * 40
    outcome = drive_all_splits(exact + b"\r\n\r\n")
    assert outcome.error == f"status line {'X' * 40!r} does not start with 'HTTP/'"
    outcome = drive_all_splits(exact + b"Y\r\n\r\n")
    assert outcome.error == f"status line {'X' * 40!r}... does not start with 'HTTP/'"
    bare_cr = b"HTTP/1.1 200 OK\r\nA: " + b"b" * 40 + b"\rc"
    outcome = drive_all_splits(bare_cr)
    assert outcome.error == f"response head line {(b'A: ' + b'b' * 37)!r}... contains a bare CR"


def test_a_bare_lf_in_a_field_line_without_a_colon_is_named() -> None:
    outcome = drive_all_splits(head(b"HTTP/1.1 200 OK", b"abc\ndef"))
    assert outcome.error is not None
    assert "bare LF" in outcome.error


# -- chunk-size lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        (b"1\rX", "chunk-size line contains a bare CR"),
        (b"1\rX\r\nx\r\n0\r\n\r\n", "chunk-size line contains a bare CR"),
        (b"0" * 17, "chunk size has more than 16 hex digits"),
        (b"1;a=" + b"b" * 37 + b"\r", "chunk-size line exceeds 40 bytes"),
        (b"1\r\na\r\n00001\r\nb\r\n0\r\n\r\n", "chunk size has more than 4 hex digits"),
    ],
    ids=["bare-cr-pending", "bare-cr-complete", "too-many-digits-pending",
         "too-long-pending-cr", "too-many-digits-second-chunk"],
)
def test_a_bad_chunk_size_line_fails_as_soon_as_certain(rest: bytes, message: str) -> None:
    limits = ParserLimits(max_line_size=40, max_chunk_size_digits=16 if b"0" * 17 in rest else 4)
    outcome = drive_all_splits(CHUNKED + rest, limits=limits)
    assert outcome.error is not None
    assert message in outcome.error


def test_chunk_sizes_are_hexadecimal_on_every_path() -> None:
    # 0x1a bytes with an extension (read by the steps) and without (the fast
    # path), then a size of exactly max_chunk_size_digits digits after a chunk.
    body = bytes(range(65, 65 + 26))
    raw = (CHUNKED + b"1a;name=value\r\n" + body + b"\r\n" + b"1A\r\n" + body + b"\r\n"
           + b"0001\r\n!\r\n0\r\n\r\n")
    outcome = drive_all_splits(raw, limits=ParserLimits(max_chunk_size_digits=4))
    assert outcome.error is None
    assert outcome.body == body + body + b"!"


def test_a_cr_ending_one_read_of_a_size_line_is_checked_again_when_the_next_byte_comes() -> None:
    # Regression: "1\r" was accepted pending (an LF could follow); the scan
    # then resumed after the CR, so "X" behind it passed unseen until the line
    # ended, where a read of "1\rX" whole fails at once.
    parser = ResponseParser()
    parser.start_response("GET")
    assert [type(e) for e in parser.events(CHUNKED + b"1\r")] == [ResponseHead]
    with pytest.raises(RemoteProtocolError, match="chunk-size line contains a bare CR"):
        parser.events(b"X")


def test_a_complete_trailer_section_whose_first_line_is_folded_is_refused() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    with pytest.raises(RemoteProtocolError, match="first trailer line ' A: b' starts with"):
        parser.events(CHUNKED + b"0\r\n A: b\r\nB: c\r\n\r\n")


def test_a_bare_cr_that_starts_a_read_of_a_size_line_is_named() -> None:
    # Nothing buffered: the read becomes the buffer and the CR is its first byte.
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(CHUNKED)
    with pytest.raises(RemoteProtocolError, match="chunk-size line contains a bare CR"):
        parser.events(b"\rX")


def test_chunk_data_followed_by_a_bare_lf_is_refused_before_the_next_size_line() -> None:
    outcome = drive_all_splits(CHUNKED + b"1\r\naX\n")
    assert outcome.error is not None
    assert "chunk data is not followed by CRLF" in outcome.error


# -- every block counts its field lines from zero ---------------------------------------------


def test_the_head_after_an_interim_response_counts_its_fields_from_zero() -> None:
    # The interim head is taken whole; the final head is still pending when
    # its third field line arrives, which is one too many.
    parser = ResponseParser(ParserLimits(max_header_count=2))
    parser.start_response("GET")
    parser.feed(head(b"HTTP/1.1 100 Continue", b"X-A: 1"))
    parser.feed(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n")
    assert parser.next_event() is NEED_DATA
    assert parser.interim_responses == 1
    parser.feed(b"C: 3\r\n")
    with pytest.raises(RemoteProtocolError, match=r"^header section has more than 2 fields$"):
        parser.next_event()


@pytest.mark.parametrize("head_whole", [True, False], ids=["head-whole", "head-in-pieces"])
def test_the_trailer_section_counts_its_fields_from_zero(head_whole: bool) -> None:
    # A head that arrives in pieces has its field lines counted while it is
    # pending; the trailer section after it starts again from zero.
    limits = ParserLimits(max_header_count=2)
    fields = head(b"HTTP/1.1 200 OK", b"A: 1", b"Transfer-Encoding: chunked")
    reads = [fields] if head_whole else [fields[:-2], fields[-2:]]
    trailers = b"1\r\nx\r\n0\r\nT: 1\r\nU: 2\r\n"
    for extra, fails in ((b"\r\n", False), (b"V: 3\r\n", True)):
        parser = ResponseParser(limits)
        parser.start_response("GET")
        got: list[object] = []
        for read in [*reads, trailers]:
            parser.feed(read)
            while (event := parser.next_event()) is not NEED_DATA:
                got.append(event)
        assert [type(e) for e in got] == [ResponseHead, Data]
        assert parser.state is ParserState.BODY
        parser.feed(extra)
        if fails:
            with pytest.raises(
                RemoteProtocolError, match=r"^trailer section has more than 2 fields$"
            ):
                parser.next_event()
        else:
            assert parser.next_event() == EndOfMessage(Headers([("T", "1"), ("U", "2")]))


# -- which statuses are interim, and which answers to CONNECT open a tunnel -----------------


def test_every_1xx_but_101_is_skipped_as_interim() -> None:
    raw = head(b"HTTP/1.1 199 Whatever") + head(b"HTTP/1.1 200 OK", b"Content-Length: 0")
    outcome = drive_all_splits(raw)
    assert outcome.error is None
    assert outcome.events == [("head", 200, "OK", "1.1", [("Content-Length", "0")]), ("end", [])]


@pytest.mark.parametrize(
    ("status", "tunnel"), [(b"200", True), (b"299", True), (b"300", False), (b"407", False)]
)
def test_only_a_2xx_answer_to_connect_opens_a_tunnel(status: bytes, tunnel: bool) -> None:
    raw = head(b"HTTP/1.1 " + status + b" X", b"Content-Length: 2") + b"ok"
    outcome = drive_all_splits(raw, method="CONNECT")
    assert outcome.error is None
    if tunnel:
        # The bytes after the head are the tunnel's, not a body.
        assert outcome.events == [("head", int(status), "X", "1.1", [("Content-Length", "2")])]
        assert outcome.state == "UPGRADED"
    else:
        assert outcome.body == b"ok"
        assert outcome.events[-1] == ("end", [])
        assert outcome.keep_alive


# -- more boundaries the mutation run found unpinned ------------------------------------------


def test_a_fresh_parser_is_not_keep_alive() -> None:
    # No response has finished, so none lets the connection carry another request.
    parser = ResponseParser()
    assert parser.state is ParserState.IDLE
    assert parser.keep_alive is False


@pytest.mark.parametrize(
    "before",
    [b"", b"HTTP/1.1 200 OK\r\n", head(b"HTTP/1.1 200 OK", b"Content-Length: 5") + b"ab"],
    ids=["nothing", "part-of-the-head", "part-of-the-body"],
)
def test_bytes_after_eof_are_refused(before: bytes) -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.feed(before)
    parser.feed_eof()
    with pytest.raises(RemoteProtocolError, match=r"^received 3 bytes after EOF$"):
        parser.feed(b"xyz")
    assert parser.state is ParserState.ERROR


def test_a_length_body_that_looks_like_chunked_framing_is_passed_through() -> None:
    # The read arrives with nothing buffered, in LENGTH mode: it is body bytes,
    # never chunk framing.
    body = b"\r\n5\r\nhello\r\n"
    parser = ResponseParser()
    parser.start_response("GET")
    raw = head(b"HTTP/1.1 200 OK", b"Content-Length: %d" % (len(body) + 1)) + b"x"
    assert parser.events(raw)[1:] == [Data(b"x")]
    assert parser.events(body) == [Data(body), EndOfMessage(Headers())]


@pytest.mark.parametrize("trailer", [False, True], ids=["head", "trailer-section"])
def test_a_block_of_exactly_its_size_limit_is_accepted(trailer: bool) -> None:
    # Each block arrives whole, so the size is checked where it is taken.
    block = b"T: 1\r\n\r\n" if trailer else head(b"HTTP/1.1 200 OK", b"Content-Length: 0")
    for limit in (len(block), len(block) - 1):
        if trailer:
            limits = ParserLimits(max_trailer_size=limit)
            before, what = CHUNKED + b"1\r\nx\r\n0\r\n", "trailer section"
        else:
            limits = ParserLimits(max_head_size=limit)
            before, what = b"", "response head"
        parser = ResponseParser(limits)
        parser.start_response("GET")
        if before:
            parser.events(before)
        if limit == len(block):
            assert parser.events(block)[-1] == EndOfMessage(
                Headers([("T", "1")]) if trailer else Headers()
            )
        else:
            with pytest.raises(RemoteProtocolError, match=rf"^{what} exceeds {limit} bytes$"):
                parser.events(block)


def test_a_cr_followed_by_anything_but_lf_does_not_end_the_trailer_section() -> None:
    outcome = drive_all_splits(CHUNKED + b"1\r\nx\r\n0\r\n\rX")
    assert outcome.error == "trailer line b'\\rX' contains a bare CR"


def test_an_empty_chunk_size_line_at_the_start_of_a_read_is_named() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    assert parser.events(CHUNKED + b"1\r\nx\r\n")[1:] == [Data(b"x")]
    with pytest.raises(RemoteProtocolError, match=r"^chunk size b'' is not a hexadecimal number$"):
        parser.events(b"\r\n0\r\n\r\n")


def test_an_idle_parser_that_sees_eof_is_closed() -> None:
    parser = ResponseParser()
    parser.feed_eof()
    assert parser.state is ParserState.CLOSED
    with pytest.raises(
        LocalProtocolError, match=r"^cannot start a new response while the parser is CLOSED$"
    ):
        parser.start_response("GET")


def test_one_byte_after_chunk_data_that_is_not_a_cr_fails_at_once() -> None:
    # The read ends after that byte: it already proves the CRLF missing.
    outcome = drive_all_splits(CHUNKED + b"1\r\naX")
    assert outcome.error == "chunk data is not followed by CRLF"
