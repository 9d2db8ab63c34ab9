"""Drive a ResponseParser with bytes split in every way, and compare what comes out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from asyncnet import RemoteProtocolError
from asyncnet._http._parser import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Event,
    ParserLimits,
    ResponseHead,
    ResponseParser,
)

Item = tuple[object, ...]


class StepParser(ResponseParser):
    """The reference: a parser with its fast path switched off.

    ``events()`` is then exactly ``feed()`` and the ``next_event()`` loop,
    and every chunked body goes through the step-by-step chunk modes, one
    size line, data piece and CRLF at a time; comparing its events with the
    real parser's tests the fast path against the steps it stands for.
    """

    __slots__ = ()

    def events(self, data: bytes | memoryview) -> list[Event]:
        self.feed(data)
        return self._drain([])

    def _read_chunk_run(self, buf: bytes | bytearray | memoryview, pos: int) -> Data | None:
        return None


@dataclass
class Outcome:
    """Everything observable from one run: events (Data merged), error, and final state."""

    events: list[Item] = field(default_factory=list)
    error: str | None = None
    keep_alive: bool = False
    state: str = ""

    @property
    def body(self) -> bytes:
        return b"".join(e[1] for e in self.events if e[0] == "data")  # type: ignore[misc]

    @property
    def heads(self) -> list[Item]:
        return [e for e in self.events if e[0] == "head"]


def _append(events: list[Item], event: ResponseHead | Data | EndOfMessage) -> None:
    if isinstance(event, ResponseHead):
        # The flag may only say "nothing to decode" when that is so.
        assert event.content_encoded or "content-encoding" not in event.headers
        events.append(
            ("head", event.status, event.reason, event.http_version, event.headers.items())
        )
    elif isinstance(event, Data):
        assert type(event.data) is bytes
        if not event.data:
            raise AssertionError("parser produced an empty Data event")
        if events and events[-1][0] == "data":
            events[-1] = ("data", events[-1][1] + event.data)  # type: ignore[operator]
        else:
            events.append(("data", event.data))
    else:
        events.append(("end", event.trailers.items()))


def drive(
    chunks: Sequence[bytes],
    *,
    method: str = "GET",
    eof: bool = False,
    upgrade: bool = False,
    limits: ParserLimits | None = None,
    use_events: bool = False,
    use_views: bool = False,
    reference: bool = False,
) -> Outcome:
    """Feed ``chunks`` one by one as a client would, draining events after each.

    With ``use_events`` each chunk goes through ``ResponseParser.events()`` (the
    fast path) before the same draining with ``next_event()``. With
    ``use_views`` too, each chunk is passed as a view of one reused buffer that
    is overwritten after every call, as an I/O layer's receive buffer is.
    With ``reference`` the parser is a :class:`StepParser` (no fast path).
    """
    scratch = bytearray(max((len(c) for c in chunks), default=0)) if use_views else None
    parser = (StepParser if reference else ResponseParser)(limits)
    parser.start_response(method, upgrade_requested=upgrade)
    out = Outcome()

    def drain() -> None:
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return
            _append(out.events, event)

    try:
        for chunk in chunks:
            if use_events and scratch is not None:
                view = memoryview(scratch)[: len(chunk)]
                view[:] = chunk
                for event in parser.events(view):
                    _append(out.events, event)
                scratch[:] = b"\xff" * len(scratch)
            elif use_events:
                for event in parser.events(chunk):
                    _append(out.events, event)
            else:
                parser.feed(chunk)
            drain()
        if eof:
            parser.feed_eof()
            drain()
    except RemoteProtocolError as exc:
        out.error = str(exc)
    out.keep_alive = parser.keep_alive
    out.state = parser.state.value
    return out


def splits(raw: bytes) -> Iterable[Sequence[bytes]]:
    """The input whole, split in two at every position, and one byte at a time."""
    yield [raw]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]
    yield [raw[i : i + 1] for i in range(len(raw))]


def drive_all_splits(raw: bytes, **kwargs: object) -> Outcome:
    """Run ``raw`` whole and split in every way; assert every run agrees; return the whole run.

    Agreement means the same events (Data merged) and the same verdict: all
    runs succeed, or all raise RemoteProtocolError. Error texts may differ in
    detail, since a problem can be seen at a different byte depending on
    where the input was cut. Every split is also run through the reference
    :class:`StepParser`, so the fast path is checked against the steps at
    every split position.
    """
    whole: Outcome | None = None
    runs = [(chunks, False) for chunks in splits(raw)]
    runs[1:1] = [([raw], True)]
    for index, (chunks, use_events) in enumerate(runs):
        # Alternate between next_event() and the events() fast path.
        use_events = use_events or index % 2 == 1
        use_views = index % 4 == 3
        got = drive(
            chunks, use_events=use_events, use_views=use_views, **kwargs  # type: ignore[arg-type]
        )
        step = drive(chunks, reference=True, **kwargs)  # type: ignore[arg-type]
        where = [len(c) for c in chunks][:3]
        assert (step.error is None) == (got.error is None), (where, step.error, got.error)
        if got.error is None:
            assert (step.events, step.keep_alive) == (got.events, got.keep_alive), where
        if whole is None:
            whole = got
            continue
        if whole.error is None:
            assert got.error is None, (where, got.error)
            assert got.events == whole.events, where
            assert got.keep_alive == whole.keep_alive, where
        else:
            assert got.error is not None, (where, whole.error, got.events)
            # The same heads came before the error (body pieces may differ);
            # events() drops the events of the call that raised.
            if not use_events:
                assert got.heads == whole.heads, where
    assert whole is not None
    return whole
