"""The sans-IO response parser, driven with bytes: every rule, every split position."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncnet import LocalProtocolError, RemoteProtocolError, UsageError
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
from tests.support.parser_helpers import drive, drive_all_splits
from tests.support.servers import HTTPServer, RawServer, pattern

CRLF = b"\r\n"
# Examples for the split-verdict property; raise it locally to hunt harder.
EXAMPLES = int(os.environ.get("ASYNCNET_PARSER_EXAMPLES", "300"))


def head(status_line: bytes, *fields: bytes) -> bytes:
    return status_line + CRLF + b"".join(f + CRLF for f in fields) + CRLF


# -- accepted responses ---------------------------------------------------------

VALID: list[tuple[str, bytes, dict[str, object], list[tuple[object, ...]], bool]] = [
    # (id, raw, drive kwargs, expected events, keep_alive)
    (
        "content-length",
        head(b"HTTP/1.1 200 OK", b"Content-Length: 5", b"Content-Type: text/plain") + b"hello",
        {},
        [
            ("head", 200, "OK", "1.1", [("Content-Length", "5"), ("Content-Type", "text/plain")]),
            ("data", b"hello"),
            ("end", []),
        ],
        True,
    ),
    (
        "content-length-zero",
        head(b"HTTP/1.1 404 Not Found", b"Content-Length: 0"),
        {},
        [("head", 404, "Not Found", "1.1", [("Content-Length", "0")]), ("end", [])],
        True,
    ),
    (
        "chunked-with-extensions-and-trailers",
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked")
        + b"5;name=value;q=\"a \\\" b\"\r\nhello\r\n"
        + b"6 ; ext\r\n world\r\n"
        + b"0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
        {},
        [
            ("head", 200, "OK", "1.1", [("Transfer-Encoding", "chunked")]),
            ("data", b"hello world"),
            ("end", [("Expires", "never"), ("X-Sum", "1")]),
        ],
        True,
    ),
    (
        "chunked-hex-sizes",
        head(b"HTTP/1.1 200 OK", b"transfer-encoding: Chunked")
        + b"A\r\n0123456789\r\n0000a\r\nabcdefghij\r\n0\r\n\r\n",
        {},
        [
            ("head", 200, "OK", "1.1", [("transfer-encoding", "Chunked")]),
            ("data", b"0123456789abcdefghij"),
            ("end", []),
        ],
        True,
    ),
    (
        "read-until-close",
        head(b"HTTP/1.1 200 OK", b"Server: x") + b"all of this\r\n\r\nis body",
        {"eof": True},
        [
            ("head", 200, "OK", "1.1", [("Server", "x")]),
            ("data", b"all of this\r\n\r\nis body"),
            ("end", []),
        ],
        False,
    ),
    (
        "read-until-close-empty",
        head(b"HTTP/1.1 200 OK"),
        {"eof": True},
        [("head", 200, "OK", "1.1", []), ("end", [])],
        False,
    ),
    (
        "head-request-ignores-content-length",
        head(b"HTTP/1.1 200 OK", b"Content-Length: 1000"),
        {"method": "HEAD"},
        [("head", 200, "OK", "1.1", [("Content-Length", "1000")]), ("end", [])],
        True,
    ),
    (
        "head-request-ignores-transfer-encoding",
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked"),
        {"method": "HEAD"},
        [("head", 200, "OK", "1.1", [("Transfer-Encoding", "chunked")]), ("end", [])],
        True,
    ),
    (
        "204-ignores-content-length",
        head(b"HTTP/1.1 204 No Content", b"Content-Length: 10"),
        {},
        [("head", 204, "No Content", "1.1", [("Content-Length", "10")]), ("end", [])],
        True,
    ),
    (
        "304-ignores-transfer-encoding",
        head(b"HTTP/1.1 304 Not Modified", b"Transfer-Encoding: chunked"),
        {},
        [("head", 304, "Not Modified", "1.1", [("Transfer-Encoding", "chunked")]), ("end", [])],
        True,
    ),
    (
        "interim-responses-skipped",
        head(b"HTTP/1.1 100 Continue")
        + head(b"HTTP/1.1 103 Early Hints", b"Link: </s.css>; rel=preload")
        + head(b"HTTP/1.1 200 OK", b"Content-Length: 2")
        + b"ok",
        {},
        [("head", 200, "OK", "1.1", [("Content-Length", "2")]), ("data", b"ok"), ("end", [])],
        True,
    ),
    (
        "obs-fold-becomes-space",
        head(b"HTTP/1.1 200 OK", b"X-Long: first", b"   second ", b"\tthird", b"Content-Length: 0"),
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.1",
                [("X-Long", "first second third"), ("Content-Length", "0")],
            ),
            ("end", []),
        ],
        True,
    ),
    (
        "empty-reason",
        head(b"HTTP/1.1 200 ", b"Content-Length: 0"),
        {},
        [("head", 200, "", "1.1", [("Content-Length", "0")]), ("end", [])],
        True,
    ),
    (
        "missing-space-after-status-code",
        head(b"HTTP/1.1 301", b"Location: /x", b"Content-Length: 0"),
        {},
        [("head", 301, "", "1.1", [("Location", "/x"), ("Content-Length", "0")]), ("end", [])],
        True,
    ),
    (
        "obs-text-and-spaces-in-reason",
        head(b"HTTP/1.1 500 Ori\xc3\xabntatie  probleem\t!", b"Content-Length: 0"),
        {},
        [
            (
                "head",
                500,
                "Ori\xc3\xabntatie  probleem\t!",
                "1.1",
                [("Content-Length", "0")],
            ),
            ("end", []),
        ],
        True,
    ),
    (
        "identical-duplicate-content-length",
        head(b"HTTP/1.1 200 OK", b"Content-Length: 3, 3", b"content-length:3") + b"abc",
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.1",
                [("Content-Length", "3, 3"), ("content-length", "3")],
            ),
            ("data", b"abc"),
            ("end", []),
        ],
        True,
    ),
    (
        "http10-without-keep-alive",
        head(b"HTTP/1.0 200 OK", b"Content-Length: 1") + b"x",
        {},
        [("head", 200, "OK", "1.0", [("Content-Length", "1")]), ("data", b"x"), ("end", [])],
        False,
    ),
    (
        "http10-with-keep-alive",
        head(b"HTTP/1.0 200 OK", b"Connection: Keep-Alive", b"Content-Length: 1") + b"x",
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.0",
                [("Connection", "Keep-Alive"), ("Content-Length", "1")],
            ),
            ("data", b"x"),
            ("end", []),
        ],
        True,
    ),
    (
        "http11-connection-close",
        head(b"HTTP/1.1 200 OK", b"Connection: foo, close", b"Content-Length: 1") + b"x",
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.1",
                [("Connection", "foo, close"), ("Content-Length", "1")],
            ),
            ("data", b"x"),
            ("end", []),
        ],
        False,
    ),
    (
        "http1x-minor-version-treated-as-1.1",
        head(b"HTTP/1.2 200 OK", b"Content-Length: 0"),
        {},
        [("head", 200, "OK", "1.2", [("Content-Length", "0")]), ("end", [])],
        True,
    ),
    (
        "chunked-not-last-reads-until-close",
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked, gzip") + b"5\r\nhello\r\n0\r\n\r\n",
        {"eof": True},
        [
            ("head", 200, "OK", "1.1", [("Transfer-Encoding", "chunked, gzip")]),
            ("data", b"5\r\nhello\r\n0\r\n\r\n"),
            ("end", []),
        ],
        False,
    ),
    (
        "unknown-coding-reads-until-close",
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunkedchunked") + b"raw",
        {"eof": True},
        [
            ("head", 200, "OK", "1.1", [("Transfer-Encoding", "chunkedchunked")]),
            ("data", b"raw"),
            ("end", []),
        ],
        False,
    ),
    (
        "chunked-last-across-fields",
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: gzip", b"Transfer-Encoding: , chunked")
        + b"1\r\nz\r\n0\r\n\r\n",
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.1",
                [("Transfer-Encoding", "gzip"), ("Transfer-Encoding", ", chunked")],
            ),
            ("data", b"z"),
            ("end", []),
        ],
        True,
    ),
    (
        "http10-chunked-is-read-then-closed",
        head(b"HTTP/1.0 200 OK", b"Connection: keep-alive", b"Transfer-Encoding: chunked")
        + b"1\r\nz\r\n0\r\n\r\n",
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.0",
                [("Connection", "keep-alive"), ("Transfer-Encoding", "chunked")],
            ),
            ("data", b"z"),
            ("end", []),
        ],
        False,
    ),
    (
        "values-trimmed-and-empty-kept",
        head(b"HTTP/1.1 200 OK", b"A:  x  y \t", b"B:", b"C:\t", b"Content-Length: 0"),
        {},
        [
            (
                "head",
                200,
                "OK",
                "1.1",
                [("A", "x  y"), ("B", ""), ("C", ""), ("Content-Length", "0")],
            ),
            ("end", []),
        ],
        True,
    ),
    (
        "token-characters-in-names",
        head(b"HTTP/1.1 200 OK", b"X_a!#$%&'*+-.^`|~9: v", b"Content-Length: 0"),
        {},
        [
            ("head", 200, "OK", "1.1", [("X_a!#$%&'*+-.^`|~9", "v"), ("Content-Length", "0")]),
            ("end", []),
        ],
        True,
    ),
    (
        "upgrade-101",
        head(b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Content-Length: 9")
        + b"\x81\x05hello",
        {"upgrade": True},
        [
            (
                "head",
                101,
                "Switching Protocols",
                "1.1",
                [("Upgrade", "websocket"), ("Content-Length", "9")],
            )
        ],
        False,
    ),
    (
        "connect-200-is-a-tunnel",
        head(b"HTTP/1.1 200 Connection established") + b"\x16\x03\x01",
        {"method": "CONNECT"},
        [("head", 200, "Connection established", "1.1", [])],
        False,
    ),
]


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected", "keep_alive"),
    [pytest.param(*case[1:], id=case[0]) for case in VALID],
)
def test_valid_response_at_every_split(
    raw: bytes, kwargs: dict[str, object], expected: list[tuple[object, ...]], keep_alive: bool
) -> None:
    outcome = drive_all_splits(raw, **kwargs)
    assert outcome.error is None
    assert outcome.events == expected
    assert outcome.keep_alive is keep_alive


# -- rejected responses ---------------------------------------------------------

SMALL = ParserLimits(
    max_line_size=40,
    max_header_count=3,
    max_head_size=120,
    max_trailer_size=30,
    max_interim_responses=2,
    max_chunk_size_digits=4,
    max_content_length_digits=4,
)

INVALID: list[tuple[str, bytes, dict[str, object], str]] = [
    # (id, raw, drive kwargs, regex the whole-input error message must match)
    ("not-http", head(b"HTP/1.1 200 OK"), {}, r"does not start with 'HTTP/'"),
    ("rtsp", head(b"RTSP/1.1 200 OK"), {}, r"does not start with 'HTTP/'"),
    ("http-2", head(b"HTTP/2.0 200 OK"), {}, r"unsupported HTTP version '2.0'"),
    ("http-0.9", head(b"HTTP/0.9 200 OK"), {}, r"unsupported HTTP version '0.9'"),
    ("http-major-two-digits", head(b"HTTP/01.1 200 OK"), {}, r"unsupported HTTP version"),
    ("http-minor-two-digits", head(b"HTTP/1.01 200 OK"), {}, r"unsupported HTTP version"),
    ("tab-after-version", head(b"HTTP/1.1\t200 OK"), {}, r"unsupported HTTP version"),
    ("double-space-before-code", head(b"HTTP/1.1  200 OK"), {}, r"not three digits"),
    ("one-digit-code", head(b"HTTP/1.1 2 OK"), {}, r"status code '2' is not three digits"),
    ("four-digit-code", head(b"HTTP/1.1 2000 OK"), {}, r"status code '2000' is not three"),
    ("code-below-100", head(b"HTTP/1.1 099 Odd"), {}, r"status code 099 is below 100"),
    ("control-in-reason", head(b"HTTP/1.1 200 O\x01K"), {}, r"invalid reason phrase"),
    ("leading-crlf", CRLF + head(b"HTTP/1.1 200 OK"), {}, r"expected a status line, got an empty"),
    ("leading-cr", b"\r" + head(b"HTTP/1.1 200 OK"), {}, r"bare CR"),
    ("bare-lf-everywhere", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", {}, r"bare LF"),
    ("bare-lf-in-header", b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n", {}, r"bare LF"),
    ("bare-cr-after-status", b"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", {}, r"bare CR"),
    ("bare-cr-between-headers", b"HTTP/1.1 200 OK\r\nFoo: 1\rBar: 2\r\n\r\n", {}, r"bare CR"),
    ("cr-cr", b"HTTP/1.1 200 OK\r\rContent-Length: 4\r\n\r\nEvil", {}, r"bare CR"),
    ("space-in-name", head(b"HTTP/1.1 200 OK", b"Foo Bar: x"), {}, r"not a token"),
    ("space-before-colon", head(b"HTTP/1.1 200 OK", b"Foo : x"), {}, r"whitespace between"),
    ("tab-before-colon", head(b"HTTP/1.1 200 OK", b"Foo\t: x"), {}, r"whitespace between"),
    ("no-colon", head(b"HTTP/1.1 200 OK", b"Foo"), {}, r"has no colon"),
    ("empty-name", head(b"HTTP/1.1 200 OK", b": x"), {}, r"empty field name"),
    ("bad-name-char", head(b"HTTP/1.1 200 OK", b"F(o): x"), {}, r"'F\(o\)' is not a token"),
    ("non-ascii-name", head(b"HTTP/1.1 200 OK", b"F\xe9: x"), {}, r"not a token"),
    ("nul-in-value", head(b"HTTP/1.1 200 OK", b"Foo: a\x00b"), {}, r"NUL byte"),
    ("ctl-in-value", head(b"HTTP/1.1 200 OK", b"Foo: a\x01b"), {}, r"control character 0x01"),
    ("del-in-value", head(b"HTTP/1.1 200 OK", b"Foo: a\x7fb"), {}, r"control character 0x7f"),
    (
        "first-header-line-folded",
        head(b"HTTP/1.1 200 OK", b" Host: foo"),
        {},
        r"first header line ' Host: foo' starts with whitespace",
    ),
    ("cl-underscore", head(b"HTTP/1.1 200 OK", b"Content-Length: 1_0"), {},
     r"Content-Length value '1_0' is not a decimal number"),
    ("cl-hex", head(b"HTTP/1.1 200 OK", b"Content-Length: 0x10"), {}, r"'0x10' is not a decimal"),
    ("cl-plus", head(b"HTTP/1.1 200 OK", b"Content-Length: +5"), {}, r"'\+5' is not a decimal"),
    ("cl-minus", head(b"HTTP/1.1 200 OK", b"Content-Length: -1"), {}, r"'-1' is not a decimal"),
    ("cl-inner-space", head(b"HTTP/1.1 200 OK", b"Content-Length: 1 0"), {}, r"not a decimal"),
    ("cl-empty", head(b"HTTP/1.1 200 OK", b"Content-Length: "), {}, r"'' is not a decimal"),
    ("cl-empty-member", head(b"HTTP/1.1 200 OK", b"Content-Length: 5,"), {}, r"not a decimal"),
    (
        "cl-unicode-digit",
        head(b"HTTP/1.1 200 OK", "Content-Length: \u0663".encode()),
        {},
        r"not a decimal number",
    ),
    (
        "cl-too-many-digits",
        head(b"HTTP/1.1 200 OK", b"Content-Length: 00000000000000000001"),
        {},
        r"more than 19 digits",
    ),
    ("cl-list-differs", head(b"HTTP/1.1 200 OK", b"Content-Length: 5, 6"), {},
     r"conflicting Content-Length values 5 and 6"),
    (
        "cl-fields-differ",
        head(b"HTTP/1.1 200 OK", b"Content-Length: 5", b"Content-Length: 50"),
        {},
        r"conflicting Content-Length values 5 and 50",
    ),
    (
        "te-and-cl",
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked", b"Content-Length: 5"),
        {},
        r"both Transfer-Encoding and Content-Length",
    ),
    ("te-chunked-twice", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked, chunked"), {},
     r"chunked more than once"),
    ("te-empty", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: "), {}, r"has no coding"),
    ("te-bad-coding", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked;"), {},
     r"Transfer-Encoding 'chunked;' is not a valid coding"),
    ("chunk-size-not-hex", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"zz\r\n",
     {}, r"chunk size b'zz' is not a hexadecimal number"),
    ("chunk-size-0x", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0x5\r\nhello",
     {}, r"invalid character after chunk size"),
    ("chunk-size-plus", head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"+5\r\n",
     {}, r"not a hexadecimal number"),
    ("chunk-size-trailing-space",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"25  \r\n", {},
     r"invalid character after chunk size"),
    ("chunk-size-space-instead-of-semicolon",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2 erfrferferf\r\naa\r\n", {},
     r"invalid character after chunk size"),
    ("chunk-ext-empty",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2;\r\naa\r\n", {},
     r"malformed chunk extension"),
    ("chunk-ext-unbalanced-quote",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b'2;a="b\r\naa\r\n', {},
     r"malformed chunk extension"),
    ("chunk-ext-control",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2;a=\x01\r\naa\r\n", {},
     r"contains a control character"),
    ("chunk-size-bare-lf",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2\naa\r\n", {},
     r"bare LF"),
    ("chunk-data-without-crlf",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2\r\naaXX0\r\n\r\n", {},
     r"chunk data is not followed by CRLF"),
    ("chunk-data-with-lf-only",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2\r\naa\n0\r\n\r\n", {},
     r"chunk data is not followed by CRLF"),
    ("chunk-size-too-many-digits",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"00000000000000001\r\n", {},
     r"more than 16 hex digits"),
    ("trailer-no-colon",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\nbad trailer\r\n\r\n", {},
     r"trailer line 'bad trailer' has no colon"),
    ("trailer-bare-lf",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\nA: b\n\r\n", {},
     r"bare LF"),
    ("trailer-folded-first",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\n A: b\r\n\r\n", {},
     r"first trailer line"),
    ("trailer-nul",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\nA: \x00\r\n\r\n", {},
     r"NUL"),
    ("unrequested-101", head(b"HTTP/1.1 101 Switching Protocols", b"Upgrade: h2c"), {},
     r"101 Switching Protocols but no upgrade was requested"),
    ("data-after-connection-close",
     head(b"HTTP/1.1 200 OK", b"Content-Length: 1", b"Connection: close") + b"xHTTP/1.1 200 OK",
     {}, r"bytes after a response that ended the connection"),
    ("data-after-keep-alive-response",
     head(b"HTTP/1.1 204 No Content") + head(b"HTTP/1.1 200 OK"), {},
     r"bytes after a response"),
    ("eof-before-response", b"", {"eof": True}, r"closed before any response bytes"),
    ("eof-in-head", b"HTTP/1.1 200 OK\r\nA: b", {"eof": True},
     r"closed inside the response head after 21 bytes"),
    ("eof-in-content-length-body",
     head(b"HTTP/1.1 200 OK", b"Content-Length: 10") + b"abc", {"eof": True},
     r"connection closed after 3 of 10 body bytes"),
    ("eof-in-chunk",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"5\r\nab", {"eof": True},
     r"closed inside a chunked body after 2 body bytes"),
    ("eof-before-chunk-crlf",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2\r\nab", {"eof": True},
     r"closed inside a chunked body after 2 body bytes"),
    ("eof-in-chunk-size",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"2\r\nab\r\n1", {"eof": True},
     r"closed inside a chunked body"),
    ("eof-in-trailers",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\nA: b\r\n", {"eof": True},
     r"closed inside the trailer section"),
    # limits (SMALL)
    ("line-too-long", head(b"HTTP/1.1 200 OK", b"X: " + b"a" * 38), {"limits": SMALL},
     r"line exceeds 40 bytes"),
    ("status-line-too-long", head(b"HTTP/1.1 200 " + b"a" * 40), {"limits": SMALL},
     r"line exceeds 40 bytes"),
    ("head-too-big", head(b"HTTP/1.1 200 OK", *[b"X: " + b"a" * 30] * 3), {"limits": SMALL},
     r"response head exceeds 120 bytes"),
    ("too-many-headers", head(b"HTTP/1.1 200 OK", *[b"X: 1"] * 4), {"limits": SMALL},
     r"more than 3 fields"),
    ("too-many-interim", head(b"HTTP/1.1 100 Continue") * 3 + head(b"HTTP/1.1 200 OK"),
     {"limits": SMALL}, r"more than 2 interim \(1xx\) responses"),
    ("trailer-too-big",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\nA: " + b"b" * 30 + CRLF * 2,
     {"limits": SMALL}, r"trailer section exceeds 30 bytes"),
    ("too-many-trailers",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\n" + b"A: b\r\n" * 4 + CRLF,
     {"limits": SMALL}, r"trailer section has more than 3 fields"),
    ("chunk-digits-small-limit",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"10000\r\n", {"limits": SMALL},
     r"more than 4 hex digits"),
    ("cl-digits-small-limit", head(b"HTTP/1.1 200 OK", b"Content-Length: 10000"),
     {"limits": SMALL}, r"more than 4 digits"),
    ("chunk-line-too-long",
     head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"1;a=" + b"b" * 40 + b"\r\n",
     {"limits": SMALL}, r"chunk-size line exceeds 40 bytes"),
]


@pytest.mark.parametrize(
    ("raw", "kwargs", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
def test_invalid_response_at_every_split(
    raw: bytes, kwargs: dict[str, object], message: str
) -> None:
    outcome = drive_all_splits(raw, **kwargs)
    assert outcome.error is not None, outcome.events
    assert re.search(message, outcome.error), outcome.error
    assert outcome.state == "ERROR"
    assert not outcome.keep_alive


def test_specific_messages_hold_whatever_the_split() -> None:
    raw = head(b"HTTP/1.1 200 OK", b"Content-Length: 1_0")
    for i in range(1, len(raw)):
        outcome = drive([raw[:i], raw[i:]])
        assert outcome.error == "Content-Length value '1_0' is not a decimal number"
    big = ParserLimits(max_head_size=65536, max_header_count=100_000)
    raw = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000
    outcome = drive([raw[i : i + 7] for i in range(0, len(raw), 7)], limits=big)
    assert outcome.error == "response head exceeds 65536 bytes"


# -- the cycle of requests and responses -------------------------------------------


@pytest.mark.parametrize(
    ("fields", "method", "status", "encoded"),
    [
        ("Content-Length: 0\r\n", "GET", 200, False),
        ("Content-Encoding: gzip\r\nContent-Length: 0\r\n", "GET", 200, True),
        ("content-ENCODING: br\r\nContent-Length: 0\r\n", "GET", 200, True),
        ("X-Content-Encoding: gzip\r\nContent-Encodings: x\r\nContent-Length: 0\r\n",
         "GET", 200, False),
        ("X-A: 1\r\n  Content-Encoding: folded into X-A\r\nContent-Length: 0\r\n",
         "GET", 200, False),
        ("Content-Encoding: gzip\r\nContent-Length: 10\r\n", "HEAD", 200, True),
        ("Content-Length: 10\r\n", "HEAD", 200, False),
        ("Content-Encoding: gzip\r\n", "GET", 204, True),
        ("Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "GET", 200, True),
    ],
)
def test_head_says_whether_a_content_encoding_field_came(
    fields: str, method: str, status: int, encoded: bool
) -> None:
    parser = ResponseParser()
    parser.start_response(method)
    parser.feed(f"HTTP/1.1 {status} X\r\n{fields}\r\n".encode())
    head = parser.next_event()
    assert isinstance(head, ResponseHead)
    assert head.content_encoded is encoded
    assert ("content-encoding" in head.headers) is encoded


def test_keep_alive_cycle_reuses_the_parser() -> None:
    parser = ResponseParser()
    assert parser.state is ParserState.IDLE
    for i in range(3):
        parser.start_response("GET")
        assert parser.state is ParserState.HEAD
        body = str(i).encode()
        events = parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 1") + body)
        assert [type(e) for e in events] == [ResponseHead, Data, EndOfMessage]
        assert events[1] == Data(body)
        assert parser.keep_alive
        assert parser.state is ParserState.DONE
        assert parser.next_event() is NEED_DATA


def test_next_event_walks_the_states() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    assert parser.next_event() is NEED_DATA
    parser.feed(head(b"HTTP/1.1 200 OK", b"Content-Length: 4") + b"ab")
    event = parser.next_event()
    assert isinstance(event, ResponseHead)
    assert event.headers["content-length"] == "4"
    assert parser.state is ParserState.BODY
    assert parser.next_event() == Data(b"ab")
    assert parser.next_event() is NEED_DATA
    parser.feed(b"cd")
    assert parser.next_event() == Data(b"cd")
    assert parser.next_event() == EndOfMessage(Headers())
    assert parser.state is ParserState.DONE


def test_unsolicited_bytes_while_idle_are_refused() -> None:
    parser = ResponseParser()
    with pytest.raises(RemoteProtocolError, match="3 unsolicited bytes while no response"):
        parser.feed(b"HTT")
    assert parser.state is ParserState.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        parser.next_event()
    with pytest.raises(LocalProtocolError, match="while the parser is ERROR"):
        parser.start_response("GET")


def test_bytes_on_an_idle_pooled_connection_are_refused() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 0"))
    assert parser.keep_alive
    with pytest.raises(RemoteProtocolError, match="unsolicited bytes while no response"):
        parser.feed(head(b"HTTP/1.1 200 OK", b"Content-Length: 0"))
    assert not parser.keep_alive


def test_bytes_after_close_are_refused_not_parsed() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    events = parser.events(head(b"HTTP/1.1 200 OK", b"Connection: close", b"Content-Length: 0"))
    assert isinstance(events[-1], EndOfMessage)
    assert not parser.keep_alive
    assert parser.state is ParserState.CLOSED
    with pytest.raises(RemoteProtocolError, match="after a response that ended the connection"):
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(LocalProtocolError, match="ERROR"):
        parser.start_response("GET")


def test_bytes_behind_a_response_make_it_unreusable_but_keep_it_intact() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    extra = b"HTTP/1.1 200 OK\r\n"
    events = parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 2") + b"ok" + extra)
    assert events[1:] == [Data(b"ok"), EndOfMessage(Headers())]
    assert not parser.keep_alive
    assert parser.trailing_data == extra
    with pytest.raises(LocalProtocolError, match="while the parser is CLOSED"):
        parser.start_response("GET")


def test_start_response_refused_mid_response() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    with pytest.raises(LocalProtocolError, match="HEAD"):
        parser.start_response("GET")
    parser.feed(head(b"HTTP/1.1 200 OK", b"Content-Length: 5"))
    parser.next_event()
    with pytest.raises(LocalProtocolError, match="BODY"):
        parser.start_response("GET")


def test_eof_after_keep_alive_response_closes_quietly() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 0"))
    parser.feed_eof()
    assert parser.next_event() is NEED_DATA
    assert parser.state is ParserState.CLOSED
    assert not parser.keep_alive
    with pytest.raises(LocalProtocolError, match="while the parser is CLOSED"):
        parser.start_response("GET")


def test_upgrade_hands_over_the_rest() -> None:
    parser = ResponseParser()
    parser.start_response("GET", upgrade_requested=True)
    events = parser.events(head(b"HTTP/1.1 101 Switching Protocols", b"Upgrade: x") + b"abc")
    assert len(events) == 1 and isinstance(events[0], ResponseHead)
    assert parser.state is ParserState.UPGRADED
    assert not parser.keep_alive
    parser.feed(b"def")
    assert parser.trailing_data == b"abcdef"
    assert parser.next_event() is NEED_DATA


def test_upgrade_requested_but_server_declines() -> None:
    parser = ResponseParser()
    parser.start_response("GET", upgrade_requested=True)
    events = parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 1") + b"x")
    assert [type(e) for e in events] == [ResponseHead, Data, EndOfMessage]
    assert parser.keep_alive


def test_large_body_chunks_pass_through_without_copies() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    size = 3 * 1024 * 1024
    parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: %d" % size))
    piece = b"x" * (1024 * 1024)
    for _ in range(3):
        events = parser.events(piece)
        assert events[0].data is piece  # type: ignore[union-attr]
    assert isinstance(events[-1], EndOfMessage)


def test_direct_body_bytes_are_offered_only_for_an_unbuffered_length_body() -> None:
    parser = ResponseParser()
    assert parser.direct_body_bytes == 0  # idle
    parser.start_response("GET")
    assert parser.direct_body_bytes == 0  # head pending
    parser.feed(head(b"HTTP/1.1 200 OK", b"Content-Length: 10") + b"abc")
    assert isinstance(parser.next_event(), ResponseHead)
    assert parser.direct_body_bytes == 0  # "abc" is still buffered in the parser
    assert parser.next_event() == Data(b"abc")
    assert parser.direct_body_bytes == 7
    assert parser.consume_direct_body(3) is None
    assert parser.direct_body_bytes == 4
    with pytest.raises(LocalProtocolError, match=r"cannot consume 5 .*\(4 may be\)"):
        parser.consume_direct_body(5)
    with pytest.raises(LocalProtocolError, match=r"cannot consume 0 .*\(4 may be\)"):
        parser.consume_direct_body(0)
    end = parser.consume_direct_body(4)
    assert isinstance(end, EndOfMessage)
    assert parser.state is ParserState.DONE and parser.keep_alive
    assert parser.direct_body_bytes == 0
    # The parser is ready for the next response, as after a fed body.
    parser.start_response("GET")
    assert [type(e) for e in parser.events(head(b"HTTP/1.1 204 No Content"))] == [
        ResponseHead,
        EndOfMessage,
    ]


@pytest.mark.parametrize(
    "raw",
    [
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked"),
        head(b"HTTP/1.1 200 OK"),  # until close
        head(b"HTTP/1.1 204 No Content"),
    ],
)
def test_no_direct_body_without_content_length(raw: bytes) -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(raw)
    assert parser.direct_body_bytes == 0
    with pytest.raises(LocalProtocolError, match=r"cannot consume 1 .*\(0 may be\)"):
        parser.consume_direct_body(1)


def test_direct_body_after_eof_is_refused_and_eof_names_the_count() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(head(b"HTTP/1.1 200 OK", b"Content-Length: 10"))
    parser.consume_direct_body(6)
    parser.feed_eof()
    assert parser.direct_body_bytes == 0
    with pytest.raises(RemoteProtocolError, match="6 of 10"):
        parser.next_event()


def test_a_read_of_many_chunks_is_one_data_event() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    chunks = b"".join(b"%x\r\n%s\r\n" % (n, bytes([65 + n]) * n) for n in range(1, 17))
    events = parser.events(head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + chunks)
    assert [type(e) for e in events] == [ResponseHead, Data]
    assert events[1] == Data(b"".join(bytes([65 + n]) * n for n in range(1, 17)))
    # An extension, then the last chunk with a trailer, go the step-by-step way.
    events = parser.events(b"3;name=value\r\nxyz\r\n0\r\nTrailer: t\r\n\r\n")
    assert events[0] == Data(b"xyz")
    assert isinstance(events[-1], EndOfMessage)
    assert events[-1].trailers.items() == [("Trailer", "t")]


def test_chunks_before_a_malformed_one_are_delivered_then_it_fails() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.feed(head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked"))
    parser.feed(b"2\r\nab\r\n2\r\ncd\r\nzz\r\n")
    assert isinstance(parser.next_event(), ResponseHead)
    assert parser.next_event() == Data(b"abcd")
    with pytest.raises(RemoteProtocolError, match="not a hexadecimal number"):
        parser.next_event()


def test_chunked_data_passes_through_without_copies() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    parser.events(head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"100000\r\n")
    piece = b"y" * 0x80000
    assert parser.events(piece)[0].data is piece  # type: ignore[union-attr]
    assert parser.events(piece)[0].data is piece  # type: ignore[union-attr]


def test_byte_at_a_time_large_head_is_accepted() -> None:
    # Near the 64 KiB limit, one byte per read: every early check runs on every
    # byte without rejecting a valid head (benchmarks/http_parser.py times it).
    raw = head(b"HTTP/1.1 200 OK", *[b"X-Field-%03d: %s" % (i, b"v" * 600) for i in range(99)])
    assert len(raw) < 65536
    parser = ResponseParser()
    parser.start_response("GET")
    events = []
    for i in range(len(raw)):
        events += parser.events(raw[i : i + 1])
    assert len(events) == 1
    assert len(events[0].headers) == 99  # type: ignore[union-attr]


def test_limits_are_validated() -> None:
    with pytest.raises(UsageError, match="max_line_size"):
        ParserLimits(max_line_size=0)
    with pytest.raises(UsageError, match="max_interim_responses"):
        ParserLimits(max_interim_responses=-1)
    assert ParserLimits(max_interim_responses=0).max_interim_responses == 0
    assert ResponseParser().limits == ParserLimits()


def test_interim_cap_zero_rejects_any_1xx() -> None:
    outcome = drive(
        [head(b"HTTP/1.1 100 Continue") + head(b"HTTP/1.1 200 OK")],
        limits=ParserLimits(max_interim_responses=0),
    )
    assert outcome.error is not None and "interim" in outcome.error


# -- properties -----------------------------------------------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-!#$%&'*+.^_`|~", min_size=1,
                 max_size=12) | st.sampled_from(
    ["Content-Encoding", "content-ENCODING", "Content-Encodings", "X-Content-Encoding"]
)
_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF,
                                        blacklist_characters="\x7f"), max_size=20).map(
    lambda s: s.replace("\x85", "x")
)
_fields = st.lists(st.tuples(_token, _value), max_size=6).map(
    lambda fs: [
        (n, v) for n, v in fs
        if n.lower() not in ("content-length", "transfer-encoding", "connection")
    ]
)


@st.composite
def valid_responses(draw: st.DrawFn) -> tuple[bytes, bool, list[tuple[object, ...]]]:
    status = draw(st.sampled_from([200, 201, 203, 206, 301, 404, 500, 599]))
    reason = draw(st.sampled_from(["OK", "", "Some Reason", "caf\xe9"]))
    fields = draw(_fields)
    body = draw(st.binary(max_size=60))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    interim = draw(st.integers(0, 2))
    lines = [f"{n}: {v}" for n, v in fields]
    items = list(fields)
    encoded = body
    trailers: list[tuple[str, str]] = []
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        items.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        items.append(("Transfer-Encoding", "chunked"))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
        trailers = draw(_fields)
        encoded += b"0\r\n" + b"".join(
            f"{n}: {v}\r\n".encode("latin-1") for n, v in trailers
        ) + b"\r\n"
    text = f"HTTP/1.1 {status} {reason}\r\n" + "".join(x + "\r\n" for x in lines) + "\r\n"
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" * interim + text.encode("latin-1") + encoded
    expected: list[tuple[object, ...]] = [("head", status, reason, "1.1", items)]
    if body:
        expected.append(("data", body))
    expected.append(("end", trailers))
    return raw, framing == "close", expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_responses(), st.lists(st.integers(0, 400), max_size=6))
def test_any_split_of_a_valid_response_gives_the_same_events(
    case: tuple[bytes, bool, list[tuple[object, ...]]], cuts: list[int]
) -> None:
    raw, eof, expected = case
    points = sorted({c % (len(raw) + 1) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    outcome = drive(chunks, eof=eof)
    assert outcome.error is None, outcome.error
    assert outcome.events == expected
    assert drive([raw], eof=eof).events == expected
    assert drive(chunks, eof=eof, use_events=True).events == expected
    assert drive([raw], eof=eof, use_events=True).events == expected
    assert drive(chunks, eof=eof, use_events=True, use_views=True).events == expected


def _feed_everything(raw: bytes, cuts: list[int], method: str) -> None:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    parser = ResponseParser(SMALL if len(cuts) % 2 else None)
    parser.start_response(method)
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while parser.next_event() is not NEED_DATA:
                pass
        parser.feed_eof()
        while parser.next_event() is not NEED_DATA:
            pass
    except RemoteProtocolError:
        pass  # the only exception allowed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 300), max_size=5),
       st.sampled_from(["GET", "HEAD"]))
def test_garbage_raises_only_remote_protocol_error(
    raw: bytes, cuts: list[int], method: str
) -> None:
    _feed_everything(b"HTTP/1.1 " + raw if len(raw) % 3 == 0 else raw, cuts, method)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid_responses(),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["insert", "delete", "replace"]),
                  st.sampled_from(b"\r\n\x00 \t:;0aZ\"\\\xff9-,")),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(0, 400), max_size=4),
)
def test_mutated_responses_raise_only_remote_protocol_error(
    case: tuple[bytes, bool, list[tuple[object, ...]]],
    mutations: list[tuple[int, str, int]],
    cuts: list[int],
) -> None:
    data = bytearray(case[0])
    for where, how, byte in mutations:
        i = where % (len(data) + 1)
        if how == "insert":
            data[i:i] = bytes([byte])
        elif i < len(data):
            if how == "delete":
                del data[i]
            else:
                data[i] = byte
    _feed_everything(bytes(data), cuts, "GET")


# -- limits enforced before the head is complete -----------------------------------


@pytest.mark.parametrize(
    ("partial", "message"),
    [
        (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 4, r"header section has more than 3 fields"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 60, r"line exceeds 40 bytes"),
        (b"HTTP/1.1 200 OK\r\n" + (b"X: " + b"a" * 35 + b"\r\n") * 3, r"head exceeds 120 bytes"),
        (b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n", r"not a token"),
        (b"HTTP/1.1 200 OK\r\nA: 1\nB", r"bare LF"),
        (b"HTTP/1.1 200 OK\r\nA: 1\rB", r"bare CR"),
        (b"HTTP/1.1 200 OK\r\n Folded", r"starts with whitespace"),
        (b"HTTX", r"does not start with 'HTTP/'"),
        (b"HTTP/1.1 20 OK\r\n", r"not three digits"),
    ],
)
def test_unfinished_head_is_rejected_as_soon_as_it_cannot_be_valid(
    partial: bytes, message: str
) -> None:
    for step in (1, 3, len(partial)):
        outcome = drive([partial[i : i + step] for i in range(0, len(partial), step)],
                        limits=SMALL)
        assert outcome.error is not None, step
        assert re.search(message, outcome.error), outcome.error


def test_unfinished_trailers_are_limited_too() -> None:
    body = head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked") + b"0\r\n"
    outcome = drive([body, b"A: 1\r\n" * 4], limits=SMALL)
    assert outcome.error == "trailer section has more than 3 fields"
    outcome = drive([body, b"A: " + b"x" * 30], limits=SMALL)
    assert outcome.error == "trailer section exceeds 30 bytes"


def test_folded_lines_do_not_count_as_fields() -> None:
    raw = head(b"HTTP/1.1 200 OK", b"A: 1", b" 2", b" 3", b"B: 4", b"Content-Length: 0")
    outcome = drive_all_splits(raw, limits=SMALL)
    assert outcome.error is None
    assert outcome.events[0][4] == [("A", "1 2 3"), ("B", "4"), ("Content-Length", "0")]


def test_feed_accepts_other_buffers_without_keeping_them() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    buffer = bytearray(head(b"HTTP/1.1 200 OK", b"Content-Length: 3") + b"abc")
    events = parser.events(buffer)
    buffer[:] = b"x" * len(buffer)
    assert events[1] == Data(b"abc")
    assert type(events[1].data) is bytes  # type: ignore[union-attr]
    parser.start_response("GET")
    events = parser.events(memoryview(head(b"HTTP/1.1 204 No Content")))
    assert events[0].status == 204  # type: ignore[union-attr]


def test_parsed_headers_behave_like_any_headers() -> None:
    parser = ResponseParser()
    parser.start_response("GET")
    raw = head(b"HTTP/1.1 200 OK", b"Set-Cookie: a=1", b"set-cookie: b=2", b"Content-Length: 0")
    response = parser.events(raw)[0]
    assert isinstance(response, ResponseHead)
    headers = response.headers
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    headers.add("X-New", "1")
    headers["set-cookie"] = "c=3"
    del headers["content-length"]
    assert headers.items() == [("set-cookie", "c=3"), ("X-New", "1")]
    assert headers == Headers({"Set-Cookie": "c=3", "x-new": "1"})


# -- over real loopback sockets -----------------------------------------------------


class _ParsingClient(asyncio.Protocol):
    """A minimal client connection: sends requests and feeds a parser what arrives."""

    def __init__(self) -> None:
        self.parser = ResponseParser()
        self.events: list[ResponseHead | Data | EndOfMessage] = []
        self.error: RemoteProtocolError | None = None
        self.transport: asyncio.Transport | None = None
        self.changed = asyncio.Event()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(self, method: str, target: str) -> None:
        assert self.transport is not None
        self.events.clear()
        self.parser.start_response(method)
        self.transport.write(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())

    def _take(self, feed: Callable[[], list[ResponseHead | Data | EndOfMessage]]) -> None:
        try:
            self.events += feed()
        except RemoteProtocolError as exc:
            self.error = exc
            assert self.transport is not None
            self.transport.close()
        self.changed.set()

    def data_received(self, data: bytes) -> None:
        self._take(lambda: self.parser.events(data))

    def eof_received(self) -> bool | None:
        def drain() -> list[ResponseHead | Data | EndOfMessage]:
            self.parser.feed_eof()
            out: list[ResponseHead | Data | EndOfMessage] = []
            while self.parser.state is not ParserState.CLOSED:
                event = self.parser.next_event()
                if event is NEED_DATA:
                    break
                out.append(event)
            return out

        self._take(drain)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        self.changed.set()

    async def response(self) -> tuple[ResponseHead, bytes, EndOfMessage]:
        while not (self.events and isinstance(self.events[-1], EndOfMessage)):
            assert self.error is None, self.error
            assert not self.lost.is_set(), "connection lost before the response ended"
            self.changed.clear()
            await self.changed.wait()
        head, *data, end = self.events
        assert isinstance(head, ResponseHead) and isinstance(end, EndOfMessage)
        return head, b"".join(d.data for d in data if isinstance(d, Data)), end


async def test_responses_of_the_stdlib_server_over_loopback() -> None:
    loop = asyncio.get_running_loop()
    with HTTPServer() as server:
        transport, client = await loop.create_connection(
            _ParsingClient, "127.0.0.1", server.port
        )
        try:
            client.request("GET", "/bytes/100000")
            head_, body, _ = await client.response()
            assert head_.status == 200 and body == pattern(100000)
            assert client.parser.keep_alive
            client.request("GET", "/chunked/50000?chunk=777")
            head_, body, _ = await client.response()
            assert head_.headers["transfer-encoding"] == "chunked"
            assert body == pattern(50000)
            client.request("HEAD", "/bytes/10")
            head_, body, _ = await client.response()
            assert head_.headers["content-length"] == "10" and body == b""
            client.request("GET", "/headers")
            head_, body, _ = await client.response()
            assert head_.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
            client.request("GET", "/close")
            head_, body, _ = await client.response()
            assert body == b"closing" and not client.parser.keep_alive
        finally:
            transport.close()
            await client.lost.wait()


async def test_response_trickled_byte_by_byte_over_loopback() -> None:
    raw = (
        head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked", b"X-Long: " + b"v" * 300)
        + b"3;x=y\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader, writer)
        for i in range(len(raw) - 1):
            writer.write(raw[i : i + 1])
            await writer.drain()
        await server.send(writer, raw[-1:])
        await reader.read()  # until the client closes

    loop = asyncio.get_running_loop()
    async with RawServer(handler) as server:
        transport, client = await loop.create_connection(
            _ParsingClient, "127.0.0.1", server.port
        )
        try:
            client.request("GET", "/")
            head_, body, end = await client.response()
            assert head_.headers["x-long"] == "v" * 300
            assert body == b"abc" and end.trailers == {"X-Trailer": "t"}
        finally:
            transport.close()
            await client.lost.wait()


async def test_malformed_response_over_loopback_is_refused() -> None:
    raw = head(b"HTTP/1.1 200 OK", b"Content-Length: 5", b"Content-Length: 6") + b"hello!"
    loop = asyncio.get_running_loop()
    async with RawServer(responses=[raw]) as server:
        transport, client = await loop.create_connection(
            _ParsingClient, "127.0.0.1", server.port
        )
        client.request("GET", "/")
        await client.lost.wait()
        assert client.error is not None
        assert str(client.error) == "conflicting Content-Length values 5 and 6"
        assert client.parser.state is ParserState.ERROR
        transport.close()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid_responses(),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["insert", "delete", "replace"]),
                  st.sampled_from(b"\r\n\x00 \t:;0aZ\"\\\xff9-,")),
        max_size=3,
    ),
    st.lists(st.integers(0, 400), min_size=1, max_size=6),
    st.sampled_from(["GET", "HEAD"]),
)
def test_verdict_on_mutated_responses_does_not_depend_on_the_split(
    case: tuple[bytes, bool, list[tuple[object, ...]]],
    mutations: list[tuple[int, str, int]],
    cuts: list[int],
    method: str,
) -> None:
    data = bytearray(case[0])
    for where, how, byte in mutations:
        i = where % (len(data) + 1)
        if how == "insert":
            data[i:i] = bytes([byte])
        elif i < len(data):
            if how == "delete":
                del data[i]
            else:
                data[i] = byte
    raw = bytes(data)
    points = sorted({c % (len(raw) + 1) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    limits = SMALL if len(cuts) % 2 else None
    for eof in (False, True):
        whole = drive([raw], method=method, eof=eof, limits=limits)
        split = drive(chunks, method=method, eof=eof, limits=limits, use_events=eof)
        assert (whole.error is None) == (split.error is None), (whole.error, split.error)
        if not eof:
            assert whole.heads == split.heads
        if whole.error is None:
            assert whole.events == split.events
            assert whole.keep_alive == split.keep_alive
            assert whole.state == split.state


_framing_name = st.sampled_from(
    ["Connection", "connection", "CONNECTION", "Transfer-Encoding", "transfer-ENCODING",
     "Content-Length", "content-length", "X-Connection", "Connection-X", "Server"]
)
_ows = st.sampled_from(["", " ", "\t", "  \t"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_framing_name, _ows, _value, _ows), max_size=6))
def test_framing_values_found_by_one_scan_match_the_parsed_fields(
    fields: list[tuple[str, str, str, str]],
) -> None:
    # The one-scan lookup used without obs-fold must find exactly the values
    # the field parser gives for that name, in order, whatever the case and OWS.
    from asyncnet._http._readers import (
        CONNECTION_VALUES,
        CONTENT_LENGTH_VALUES,
        TRANSFER_ENCODING_VALUES,
        field_values,
        parse_fields,
    )

    block = "".join(f"{n}:{a}{v}{b}\r\n" for n, a, v, b in fields)
    text = "HTTP/1.1 200 OK\r\n" + block + "\r\n"
    items, folded = parse_fields(block, ParserLimits(), "header")
    assert not folded
    for name, found in [
        ("connection", CONNECTION_VALUES),
        ("transfer-encoding", TRANSFER_ENCODING_VALUES),
        ("content-length", CONTENT_LENGTH_VALUES),
    ]:
        scanned = field_values(name, found, text, items, False)
        assert scanned == field_values(name, found, text, items, True)
        assert scanned == [v.strip(" \t") for n, _, v, _ in fields if n.lower() == name]


def test_module_level_modes_are_the_enum_members_of_the_same_name() -> None:
    # The parser's hot paths use these names; a reordered Mode must not shift them.
    from asyncnet._http import _state

    for mode in _state.Mode:
        assert getattr(_state, mode.name) is mode
    assert _state.CHUNK_MODES == (_state.CHUNK_SIZE, _state.CHUNK_DATA, _state.CHUNK_CRLF)
