"""The HTTP client against exact bytes on real loopback sockets.

A scripted server answers ``/case`` with the raw bytes of one table entry and
``/ok`` (or ``/hold``) with a plain keep-alive response. For every parser rule
of RFC 9112 the table holds bytes that break it, or bytes that are tricky but
valid, and what :class:`~asyncnet.HTTPClient` must do with them:

* malformed: :class:`~asyncnet.RemoteProtocolError` (or ``ReadError`` for a
  reset), the connection closed by the client (the server sees it go) and never
  reused (the next request opens a new one), and requests running at the same
  time on other connections of the same client finish untouched;
* accepted: the status, body, headers and trailers seen by the caller, and
  whether the connection is reused for the next request.

The other tests check that a caller's bad input is refused before a byte is
sent, content decoding through the client, and that a slow streaming consumer
keeps the client's memory bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import re
import socket
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

import asyncnet
from asyncnet import HTTPClient, Limits, Timeout
from tests.support.servers import RawServer, pattern, response

OK = response(200, b"ok")
# Short enough that a client waiting for bytes that never come fails quickly,
# long enough never to fire on a loaded machine while bytes are flowing.
TIMEOUT = Timeout(connect=10, read=10, write=10, pool=10)
MiB = 1024 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- the table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One scripted reply to ``/case`` and what the client must make of it."""

    id: str
    raw: bytes
    #: For a malformed reply: a regex the RemoteProtocolError's message must match.
    error: str | None = None
    #: The exception class expected instead of RemoteProtocolError.
    error_type: type[Exception] = asyncnet.RemoteProtocolError
    status: int = 200
    body: bytes = b""
    #: Header fields (name, value as the caller sees it) the response must carry.
    headers: tuple[tuple[str, str], ...] = ()
    trailers: tuple[tuple[str, str], ...] = ()
    #: For an accepted reply: the next request reuses the connection.
    reusable: bool = True
    method: str = "GET"
    #: After the reply: "eof" half-closes, "reset" sends a TCP RST.
    then: str | None = None
    #: Send the reply in writes of this many bytes, yielding between them.
    piece: int | None = None


H = b"HTTP/1.1 200 OK\r\n"
CL0 = b"Content-Length: 0\r\n\r\n"
CHUNKED = H + b"Transfer-Encoding: chunked\r\n\r\n"


def bad(id: str, raw: bytes, error: str, **kw: object) -> Case:
    return Case(id, raw, error=error, **kw)  # type: ignore[arg-type]


def good(id: str, raw: bytes, **kw: object) -> Case:
    return Case(id, raw, **kw)  # type: ignore[arg-type]


CLOSE_OK = H + b"Connection: close\r\nContent-Length: 2\r\n\r\nok"


def _fields(n: int, size: int) -> bytes:
    return b"".join(b"X-F%d: %s\r\n" % (i, b"v" * size) for i in range(n))


MALFORMED = [
    # Status line: HTTP/1.x SP 3DIGIT SP reason.
    bad("status-http2", b"HTTP/2.0 200 OK\r\n" + CL0, "version|status line"),
    bad("status-lowercase-http", b"http/1.1 200 OK\r\n" + CL0, "status line"),
    bad("status-two-digits", b"HTTP/1.1 20 OK\r\n" + CL0, "status"),
    bad("status-four-digits", b"HTTP/1.1 2000 OK\r\n" + CL0, "status"),
    bad("status-letters", b"HTTP/1.1 2x0 OK\r\n" + CL0, "status"),
    bad("status-double-space", b"HTTP/1.1  200 OK\r\n" + CL0, "status"),
    bad("status-icy", b"ICY 200 OK\r\n" + CL0, "status line"),
    bad("status-ctl-in-reason", b"HTTP/1.1 200 O\x01K\r\n" + CL0, "reason|status|control"),
    bad("status-bare-lf", b"HTTP/1.1 200 OK\n" + CL0, "bare LF"),
    bad("not-http-at-all", b"<html>hello</html>\r\n\r\n", "status line"),
    # Field names are tokens, with no whitespace before the colon.
    bad("name-with-space", H + b"Bad Header: x\r\n" + CL0, "Bad Header|token|name"),
    bad("name-with-paren", H + b"X(y): 1\r\n" + CL0, "token|name"),
    bad("name-obs-text", H + b"X\xff: 1\r\n" + CL0, "token|name"),
    bad("name-empty", H + b": 1\r\n" + CL0, "empty field name"),
    bad("no-colon", H + b"Xa\r\n" + CL0, "no colon"),
    bad("space-before-colon", H + b"Content-Length : 0\r\n\r\n", "whitespace|token|name"),
    bad("tab-before-colon", H + b"X-A\t: 1\r\n" + CL0, "whitespace|token|name"),
    bad("fold-on-first-line", H + b" X: a\r\n" + CL0, "whitespace"),
    # CR, LF, NUL (and other controls) in a value; bare CR anywhere.
    bad("cr-in-value", H + b"X-A: a\rb\r\n" + CL0, "CR|control"),
    bad("lf-in-value", H + b"X-A: a\nb: c\r\n" + CL0, "bare LF"),
    bad("nul-in-value", H + b"X-A: a\x00b\r\n" + CL0, "NUL|control|0x00"),
    bad("del-in-value", H + b"X-A: a\x7fb\r\n" + CL0, "control"),
    bad("bare-cr-line-end", b"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", "CR|control"),
    bad("bare-cr-header-end", H + b"X-A: 1\r" + CL0, "CR|control"),
    # Content-Length: ASCII digits only, a bounded count of them, one value.
    bad("cl-hex", H + b"Content-Length: 0x2\r\n\r\nok", "Content-Length"),
    bad("cl-underscore", H + b"Content-Length: 1_0\r\n\r\n0123456789", "Content-Length"),
    bad("cl-plus", H + b"Content-Length: +2\r\n\r\nok", "Content-Length"),
    bad("cl-minus", H + b"Content-Length: -1\r\n\r\n", "Content-Length"),
    bad("cl-inner-space", H + b"Content-Length: 1 0\r\n\r\n0123456789", "Content-Length"),
    bad("cl-empty", H + b"Content-Length: \r\n\r\n", "Content-Length"),
    bad("cl-arabic-digit", H + b"Content-Length: \xd9\xa2\r\n\r\nok", "Content-Length"),
    bad("cl-superscript", H + b"Content-Length: \xb2\r\n\r\nok", "Content-Length"),
    bad("cl-fullwidth", H + b"Content-Length: \xef\xbc\x92\r\n\r\nok", "Content-Length"),
    bad("cl-20-digits", H + b"Content-Length: 1" + b"0" * 19 + b"\r\n\r\n", "Content-Length"),
    bad("cl-differing-dup", H + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
        "Content-Length"),
    bad("cl-differing-list", H + b"Content-Length: 2, 3\r\n\r\nok!", "Content-Length"),
    bad("te-and-cl", H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding"),
    bad("te-chunked-twice", H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        "chunked"),
    # Chunked framing: hex sizes, bounded, valid extensions, CRLF after data.
    bad("chunk-size-letters", CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-size-0x", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-size-negative", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-size-leading-space", CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-size-trailing-space", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-size-empty", CHUNKED + b"\r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-size-17-digits", CHUNKED + b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n", "chunk"),
    bad("chunk-ext-no-name", CHUNKED + b"5;=x\r\nhello\r\n0\r\n\r\n", "chunk|extension"),
    bad("chunk-ext-space-in-name", CHUNKED + b"5;na me\r\nhello\r\n0\r\n\r\n",
        "chunk|extension"),
    bad("chunk-ext-ctl", CHUNKED + b"5;a=\x01\r\nhello\r\n0\r\n\r\n", "chunk|extension"),
    bad("chunk-ext-open-quote", CHUNKED + b'5;a="x\r\nhello\r\n0\r\n\r\n', "chunk|extension"),
    bad("chunk-missing-crlf", CHUNKED + b"5\r\nhelloXX0\r\n\r\n", "chunk|CRLF"),
    bad("chunk-longer-than-size", CHUNKED + b"3\r\nhello\r\n0\r\n\r\n", "chunk|CRLF"),
    bad("chunk-size-bare-lf", CHUNKED + b"5\nhello\r\n0\r\n\r\n", "bare LF|chunk"),
    # Trailers: the same rules, their own size limit.
    bad("trailer-bad-name", CHUNKED + b"0\r\nBad Trailer: 1\r\n\r\n", "token|name|Bad"),
    bad("trailer-cr-in-value", CHUNKED + b"0\r\nX-T: a\rb\r\n\r\n", "CR|control"),
    bad("trailer-oversized", CHUNKED + b"0\r\n" + _fields(20, 1000) + b"\r\n", "trailer"),
    # Interim responses and upgrades.
    bad("too-many-interim", b"HTTP/1.1 100 Continue\r\n\r\n" * 11 + H + CL0, "interim|1xx"),
    bad("unrequested-101", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\n", "101"),
    # Limits on the head, also when it trickles in.
    bad("line-too-long", H + b"X-Long: " + b"a" * 9000 + b"\r\n" + CL0, "line|long|limit"),
    bad("too-many-fields", H + _fields(101, 1) + CL0, "fields|headers|many"),
    bad("head-too-large-in-small-writes", H + _fields(70, 1000) + CL0,
        "head|large|limit", piece=512),
    bad("head-never-ends-in-small-writes", H + _fields(200, 400),
        "head|large|limit|many", piece=256),
    # The peer stops or breaks in the middle.
    bad("truncated-body", H + b"Content-Length: 100\r\n\r\n" + b"x" * 10, r"\b10\b.*\b100\b",
        then="eof"),
    bad("truncated-chunk", CHUNKED + b"a\r\nhello", "chunk|complete|closed", then="eof"),
    bad("truncated-head", H + b"Content-Length: 5\r\n", "head|closed|complete", then="eof"),
    bad("reset-mid-body", H + b"Content-Length: 100\r\n\r\n" + b"x" * 10, "lost|reset",
        then="reset", error_type=asyncnet.ReadError),
]

ACCEPTED = [
    good("reason-empty", b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok", body=b"ok"),
    good("reason-omitted", b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", body=b"ok"),
    good("reason-obs-text", b"HTTP/1.1 200 \xe9t\xe9 fine\r\nContent-Length: 2\r\n\r\nok",
         body=b"ok"),
    good("http-1.0-keep-alive", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
         b"Content-Length: 2\r\n\r\nok", body=b"ok"),
    good("http-1.0-until-close", b"HTTP/1.0 200 OK\r\n\r\nuntil close", body=b"until close",
         reusable=False, then="eof"),
    good("obs-fold-becomes-space", H + b"X-Folded: a\r\n   b\r\n\tc\r\n" + CL0,
         headers=(("x-folded", "a b c"),)),
    good("tab-inside-value", H + b"X-A: a\tb\r\n" + CL0, headers=(("X-A", "a\tb"),)),
    good("value-ows-stripped", H + b"X-A: \t a b \t\r\n" + CL0, headers=(("X-A", "a b"),)),
    good("value-obs-text", H + b"X-A: caf\xe9\r\n" + CL0, headers=(("X-A", "caf\xe9"),)),
    good("duplicate-fields-kept", H + b"X-D: 1\r\nx-d: 2\r\n" + CL0, headers=(("X-D", "1, 2"),)),
    good("cl-ows", H + b"Content-Length: \t 2 \t\r\n\r\nok", body=b"ok"),
    good("cl-leading-zeros", H + b"Content-Length: 0002\r\n\r\nok", body=b"ok"),
    good("cl-same-duplicates", H + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok",
         body=b"ok"),
    good("cl-same-list", H + b"Content-Length: 2, 2\r\n\r\nok", body=b"ok"),
    good("chunked-not-last-reads-until-close", H + b"Transfer-Encoding: chunked, gzip\r\n\r\n"
         b"5\r\nhello\r\n0\r\n\r\n", body=b"5\r\nhello\r\n0\r\n\r\n", reusable=False,
         then="eof"),
    good("unknown-te-reads-until-close", H + b"Transfer-Encoding: identity\r\n\r\nraw",
         body=b"raw", reusable=False, then="eof"),
    good("chunked-sizes-and-extensions", CHUNKED + b"A\r\n0123456789\r\n"
         b"5 ; a=b ;c=\"q\\\"uoted\";d\r\nhello\r\n00\r\n\r\n", body=b"0123456789hello"),
    good("chunked-case-insensitive", H + b"Transfer-Encoding: Chunked\r\n\r\n"
         b"2\r\nok\r\n0\r\n\r\n", body=b"ok"),
    good("trailers-kept-apart", H + b"Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
         b"5\r\nhello\r\n0\r\nX-Sum: 42\r\nX-Other: a\r\n\r\n", body=b"hello",
         trailers=(("x-sum", "42"), ("X-Other", "a"))),
    good("head-with-length", H + b"Content-Length: 1000\r\n\r\n", method="HEAD",
         headers=(("Content-Length", "1000"),)),
    good("head-with-chunked", CHUNKED, method="HEAD"),
    good("204-with-length", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
         status=204),
    good("304-with-length", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
         status=304),
    good("304-with-chunked", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
         status=304),
    good("interim-skipped", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
         b"Link: </a.css>; rel=preload\r\n\r\n" + H + b"Content-Length: 2\r\n\r\nok",
         body=b"ok"),
    good("ten-interim-allowed", b"HTTP/1.1 102 Processing\r\n\r\n" * 10 + H + CL0),
    good("data-after-connection-close", H + b"Connection: close\r\nContent-Length: 2\r\n\r\nok"
         b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnever", body=b"ok", reusable=False),
    good("connection-close-then-eof", H + b"Connection: close\r\nContent-Length: 2\r\n\r\nok",
         body=b"ok", reusable=False, then="eof"),
    good("http-1.0-keep-alive-without-length", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
         b"\r\nuntil close", body=b"until close", reusable=False, then="eof"),
    good("interim-and-trailers-byte-by-byte", b"HTTP/1.1 100 Continue\r\n\r\n" + CHUNKED
         + b"5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", body=b"hello", trailers=(("X-T", "1"),),
         piece=1),
    good("data-after-connection-close-in-a-later-write", CLOSE_OK + b"HTTP/1.1 200 OK\r\n"
         b"Content-Length: 5\r\n\r\nnever", body=b"ok", reusable=False, piece=len(CLOSE_OK)),
    good("big-head-in-small-writes", H + _fields(50, 1000) + b"Content-Length: 2\r\n\r\nok",
         body=b"ok", headers=(("X-F49", "v" * 1000),), piece=256),
]


# -- the scripted server -----------------------------------------------------------------


class Script:
    """Per-test state of the scripted server: which replies to hold back, what it saw."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.release = asyncio.Event()  # /hold finishes its body once set
        self.release.set()
        self.held = 0
        self.held_changed = asyncio.Event()
        self.gate = asyncio.Event()  # /case is answered once set
        self.gate.set()

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        srv = self.srv
        while True:
            request = await srv.read_request(reader, writer)
            if not request:
                return
            path = request.split(b" ", 2)[1]
            if path == b"/case":
                await self.gate.wait()
                await self._send_case(writer)
                if self.case.then == "reset":
                    return
                if self.case.then == "eof":
                    await reader.read()
                    return
            elif path == b"/hold":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                await writer.drain()
                self.held += 1
                self.held_changed.set()
                await self.release.wait()
                await srv.send(writer, b"world")
            else:
                await srv.send(writer, OK)

    async def _send_case(self, writer: asyncio.StreamWriter) -> None:
        raw, piece = self.case.raw, self.case.piece
        if piece is None:
            await self.srv.send(writer, raw)
        else:
            for start in range(0, len(raw), piece):
                writer.write(raw[start : start + piece])
                await writer.drain()
                await asyncio.sleep(0)
            await self.srv.send(writer, b"")
        if self.case.then == "eof":
            writer.write_eof()
        elif self.case.then == "reset":
            _reset(writer)

    async def wait_held(self, n: int) -> None:
        while self.held < n:
            self.held_changed.clear()
            await self.held_changed.wait()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[RawServer]:
        async with RawServer(self.handler) as srv:
            self.srv = srv
            yield srv


def _check_error(case: Case, exc: BaseException) -> None:
    assert isinstance(exc, case.error_type), repr(exc)
    assert case.error is not None
    assert re.search(case.error, str(exc), re.IGNORECASE), f"{case.id}: {exc}"


@pytest.mark.parametrize("case", MALFORMED, ids=[c.id for c in MALFORMED])
async def test_malformed_reply_fails_and_its_connection_is_discarded(case: Case) -> None:
    script = Script(case)
    async with script.serve() as srv, HTTPClient(timeout=TIMEOUT) as client:
        # Alone: the error, then the server sees the client drop the connection.
        with pytest.raises(case.error_type) as info:
            await client.request(case.method, srv.url("/case"))
        _check_error(case, info.value)
        await srv.wait_until(lambda s: s.active_connections == 0)
        assert client.statistics().connections_open == 0
        # The next request needs a new connection, and works.
        assert (await client.get(srv.url("/ok"))).content == b"ok"
        assert srv.connections == 2

        # Beside two responses in mid-body on other connections of the same
        # client: they finish intact, and stay reusable.
        script.release.clear()

        async def neighbour() -> bytes:
            async with client.stream("GET", srv.url("/hold")) as resp:
                return b"".join([chunk async for chunk in resp.aiter_bytes()])

        async def broken() -> BaseException:
            await script.wait_held(2)
            try:
                with pytest.raises(case.error_type) as info:
                    await client.request(case.method, srv.url("/case"))
                return info.value
            finally:
                script.release.set()

        error, first, second = await asyncio.gather(broken(), neighbour(), neighbour())
        _check_error(case, error)
        assert first == second == b"helloworld"
        await srv.wait_until(lambda s: s.active_connections == 2)
        stats = client.statistics()
        assert (stats.connections_open, stats.connections_idle) == (2, 2)
        before = srv.connections
        assert (await client.get(srv.url("/ok"))).content == b"ok"
        assert srv.connections == before


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
async def test_tricky_but_valid_reply(case: Case) -> None:
    script = Script(case)
    async with script.serve() as srv, HTTPClient(timeout=TIMEOUT) as client:
        for streamed in (False, True):
            if streamed:
                async with client.stream(case.method, srv.url("/case")) as resp:
                    body = b"".join([chunk async for chunk in resp.aiter_bytes()])
            else:
                resp = await client.request(case.method, srv.url("/case"))
                body = resp.content
            assert resp.status == case.status
            assert body == case.body
            for name, value in case.headers:
                assert resp.headers.get(name) == value
            assert resp.trailers == list(case.trailers)
            for name, _ in case.trailers:
                assert name not in resp.headers
            opened = srv.connections
            assert (await client.get(srv.url("/ok"))).content == b"ok"
            assert srv.connections == opened + (0 if case.reusable else 1)


POOL_CASES = ["status-icy", "cl-differing-dup", "chunk-missing-crlf", "truncated-body",
              "reset-mid-body"]


@pytest.mark.parametrize("case", [c for c in MALFORMED if c.id in POOL_CASES], ids=POOL_CASES)
async def test_malformed_reply_on_the_only_slot_lets_waiting_requests_through(case: Case) -> None:
    """With one connection allowed, requests queued behind a broken one get a fresh connection."""
    script = Script(case)
    limits = Limits(max_connections=1, max_per_host=1)
    async with script.serve() as srv, HTTPClient(timeout=TIMEOUT, limits=limits) as client:
        script.gate.clear()
        broken = asyncio.ensure_future(client.request(case.method, srv.url("/case")))
        await srv.wait_until(lambda s: s.requests == 1)
        queued = [asyncio.ensure_future(client.get(srv.url("/ok"))) for _ in range(3)]
        for _ in range(100):  # bounded: the requests queue within a few loop turns
            if client.statistics().pool_waiters == 3:
                break
            await asyncio.sleep(0)
        assert client.statistics().pool_waiters == 3
        script.gate.set()
        with pytest.raises(case.error_type) as info:
            await broken
        _check_error(case, info.value)
        assert [(await r).content for r in queued] == [b"ok"] * 3
        assert srv.peak_connections == 1
        assert srv.connections == 2  # the broken one, then one reused by all three


@pytest.mark.parametrize(("reply", "rule"), [
    (b"HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", "header name 'Bad Header' is not a token"),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
        "Content-Length value '0x10' is not a decimal number",
    ),
    (b"ICY 200 OK\r\n\r\n", "status line 'ICY 200 OK' does not start with 'HTTP/'"),
], ids=["bad-name", "bad-length", "bad-status"])
async def test_malformed_reply_during_an_upload(reply: bytes, rule: str) -> None:
    """A server that answers garbage while the body is still going out: the protocol error."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET"):
            await srv.send(writer, OK)
            return
        writer.write(reply)
        await writer.drain()
        while await reader.read(64 * 1024):  # until the client drops the connection
            pass

    async def body() -> AsyncIterator[bytes]:
        piece = b"x" * (64 * 1024)
        for _ in range(16 * 1024):  # 1 GiB at most; the client stops long before
            yield piece

    async with RawServer(handler) as srv, HTTPClient(timeout=TIMEOUT) as client:
        with pytest.raises(asyncnet.RemoteProtocolError, match="^" + re.escape(rule) + "$"):
            await client.post(srv.url("/"), body=body())
        await srv.wait_until(lambda s: s.active_connections == 0)
        assert (await client.get(srv.url("/"))).content == b"ok"
        assert srv.connections == 2


async def test_a_storm_of_good_and_broken_replies_leaks_no_slot() -> None:
    """Every malformed case at once, mixed with good requests, through five connections."""
    cases = [c for c in MALFORMED if c.then != "reset" and c.piece is None]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await srv.read_request(reader, writer)
            if not request:
                return
            path = request.split(b" ", 2)[1].decode()
            if path == "/ok":
                await srv.send(writer, OK)
                continue
            case = cases[int(path.rsplit("/", 1)[1])]
            await srv.send(writer, case.raw)
            if case.then == "eof":
                writer.write_eof()
                await reader.read()
                return

    async def one(i: int) -> object:
        try:
            if i % 2:
                return (await client.get(srv.url("/ok"))).content
            return await client.request(cases[i // 2].method, srv.url(f"/case/{i // 2}"))
        except asyncnet.RemoteProtocolError as exc:
            return exc

    limits = Limits(max_connections=5, max_per_host=5)
    async with RawServer(handler) as srv, HTTPClient(timeout=TIMEOUT, limits=limits) as client:
        results = await asyncio.gather(*(one(i) for i in range(2 * len(cases))))
        for i, result in enumerate(results):
            if i % 2:
                assert result == b"ok"
            else:
                assert isinstance(result, asyncnet.RemoteProtocolError), (cases[i // 2].id, result)
                _check_error(cases[i // 2], result)
        assert srv.peak_connections <= 5
        stats = client.statistics()
        assert stats.pool_waiters == 0
        assert stats.connections_open == stats.connections_idle <= 5
        # Every broken connection was dropped; only clean ones were reused.
        assert srv.connections >= len(cases)


# -- unsolicited bytes on an idle pooled connection ----------------------------------------


async def test_unsolicited_bytes_on_an_idle_pooled_connection() -> None:
    """A "response" to nothing drops the idle connection; the next request gets a fresh one."""
    idle = asyncio.Event()
    junk_sent = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = srv.connections == 1
        while await srv.read_request(reader, writer):
            await srv.send(writer, OK)
            if first:
                await idle.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nspoof")
                await writer.drain()
                junk_sent.set()

    async with RawServer(handler) as srv, HTTPClient(timeout=TIMEOUT) as client:
        assert (await client.get(srv.url("/"))).content == b"ok"
        assert client.statistics().connections_idle == 1
        idle.set()
        await junk_sent.wait()
        await srv.wait_until(lambda s: s.active_connections == 0)
        stats = client.statistics()
        assert (stats.connections_open, stats.connections_idle) == (0, 0)
        resp = await client.get(srv.url("/"))
        assert resp.content == b"ok"
        assert srv.connections == 2
        assert client.statistics().requests_reused == 0


# -- the caller's input is checked before anything is sent ----------------------------------

_BAD_VALUE = r"^header '[^']+' has a control or non-latin-1 character in its value"
_BAD_NAME = r"^header name must be a token"
BAD_HEADERS = [
    ({"X-A": "a\r\nX-Injected: 1"}, _BAD_VALUE),
    ({"X-A": "a\nb"}, _BAD_VALUE),
    ({"X-A": "a\rb"}, _BAD_VALUE),
    ({"X-A": "a\x00b"}, _BAD_VALUE),
    ({"X-A": "a\x01b"}, _BAD_VALUE),
    ({"X-A": "a\x7fb"}, _BAD_VALUE),
    ({"X-A\r\nX-B": "1"}, _BAD_NAME),
    ({"X-A\n": "1"}, _BAD_NAME),
    ({"X\x00A": "1"}, _BAD_NAME),
    ({"X A": "1"}, _BAD_NAME),
    ({"X-A:": "1"}, _BAD_NAME),
    ({"": "1"}, _BAD_NAME),
    ([("X-A", "ok"), ("Host", "a\r\nb")], _BAD_VALUE),
]


@pytest.mark.parametrize(
    ("headers", "rule"), [pytest.param(h, r, id=repr(h)) for h, r in BAD_HEADERS]
)
async def test_bad_header_is_refused_before_sending(headers: Any, rule: str) -> None:
    async with RawServer(responses=[OK]) as srv, HTTPClient(timeout=TIMEOUT) as client:
        with pytest.raises(asyncnet.InvalidHeader, match=rule):
            await client.get(srv.url("/"), headers=headers)
        with pytest.raises(asyncnet.InvalidHeader, match=rule):
            async with client.stream("GET", srv.url("/"), headers=headers):
                pass
        with pytest.raises(asyncnet.InvalidHeader, match=rule):
            HTTPClient(headers=headers)
        assert srv.connections == 0
        # The same client and server work with valid input: the zero above is real.
        assert (await client.get(srv.url("/"), headers={"X-A": "fine"})).content == b"ok"
        assert srv.connections == 1


@pytest.mark.parametrize(
    "method", ["GET\r\n", "GE\nT", "GET\r", "G\x00ET", "GE T", "GET /x", "", "G\x7fET", "GÉT"],
    ids=repr,
)
async def test_bad_method_is_refused_before_sending(method: str) -> None:
    async with RawServer(responses=[OK]) as srv, HTTPClient(timeout=TIMEOUT) as client:
        with pytest.raises(asyncnet.InvalidMethod):
            await client.request(method, srv.url("/"))
        assert srv.connections == 0
        assert (await client.request("GET", srv.url("/"))).content == b"ok"
        assert srv.connections == 1


BAD_URLS = [
    "{base}/a\r\nX-Injected: 1",
    "{base}/a\nb",
    "{base}/a\rb",
    "{base}/a\x00b",
    "{base}/a b",
    "{base}/a\tb",
    "{base}/a\x7f",
    "{base}/?q=1\r\nX: y",
    "{base}/?q=a b",
    "{base}/?q=\x00",
    "http://127.0.0.1\r\n:{port}/",
    "http://127.0.0.1\x00.example:{port}/",
    "http://127.0.0.1 :{port}/",
    "http://127.0.\n0.1:{port}/",
    " {base}/",
    "{base}/\\..\\x",
    "ftp://127.0.0.1:{port}/",
    "file:///etc/passwd",
    "ws://127.0.0.1:{port}/",
    "127.0.0.1:{port}/",
    "//127.0.0.1:{port}/",
]


@pytest.mark.parametrize("template", BAD_URLS, ids=repr)
async def test_bad_url_is_refused_before_sending(template: str) -> None:
    async with RawServer(responses=[OK]) as srv, HTTPClient(timeout=TIMEOUT) as client:
        url = template.format(base=srv.url("").rstrip("/"), port=srv.port)
        with pytest.raises(ValueError) as info:
            await client.get(url)
        assert isinstance(info.value, asyncnet.InvalidURL), repr(info.value)
        assert srv.connections == 0
        assert srv.received == []
        assert (await client.get(srv.url("/"))).content == b"ok"
        assert srv.connections == 1


FRAMING_CONFLICTS = [
    (
        {"Transfer-Encoding": "chunked"},
        b"abc",
        "Transfer-Encoding: chunked given for a body of known length",
    ),
    ({"Transfer-Encoding": "gzip"}, b"abc", "unsupported request Transfer-Encoding 'gzip'"),
    ({"Content-Length": "10"}, b"abc", "Content-Length '10' does not match the body's 3 bytes"),
    ({"Content-Length": "3"}, None, "Content-Length '3' does not match the body's 0 bytes"),
    (
        {"Content-Length": "3"},
        [b"abc"],
        "Content-Length given for a body of unknown length sent chunked",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "rule"),
    [pytest.param(h, b, r, id=f"{h!r}-{b!r}") for h, b, r in FRAMING_CONFLICTS],
)
async def test_framing_headers_that_contradict_the_body_are_refused(
    headers: dict[str, str], body: Any, rule: str
) -> None:
    """Never both Content-Length and Transfer-Encoding, never a length that lies."""
    async with RawServer(responses=[OK]) as srv, HTTPClient(timeout=TIMEOUT) as client:
        if isinstance(body, list):
            body = iter(body)
        with pytest.raises(asyncnet.InvalidHeader, match="^" + re.escape(rule)):
            await client.post(srv.url("/"), headers=headers, body=body)
        assert srv.connections == 0


# -- content decoding through the client ------------------------------------------------------

TEXT = pattern(300_000)


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODED = {
    "gzip": ("gzip", gzip.compress(TEXT)),
    "x-gzip": ("x-gzip", gzip.compress(TEXT)),
    "zlib-deflate": ("deflate", zlib.compress(TEXT)),
    "raw-deflate": ("deflate", _raw_deflate(TEXT)),
    "gzip-members": (
        "gzip",
        b"".join(gzip.compress(part) for part in (TEXT[:1000], TEXT[1000:200_000], TEXT[200_000:])),
    ),
    "gzip-chunked": ("gzip", None),
    # Bytes after a complete, checksummed stream are ignored, as browsers,
    # urllib3, httpx and aiohttp do.
    "deflate-then-junk": ("deflate", zlib.compress(TEXT) + b"junk"),
    "stacked-deflate-gzip": ("deflate, gzip", gzip.compress(zlib.compress(TEXT))),
}


@pytest.mark.parametrize("kind", list(ENCODED))
async def test_content_decoding_end_to_end(kind: str) -> None:
    coding, body = ENCODED[kind]
    if body is None:
        payload = gzip.compress(TEXT)
        pieces = [payload[i : i + 7000] for i in range(0, len(payload), 7000)]
        reply = (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
            + b"0\r\n\r\n"
        )
        wire = len(payload)
    else:
        reply = response(200, body, [("Content-Encoding", coding)])
        wire = len(body)
    async with RawServer(responses=[reply], repeat=True) as srv, HTTPClient() as client:
        resp = await client.get(srv.url("/"))
        assert resp.content == TEXT
        assert resp.num_bytes_downloaded == wire
        async with client.stream("GET", srv.url("/")) as resp:
            pieces_out = [chunk async for chunk in resp.aiter_bytes()]
        assert b"".join(pieces_out) == TEXT
        assert len(pieces_out) > 1  # decoded in steps, not in one piece
        async with client.stream("GET", srv.url("/")) as resp:
            sized = [chunk async for chunk in resp.aiter_bytes(chunk_size=4096)]
        assert b"".join(sized) == TEXT
        assert {len(p) for p in sized[:-1]} == {4096}
        assert srv.connections == 1
    assert b"accept-encoding: gzip" in srv.request_log[0].lower()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_CODINGS = {  # kind: (Content-Encoding, body, the rule that refuses it)
    "unknown-coding": (
        "compress", gzip.compress(TEXT[:1000]), r"^unsupported content coding 'compress'"
    ),
    "four-stacked-codings": (
        "gzip, gzip, gzip, gzip", gzip.compress(TEXT[:1000]), r"^too many content codings"
    ),
    "corrupt-gzip": ("gzip", b"\x1f\x8b\x08\x00" + b"garbage" * 100, r"^corrupt gzip content"),
    "corrupt-deflate": ("deflate", b"\xff" * 100, r"^corrupt deflate content"),
    "truncated-gzip": ("gzip", _truncated(gzip.compress(TEXT)), r"^truncated gzip content"),
    "truncated-deflate": (
        "deflate", _truncated(zlib.compress(TEXT)), r"^truncated deflate content"
    ),
    "gzip-announced-plain-sent": ("gzip", TEXT[:1000], r"^corrupt gzip content"),
}


@pytest.mark.parametrize("kind", list(BAD_CODINGS))
@pytest.mark.parametrize("how", ["read", "aiter_bytes"])
async def test_bad_content_coding_is_a_decode_error(kind: str, how: str) -> None:
    coding, body, rule = BAD_CODINGS[kind]
    reply = response(200, body, [("Content-Encoding", coding)])
    async with RawServer(responses=[reply, OK]) as srv, HTTPClient(timeout=TIMEOUT) as client:
        with pytest.raises(asyncnet.DecodeError, match=rule):
            if how == "read":
                await client.get(srv.url("/"))
            else:
                async with client.stream("GET", srv.url("/")) as resp:
                    async for _ in resp.aiter_bytes():
                        pass
        assert (await client.get(srv.url("/"))).content == b"ok"


@functools.cache
def _bomb_member() -> bytes:
    # 16 MiB of zeros gzip to ~16 KiB; repeated members make the bomb.
    return gzip.compress(bytes(16 * MiB), compresslevel=9)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("how", ["read", "aiter_bytes"])
async def test_decompression_bomb_is_a_decode_error_with_flat_memory(
    how: str, layers: int
) -> None:
    """~2 MiB (one coding) or ~10 KiB (gzip of gzip) that would inflate to 2 GiB.

    DecodeError, and the memory of the whole process stays small.
    """
    body = _bomb_member() * 128
    if layers == 2:
        body = gzip.compress(body, compresslevel=9)
    coding = ", ".join(["gzip"] * layers)
    reply = response(200, body, [("Content-Encoding", coding)])
    async with RawServer(responses=[reply, OK]) as srv, HTTPClient(timeout=TIMEOUT) as client:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            with pytest.raises(asyncnet.DecodeError, match=r"^decompression bomb: "):
                if how == "read":
                    await client.get(srv.url("/"))
                else:
                    async with client.stream("GET", srv.url("/")) as resp:
                        async for _ in resp.aiter_bytes():
                            pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # The body itself (~2 MiB, held once by the server and once by the
        # client) plus a few MiB of decoded output at most; 2 GiB if unbounded.
        assert peak < 32 * MiB, peak
        assert (await client.get(srv.url("/"))).content == b"ok"


# -- streaming backpressure -------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["identity", "chunked", "gzip"])
async def test_slow_stream_consumer_keeps_process_memory_bounded(coding: str) -> None:
    """64 MiB generated by the server, consumed slowly through client.stream().aiter_bytes().

    The consumer takes nothing until the server can send no more, again and
    again, so reading must pause; tracemalloc's peak covers everything this
    process allocated meanwhile (server side included), which stays a small
    fraction of the body. With ``gzip`` the body is compressed as it is sent and
    decoded as it is consumed: backpressure holds through the decoder too.
    """
    size = 64 * MiB
    limit = 256 * 1024
    # The selector transport reads at most this much in one data_received call.
    max_read = 256 * 1024
    block = pattern(64 * 1024)
    server_blocked = asyncio.Event()
    server_done = asyncio.Event()
    expected_crc = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal expected_crc
        await srv.read_request(reader, writer)
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        if coding == "gzip":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n"
            )
        elif coding == "chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            expected_crc = zlib.crc32(block, expected_crc)
            if coding == "gzip":
                writer.write(compressor.compress(block))
            elif coding == "chunked":
                writer.writelines([b"%x\r\n" % len(block), block, b"\r\n"])
            else:
                writer.write(block)
            if writer.transport.get_write_buffer_size() > 0:
                # The kernel's buffers are full: the client has stopped reading.
                server_blocked.set()
            await writer.drain()
            server_blocked.clear()
        end = {"gzip": compressor.flush(), "chunked": b"0\r\n\r\n"}.get(coding, b"")
        server_done.set()  # nothing more to wait for: the rest is written just below
        await srv.send(writer, end)
        if coding == "gzip":
            writer.write_eof()  # the body ends at the close
        await reader.read()

    async def wait_for_server() -> None:
        # Consume nothing until the server can send no more, or has sent all.
        # "Blocked" is a state the server sets and clears itself: an event the
        # consumer cleared could miss the server's one signal and wait forever.
        blocked = asyncio.ensure_future(server_blocked.wait())
        done = asyncio.ensure_future(server_done.wait())
        await asyncio.wait([blocked, done], return_when=asyncio.FIRST_COMPLETED)
        blocked.cancel()
        done.cancel()
        await asyncio.gather(blocked, done, return_exceptions=True)

    async with RawServer(handler) as srv, HTTPClient(body_buffer=limit) as client:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            async with client.stream("GET", srv.url("/")) as resp:
                received = 0
                crc = 0
                pieces = 0
                async for chunk in resp.aiter_bytes():
                    received += len(chunk)
                    crc = zlib.crc32(chunk, crc)
                    pieces += 1
                    if pieces % 16 == 0:
                        await wait_for_server()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert received == size
        assert crc == expected_crc
        stats = client.statistics()
        assert stats.read_pauses >= 1
        assert stats.peak_body_buffered <= limit + max_read, stats.peak_body_buffered
        # A few buffers at a time, never a sizable part of the 64 MiB body.
        assert peak < 8 * MiB, peak
        if coding != "gzip":
            # Read to its end: the connection goes back to the pool.
            assert stats.connections_idle == 1
