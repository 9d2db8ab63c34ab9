"""The SSE parser: the HTML standard's examples, split invariance, the size limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncnet import RemoteProtocolError, ServerSentEvent
from asyncnet._http._sse import SSEParser


def _parse(data: bytes, cuts: list[int] | None = None, **kwargs: int) -> list[ServerSentEvent]:
    parser = SSEParser(**kwargs)
    events: list[ServerSentEvent] = []
    start = 0
    for cut in sorted(cuts or []):
        events += parser.feed(data[start:cut])
        start = cut
    events += parser.feed(data[start:])
    return events


def test_fields_comments_and_multi_line_data() -> None:
    stream = (
        b"\xef\xbb\xbf: a comment\n"
        b"data: first\ndata:second\n\n"
        b"event: add\r\nid: 7\r\ndata:  two spaces\r\n\r\n"
        b"retry: 1500\rdata\r\r"
        b"id: bad\x00id\nretry: 1x\ndata: last\n\n"
        b"unknown: field\ndata: dropped, no blank line"
    )
    assert _parse(stream) == [
        ServerSentEvent("message", "first\nsecond", "", None),
        ServerSentEvent("add", " two spaces", "7", None),
        ServerSentEvent("message", "", "7", 1500),
        ServerSentEvent("message", "last", "7", None),
    ]


def test_events_without_data_are_not_dispatched_and_reset_the_type() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: x\nretry: 5\n\ndata: y\n\n") == [ServerSentEvent(data="y")]
    assert parser.retry == 5


events_st = st.lists(
    st.tuples(
        st.sampled_from(["", "event: e", "id: 1", "retry: 30", ": keepalive"]),
        st.lists(st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)),
                         max_size=12), max_size=3),
        st.sampled_from(["\n", "\r\n", "\r"]),
    ),
    max_size=6,
)


@given(events_st, st.data())
def test_any_split_gives_the_same_events(spec: list[tuple[str, list[str], str]],
                                         data: st.DataObject) -> None:
    text = "".join(
        (extra + eol if extra else "") + "".join(f"data: {d}{eol}" for d in datas) + eol
        for extra, datas, eol in spec
    )
    stream = text.encode("utf-8")
    whole = _parse(stream)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    assert _parse(stream, cuts) == whole
    byte_by_byte = _parse(stream, list(range(len(stream) + 1)))
    assert byte_by_byte == whole
    assert [e.data for e in whole] == ["\n".join(d) for _, d, _ in spec if d]


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_garbage_splits_the_same_and_raises_nothing_else(blob: bytes, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c <= len(blob)]
    try:
        whole = _parse(blob, max_event_size=64)
    except RemoteProtocolError:
        with pytest.raises(
            RemoteProtocolError, match=r"^a server-sent event is larger than 64 bytes$"
        ):
            _parse(blob, cuts, max_event_size=64)
        return
    assert _parse(blob, cuts, max_event_size=64) == whole


def test_an_endless_line_or_event_hits_the_limit() -> None:
    parser = SSEParser(max_event_size=100)
    with pytest.raises(RemoteProtocolError, match="larger than 100 bytes"):
        for _ in range(20):
            parser.feed(b"data: " + b"x" * 10)
    parser = SSEParser(max_event_size=100)
    with pytest.raises(
        RemoteProtocolError, match=r"^a server-sent event is larger than 100 bytes$"
    ):
        for _ in range(20):
            parser.feed(b"data: xxxxxxxxxx\n")
    # Comments and dispatched events do not accumulate.
    parser = SSEParser(max_event_size=100)
    for _ in range(100):
        assert parser.feed(b": ping\ndata: xxxxxxxxxx\n\n") == [ServerSentEvent(data="x" * 10)]
