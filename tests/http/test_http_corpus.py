"""Run llhttp's response test vectors through our parser and compare verdicts.

The corpus (``llhttp-responses.json``, MIT, see ``tests/data/README.rst``)
holds raw responses and what llhttp made of them. Every strict case must
either agree with llhttp (status, version, reason, headers, body,
completeness, keep-alive, upgrade, error or no error) or be listed in
:data:`DIFFERENCES` with the reason we choose otherwise; a listed case must
really differ, so the list cannot go stale. Lenient cases (llhttp with a
leniency flag on) are held to their strict twin's verdict.

The harness acts as a client that pipelined its requests, as llhttp's tests
assume: bytes after a complete response go to a fresh parser when that
response left the connection open (RFC 9112 section 9.3); when it ended the
connection, they stay with the parser, which must refuse them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from asyncnet import RemoteProtocolError
from asyncnet._http._parser import (
    NEED_DATA,
    Data,
    EndOfMessage,
    ParserState,
    ResponseHead,
    ResponseParser,
)

_TESTS = Path(__file__).resolve().parents[1]
# CI checks the repository out with the shared corpus as a sibling directory;
# the committed copy keeps the test runnable without it.
SIBLING = _TESTS.parent.parent / "shared" / "corpus" / "llhttp-responses.json"
COPY = _TESTS / "data" / "llhttp-responses.json"
CORPUS_PATH = SIBLING if SIBLING.is_file() else COPY
CORPUS: dict[str, Any] = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
CASES: dict[str, dict[str, Any]] = {case["id"]: case for case in CORPUS["cases"]}

_STRAY_CRLF = (
    "llhttp skips empty lines before a status line; a client expecting a status "
    "line rejects them (as h11 does): RFC 9112 section 2.2's allowance is for "
    "servers reading requests"
)

#: Every case where we deliberately give a different answer than llhttp, and why.
DIFFERENCES: dict[str, str] = {
    "connection/proxy-connection": (
        "Proxy-Connection is not a standard field; RFC 9112 keep-alive depends on "
        "Connection only, so the response stays reusable"
    ),
    "connection/http-304-with-content-length": _STRAY_CRLF,
    "connection/http-100-first-then-400": _STRAY_CRLF,
    "pipelining/should-parse-multiple-events": _STRAY_CRLF,
    "sample/response-starting-with-crlf": _STRAY_CRLF,
    "sample/rtsp-response": "an HTTP client accepts only HTTP/1.x status lines, not RTSP",
    "sample/ice-response": "an HTTP client accepts only HTTP/1.x status lines, not ICE",
    "sample/http-version-0-9": (
        "HTTP/0.9 has no status line at all; a status line claiming 0.9 is malformed"
    ),
    "transfer-encoding/invalid-obs-fold-after-chunked-value": (
        "obs-fold is replaced by SP (RFC 9112 section 5.2), which makes the coding "
        "'chunked abc' invalid: rejected, where llhttp's lenient mode reads until close"
    ),
}


@dataclass
class Message:
    status: int
    version: str
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    complete: bool = False
    keep_alive: bool | None = None
    trailers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Result:
    messages: list[Message] = field(default_factory=list)
    error: str | None = None
    upgrade_data: bytes | None = None


def _persistent(head: ResponseHead) -> bool:
    """RFC 9112 section 9.3: does this response leave the connection open?"""
    tokens = {
        t.strip().lower() for v in head.headers.get_all("connection") for t in v.split(",")
    }
    if "close" in tokens:
        return False
    return head.http_version != "1.0" or "keep-alive" in tokens


def run(case: dict[str, Any], chunks: list[bytes], eof: bool) -> Result:
    method = "HEAD" if case["head_request"] else "GET"
    upgrade = case["expect"]["upgrade"] is not None
    result = Result()
    parser = ResponseParser()
    parser.start_response(method, upgrade_requested=upgrade)
    current: Message | None = None
    current_head: ResponseHead | None = None

    def drain() -> None:
        nonlocal parser, current, current_head
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, ResponseHead):
                current_head = event
                current = Message(
                    event.status, event.http_version, event.reason, event.headers.items()
                )
                result.messages.append(current)
                if parser.state is ParserState.UPGRADED:
                    current.complete = True  # the head is all of an upgrade's message
                    result.upgrade_data = parser.trailing_data
                    return
            elif isinstance(event, Data):
                assert current is not None
                current.body += event.data
            else:
                assert isinstance(event, EndOfMessage) and current is not None
                current.complete = True
                current.trailers = event.trailers.items()
                leftover = parser.trailing_data
                if leftover:
                    # Bytes already behind the response make it non-reusable for
                    # our parser by design; judge the response itself instead.
                    assert current_head is not None
                    persistent = _persistent(current_head)
                else:
                    persistent = parser.keep_alive
                current.keep_alive = persistent
                if persistent:
                    parser = ResponseParser()
                    parser.start_response(method)
                    parser.feed(leftover)

    try:
        for chunk in chunks:
            if parser.state is ParserState.UPGRADED:
                assert result.upgrade_data is not None
                result.upgrade_data += chunk
                continue
            parser.feed(chunk)
            drain()
        if eof:
            parser.feed_eof()
            drain()
    except RemoteProtocolError as exc:
        result.error = str(exc)
    return result


def mismatches(case: dict[str, Any], expect: dict[str, Any], result: Result) -> list[str]:
    """Every way ``result`` disagrees with llhttp's verdict ``expect`` (empty: agreement)."""
    raw = base64.b64decode(case["raw_b64"])
    problems: list[str] = []
    if (expect["error"] is None) != (result.error is None):
        problems.append(f"llhttp error={expect['error']}, ours={result.error!r}")
    # 1xx interim responses are skipped by our parser (101 excepted).
    wanted = [m for m in expect["messages"] if not 100 <= m["status"] < 200 or m["status"] == 101]
    if len(wanted) != len(result.messages):
        problems.append(
            f"llhttp saw {len(wanted)} message(s), we saw {len(result.messages)}: "
            f"{[m.status for m in result.messages]}"
        )
    for i, (want, got) in enumerate(zip(wanted, result.messages, strict=False)):
        complete = want["complete"] or (expect["eof_needed"] and i == len(wanted) - 1)
        checks = {
            "status": (want["status"], got.status),
            "version": (want["version"], got.version),
            "reason": (want["reason"], got.reason),
            "headers": ([tuple(h) for h in want["headers"]], got.headers),
            "trailers": ([tuple(h) for h in want["trailers"]], got.trailers),
            "body": (base64.b64decode(want["body_b64"]), got.body),
            "complete": (complete, got.complete),
        }
        if want["keep_alive"] is not None and got.complete:
            checks["keep_alive"] = (want["keep_alive"], got.keep_alive)
        for name, (a, b) in checks.items():
            if a != b:
                problems.append(f"message {i}: {name} llhttp={a!r} ours={b!r}")
    if expect["upgrade"] is not None:
        trailing = raw[expect["upgrade"]["offset"] :]
        if result.upgrade_data != trailing:
            problems.append(f"upgrade data llhttp={trailing!r} ours={result.upgrade_data!r}")
    elif result.upgrade_data is not None:
        problems.append("we upgraded, llhttp did not")
    return problems


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    """llhttp's strict verdict for this input: a lenient case takes its strict twin's."""
    if case["strict"]:
        return dict(case["expect"])
    for twin in case["same_bytes_as"]:
        if CASES[twin]["strict"]:
            return dict(CASES[twin]["expect"])
    return dict(case["expect"])


def _chunkings(raw: bytes) -> list[list[bytes]]:
    return [[raw]] + [[raw[:i], raw[i:]] for i in range(1, len(raw))] + [
        [raw[i : i + 1] for i in range(len(raw))]
    ]


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_corpus_case(case_id: str) -> None:
    case = CASES[case_id]
    expect = _expected(case)
    raw = base64.b64decode(case["raw_b64"])
    whole = run(case, [raw], expect["eof_needed"])
    problems = mismatches(case, expect, whole)
    if case_id in DIFFERENCES:
        assert problems, f"{case_id} is listed as differing but now matches llhttp"
    else:
        assert not problems, problems
    # Whatever the verdict, it must not depend on how the bytes were split.
    for chunks in _chunkings(raw)[1:]:
        got = run(case, chunks, expect["eof_needed"])
        where = [len(c) for c in chunks][:2]
        assert (got.error is None) == (whole.error is None), (where, got.error, whole.error)
        for a, b in zip(got.messages, whole.messages, strict=True):
            assert (a.status, a.headers, a.body, a.complete, a.trailers) == (
                b.status,
                b.headers,
                b.body,
                b.complete,
                b.trailers,
            ), where
        assert got.upgrade_data == whole.upgrade_data, where


def test_every_listed_difference_is_a_corpus_case() -> None:
    assert set(DIFFERENCES) <= set(CASES)


def test_corpus_copy_matches_the_shared_corpus() -> None:
    if not SIBLING.is_file():
        pytest.skip("shared corpus not checked out next to the repository")
    assert json.loads(COPY.read_text(encoding="utf-8")) == json.loads(
        SIBLING.read_text(encoding="utf-8")
    )


STRAY_CRLF_CASES = {
    # case id -> the input with llhttp's skipped empty line(s) removed
    "connection/http-304-with-content-length": (b"\r\n\r\n\r\nHTTP/", b"\r\n\r\nHTTP/"),
    "connection/http-100-first-then-400": (b"\r\n\r\n\r\nHTTP/", b"\r\n\r\nHTTP/"),
    "pipelining/should-parse-multiple-events": (b"\r\nHTTP/", b"HTTP/"),
    "sample/response-starting-with-crlf": (b"\r\nHTTP/1.1 200", b"HTTP/1.1 200"),
}


@pytest.mark.parametrize("case_id", sorted(STRAY_CRLF_CASES))
def test_stray_crlf_cases_agree_once_the_empty_lines_are_removed(case_id: str) -> None:
    assert DIFFERENCES[case_id] == _STRAY_CRLF
    case = CASES[case_id]
    old, new = STRAY_CRLF_CASES[case_id]
    raw = base64.b64decode(case["raw_b64"])
    assert old in raw
    cleaned = raw.replace(old, new)
    expect = _expected(case)
    result = run(case, [cleaned], expect["eof_needed"])
    assert mismatches(case, expect, result) == []
