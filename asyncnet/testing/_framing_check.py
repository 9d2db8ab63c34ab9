"""``check_framing``: a framer must decode the same frames however its input is split.

The check is pytest-agnostic: it raises :class:`AssertionError` with the split
that failed, so it works from any test runner. hypothesis is used when it is
importable, to choose multi-way splits and shrink a failing one; without it a
seeded :class:`random.Random` chooses them, so the check is reproducible and
hypothesis is never a runtime dependency of asyncnet.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._errors import FrameTooLarge
from .._framing import Framing, preserves_boundaries

__all__ = ["check_framing"]

# Above this many bytes the boundary check feeds the long frame in a few
# pieces around its ending instead of one byte at a time (a 64 KiB line fed
# byte by byte is 64 Ki calls: affordable; every two-way split of it is not).
_BYTEWISE_MAX = 1 << 17

#: One decoding outcome: the frames, then the error (type, limit) or None.
Outcome = tuple[list[Any], tuple[type[BaseException], Any] | None]


def _encode(framing: Framing[Any], frames: Iterable[Any]) -> bytes:
    out = bytearray()
    for frame in frames:
        encoded = framing.encode(frame)
        if isinstance(encoded, tuple):
            for piece in encoded:
                out += piece
        else:
            out += encoded
    return bytes(out)


class _BrokenContract(AssertionError):
    """The decoder's ``pending_error`` disagrees with what its next ``feed`` raises."""


def _probe(framing: Framing[Any], decoder: Any, reports: bool) -> list[Any]:
    # A decoder returns the frames before an error and raises it on the next
    # call: ask at once, as the connection layer does. One that keeps a
    # ``pending_error`` (the connection layer reads it instead of asking)
    # must hold exactly what that call raises, and None while it raises nothing.
    pending = decoder.pending_error if reports else None
    try:
        frames: list[Any] = decoder.feed(b"")
    except Exception as exc:
        if reports and pending is not exc:
            raise _BrokenContract(
                f"{framing!r}: feed(b'') raised {exc!r} but pending_error was {pending!r}"
            ) from exc
        raise
    if pending is not None:
        raise _BrokenContract(
            f"{framing!r}: pending_error is {pending!r} but feed(b'') raised nothing"
        )
    return frames


def _decode(framing: Framing[Any], pieces: Iterable[bytes]) -> Outcome:
    decoder = framing.decoder()
    reports = hasattr(decoder, "pending_error")
    frames: list[Any] = []
    try:
        for piece in pieces:
            frames.extend(decoder.feed(piece))
            frames.extend(_probe(framing, decoder, reports))
        decoder.feed_eof()
    except _BrokenContract:
        raise
    except Exception as exc:
        # The size in FrameTooLarge is a lower bound that depends on how much
        # had arrived; the type and the limit must not depend on the split.
        return frames, (type(exc), getattr(exc, "limit", None))
    return frames, None


def _cut(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces: list[bytes] = []
    start = 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def _normalise(framing: Framing[Any], outcome: Outcome) -> Outcome:
    frames, error = outcome
    if preserves_boundaries(framing):
        return outcome
    # Raw and friends: only the bytes, not where they were cut, are meaningful.
    return [b"".join(frames)], error


def _compare(
    framing: Framing[Any], data: bytes, expected: Outcome, pieces: list[bytes], how: str
) -> None:
    got = _normalise(framing, _decode(framing, pieces))
    if got != expected:
        sizes = [len(p) for p in pieces]
        raise AssertionError(
            f"{framing!r}: feeding {len(data)} bytes {how} (piece sizes {sizes[:40]}"
            f"{'...' if len(sizes) > 40 else ''}) gave {got!r}, whole gave {expected!r}"
        )


def _random_splits(
    check: Callable[[list[int]], None], size: int, examples: int, seed: int
) -> None:
    try:
        import hypothesis
        from hypothesis import strategies as st
    except ImportError:
        rng = random.Random(seed)
        for _ in range(examples):
            check([rng.randint(0, size) for _ in range(rng.randint(0, 16))])
        return

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(st.lists(st.integers(min_value=0, max_value=size), max_size=16))
    def run(cuts: list[int]) -> None:
        check(cuts)

    run()


def _limit_of(framing: Any) -> int | None:
    for name in ("max_length", "max_frame"):
        value = getattr(framing, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _filler(framing: Framing[Any]) -> int | None:
    # A byte that cannot be part of the framing's own markers.
    try:
        marker = _encode(framing, [b""])
    except Exception:
        marker = b""
    for candidate in b"xa0\x00":
        if candidate not in marker:
            return candidate
    return None


def _check_limit(framing: Framing[Any], limit: int, examples: int, seed: int) -> None:
    filler = _filler(framing)
    if filler is None:
        return
    good = bytes([filler]) * limit
    bad = bytes([filler]) * (limit + 1)
    try:
        before = _encode(framing, [bytes([filler])])
        good_data = _encode(framing, [good])
        bad_data = _encode(framing, [bad])
    except Exception:
        return  # the encoder refuses these frames; nothing to check
    variants = [("max", good_data, True), ("max + 1", bad_data, False)]
    if getattr(framing, "ending", None) == "any":
        # Lines(ending="any") sends LF but must accept CRLF too: the CR held
        # past max_length while the LF is still to come is the classic bug.
        variants += [("max (CRLF)", good + b"\r\n", True), ("max + 1 (CRLF)", bad + b"\r\n", False)]
    for label, data, ok in variants:
        stream = before + data + before
        expected_frames = [bytes([filler])]
        if ok:
            expected_frames += [good, bytes([filler])]
            expected: Outcome = (expected_frames, None)
        else:
            expected = (expected_frames, (FrameTooLarge, limit))
        whole = _normalise(framing, _decode(framing, [stream]))
        if whole != expected:
            raise AssertionError(
                f"{framing!r}: a frame of {label} ({len(good if ok else bad)}) bytes, fed whole, "
                f"gave {whole!r}, expected {expected!r}"
            )
        # Every split in the last few bytes of the frame and across its ending
        # (the ending split between reads is where Twisted rejected a line of
        # exactly MAX_LENGTH), and splits at random places.
        end = len(before) + len(data)
        overhead = len(data) - len(good if ok else bad)
        near = sorted(
            {*range(max(0, end - overhead - 4), min(len(stream), end + 2)),
             *range(len(before), len(before) + overhead + 2)}
        )
        for a in near:
            for b in near:
                if a <= b:
                    _compare(framing, stream, expected, _cut(stream, [a, b]),
                             f"with a {label} frame split at {a} and {b}")
        if len(stream) <= _BYTEWISE_MAX:
            _compare(framing, stream, expected, [stream[i:i + 1] for i in range(len(stream))],
                     f"with a {label} frame one byte at a time")
        def check(cuts: list[int], s: bytes = stream, e: Outcome = expected,
                  lb: str = label) -> None:
            _compare(framing, s, e, _cut(s, cuts), f"with a {lb} frame at cuts {sorted(cuts)}")

        _random_splits(check, len(stream), max(1, examples // 4), seed)


def check_framing(
    framing: Framing[Any],
    frames: Sequence[Any],
    *,
    examples: int = 100,
    seed: int = 0,
    check_limit: bool = True,
) -> None:
    """Check that ``framing`` round-trips ``frames`` however the byte stream is split.

    Encodes ``frames``, decodes the bytes fed whole, one byte at a time, split
    in two at every position, and split at ``examples`` hypothesis-chosen (or
    seeded random) places, and asserts that each gives exactly ``frames`` and
    a clean end. Then, for a framing with a ``max_length`` or ``max_frame``
    attribute, a frame of exactly that size must be accepted and one byte more
    refused with :class:`~asyncnet.FrameTooLarge` (same ``limit``) whatever the
    split, including the ending split across reads (``check_limit=False``
    skips this for a framing whose frames are not plain bytes). A decoder with
    a ``pending_error`` attribute must, after every piece, hold in it exactly
    the error its next ``feed`` raises (``None`` when it raises none). Raises
    :class:`AssertionError` on the first difference. Keep ``frames`` small (a
    few KiB in all): the two-way splits cost time quadratic in their size.
    """
    data = _encode(framing, frames)
    expected = _normalise(framing, (list(frames), None))
    whole = _normalise(framing, _decode(framing, [data]))
    if whole != expected:
        raise AssertionError(f"{framing!r}: encoding {list(frames)!r} and decoding it whole "
                             f"gave {whole!r}")
    _compare(framing, data, expected, [data[i:i + 1] for i in range(len(data))],
             "one byte at a time")
    for i in range(len(data) + 1):
        _compare(framing, data, expected, [data[:i], data[i:]], f"split at {i}")
    _random_splits(
        lambda cuts: _compare(framing, data, expected, _cut(data, cuts), f"at cuts {sorted(cuts)}"),
        len(data), examples, seed,
    )
    limit = _limit_of(framing) if check_limit else None
    if limit is not None:
        _check_limit(framing, limit, examples, seed)
