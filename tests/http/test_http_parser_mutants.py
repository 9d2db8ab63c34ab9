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
