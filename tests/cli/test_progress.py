"""What ``fetch`` draws, as pure functions: numbers and a width in, lines out; no terminal."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncnet._cli._progress import (
    LatencyHistogram,
    Style,
    format_clock,
    format_duration,
    format_rate,
    histogram_lines,
    outcome_label,
    plural,
    progress_bar,
    progress_line,
    shorten_middle,
    summary_lines,
)

PLAIN = Style()
FANCY = Style(colour=True, unicode=True)
SGR = re.compile(r"\x1b\[[0-9;]*m")


def visible(text: str) -> str:
    return SGR.sub("", text)


def test_plural() -> None:
    assert plural(0, "URL") == "0 URLs"
    assert plural(1, "URL") == "1 URL"
    assert plural(2, "connection") == "2 connections"
    assert plural(1, "connection") == "1 connection"
    assert plural(3, "echo", "echoes") == "3 echoes"


def test_durations_and_clocks() -> None:
    assert format_duration(0.00042) == "420 us"
    assert format_duration(0.00123) == "1.23 ms"
    assert format_duration(0.0456) == "45.6 ms"
    assert format_duration(0.456) == "456 ms"
    assert format_duration(1.234) == "1.23 s"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3725) == "1h02m"
    assert format_clock(4.9) == "0:04"
    assert format_clock(750) == "12:30"
    assert format_clock(3723) == "1:02:03"


def test_an_instant_run_has_no_made_up_rate() -> None:
    assert format_rate(1, 0.002) is None
    assert format_rate(0, 5.0) is None
    assert format_rate(3, 1.0) == "3.00/s"
    assert format_rate(45, 2.0) == "22.5/s"
    assert format_rate(1000, 2.0) == "500/s"


def test_shorten_middle_keeps_both_ends() -> None:
    url = "http://example.com/" + "a" * 100 + "/file.txt"
    short = shorten_middle(url, 40, FANCY)
    assert len(short) == 40
    assert short.startswith("http://example.com/") and short.endswith("/file.txt")
    assert "…" in short
    assert shorten_middle(url, 40, PLAIN).count("...") == 1
    assert shorten_middle("http://a/", 40, FANCY) == "http://a/"


def test_outcome_labels() -> None:
    assert outcome_label(200, None) == "2xx"
    assert outcome_label(304, None) == "3xx"
    assert outcome_label(404, None) == "4xx"
    assert outcome_label(503, None) == "5xx"
    assert outcome_label(None, ConnectionRefusedError()) == "ConnectionRefusedError"


def test_bar_fills_by_eighths_or_hashes() -> None:
    assert progress_bar(0.5, 12, PLAIN) == "[#####.....]"
    assert progress_bar(0.0, 6, PLAIN) == "[....]"
    assert progress_bar(1.0, 6, FANCY) == "▕████▏"
    assert progress_bar(0.5625, 6, FANCY) == "▕██▎ ▏"  # 2.25 of 4 cells
    assert progress_bar(7.0, 6, PLAIN) == "[####]"  # clamped


def line(width: int, style: Style = PLAIN, **kw: object) -> str:
    fields: dict[str, object] = {
        "done": 42, "total": 100, "in_flight": 3, "failed": 1,
        "size": 2048, "elapsed": 4.0,
    }  # fmt: skip
    fields.update(kw)
    return progress_line(width=width, style=style, **fields)  # type: ignore[arg-type]


def test_progress_line_shows_every_figure_when_there_is_room() -> None:
    text = line(120)
    assert text.startswith("42/100 URLs [")
    for part in ("3 in flight", "1 failed", "10.5/s", "2.0 KiB", "0:04", "ETA 0:05"):
        assert part in text, (part, text)


def test_progress_line_without_a_total_has_no_bar_and_no_eta() -> None:
    text = line(120, total=None)
    assert text.startswith("42 URLs done ")
    assert "[" not in text and "ETA" not in text


def test_progress_line_before_anything_finished() -> None:
    text = line(100, done=0, failed=0, elapsed=0.01)
    assert text.startswith("0/100 URLs [")
    assert "-/s" in text and "ETA" not in text


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=300),
    done=st.integers(min_value=0, max_value=10**7),
    extra=st.integers(min_value=0, max_value=10**7),
    known=st.booleans(),
    unicode=st.booleans(),
    colour=st.booleans(),
    elapsed=st.floats(min_value=0, max_value=10**6),
)
def test_progress_line_never_wraps(
    width: int, done: int, extra: int, known: bool, unicode: bool, colour: bool, elapsed: float
) -> None:
    style = Style(colour=colour, unicode=unicode)
    text = line(
        width, style, done=done, total=done + extra if known else None,
        failed=done // 3, in_flight=extra % 50, elapsed=elapsed,
    )  # fmt: skip
    # One column spare: writing the last column makes some terminals wrap.
    assert len(visible(text)) <= max(1, width - 1)
    assert "\n" not in text and "\r" not in text
    if not colour:
        assert "\x1b" not in text
    if not unicode:
        assert text.isascii()


def test_the_bar_goes_before_the_figures_that_matter() -> None:
    narrow = line(40)
    assert "42/100 URLs" in narrow and "1 failed" in narrow and "ETA" in narrow
    assert len(narrow) <= 39


def test_latency_percentiles_are_close_and_never_below_the_truth() -> None:
    hist = LatencyHistogram()
    values = [i / 1000 for i in range(1, 1001)]  # 1 ms .. 1 s
    for value in values:
        hist.add(value)
    assert hist.count == 1000
    for p, exact in ((50, 0.5), (90, 0.9), (99, 0.99)):
        got = hist.percentile(p)
        assert exact <= got <= exact * 1.02, (p, got)
    assert hist.percentile(100) == hist.max == 1.0
    assert hist.min == 0.001


def test_latency_memory_does_not_grow_with_the_count() -> None:
    hist = LatencyHistogram()
    for i in range(20_000):
        hist.add(0.01 + (i % 100) / 1000)
    # ~100 distinct values, spread over buckets 2% wide: a few dozen entries.
    assert len(hist._counts) < 100


def test_histogram_rows_fit_and_sum_to_the_count() -> None:
    hist = LatencyHistogram()
    for value in [0.002] * 30 + [0.02] * 10 + [0.5] * 2:
        hist.add(value)
    for style in (PLAIN, FANCY):
        for width in (40, 80, 200):
            rows = histogram_lines(hist, width, style)
            assert 2 <= len(rows) <= 8
            assert sum(int(row.split()[-1]) for row in rows) == 42
            assert all(len(visible(row)) <= width - 1 for row in rows), rows
    plain = histogram_lines(hist, 80, PLAIN)
    assert all(row.isascii() for row in plain)
    assert any("#" in row for row in plain)
    fancy = histogram_lines(hist, 80, FANCY)
    assert any("█" in row for row in fancy) and any("≤" in row for row in fancy)


def test_summary_counts_outcomes_and_shows_latency() -> None:
    hist = LatencyHistogram()
    for value in (0.01, 0.02, 0.03, 0.5):
        hist.add(value)
    outcomes = Counter({"2xx": 3, "4xx": 1, "ConnectError": 2})
    lines = summary_lines(
        outcomes=outcomes, size=4096, elapsed=2.0, latencies=hist, width=80, style=PLAIN
    )
    assert lines[0] == "3 ok, 3 failed: 6 URLs in 2.00 s (3.00/s), 4.0 KiB"
    assert lines[1].split() == ["2xx", "3", "4xx", "1", "ConnectError", "2"]
    assert lines[2].split()[:3] == ["latency", "p50", "20.4"]
    assert "max 500 ms" in lines[2]
    assert len(lines) > 3  # the histogram
    assert all(line.isascii() for line in lines)


def test_summary_of_one_instant_url() -> None:
    hist = LatencyHistogram()
    hist.add(0.003)
    lines = summary_lines(
        outcomes=Counter({"2xx": 1}), size=10, elapsed=0.004, latencies=hist, width=80,
        style=PLAIN,
    )  # fmt: skip
    assert lines[0] == "1 ok, 0 failed: 1 URL in 4.00 ms, 10 B"  # no rate for 4 ms


def test_summary_of_nothing_and_of_an_interruption() -> None:
    empty = summary_lines(
        outcomes=Counter(), size=0, elapsed=0.0, latencies=LatencyHistogram(), width=80,
        style=PLAIN,
    )  # fmt: skip
    assert empty == ["0 URLs"]
    cut = summary_lines(
        outcomes=Counter({"2xx": 2}), size=0, elapsed=3.0, latencies=LatencyHistogram(),
        width=80, style=PLAIN, interrupted=True, brief=True,
    )  # fmt: skip
    assert cut == ["interrupted after 3.00 s", "2 ok, 0 failed: 2 URLs in 3.00 s (0.67/s), 0 B"]


@pytest.mark.parametrize("style", [PLAIN, FANCY])
def test_colour_only_when_asked(style: Style) -> None:
    hist = LatencyHistogram()
    hist.add(0.1)
    hist.add(0.2)
    text = "\n".join(
        summary_lines(
            outcomes=Counter({"2xx": 1, "5xx": 1}), size=0, elapsed=1.0, latencies=hist,
            width=80, style=style,
        )
    )  # fmt: skip
    assert ("\x1b[" in text) is style.colour
