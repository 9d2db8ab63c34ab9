"""What ``fetch`` draws: the live progress line, the result rows' pieces and the closing summary.

Everything here is a pure function of numbers, a width and a :class:`Style`
(colours on or off, Unicode block characters or plain ASCII) that returns
strings, so every layout is tested without a terminal; ``_fetch`` decides
when and where they are written. Widths are counted in characters of the
plain text; colour codes are added around pieces after the layout is fixed,
so they never change what fits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "LatencyHistogram",
    "Style",
    "format_clock",
    "format_duration",
    "format_rate",
    "format_size",
    "histogram_lines",
    "outcome_label",
    "plural",
    "progress_bar",
    "progress_line",
    "shorten_middle",
    "summary_lines",
    "truncate",
]

# Below this many seconds a rate says more about the clock than about the
# run ("1 URL in 2 ms: 500/s"), so none is shown.
MIN_RATE_SECONDS = 0.1
# The bar is the first thing dropped on a narrow terminal, and never wider
# than this: beyond it a bar only moves the numbers away from the eye.
_BAR_MIN = 10
_BAR_MAX = 40
# Rows of the latency histogram: enough to show a shape, few enough to read.
_HISTOGRAM_ROWS = 8
_HISTOGRAM_BAR_MAX = 50

# Partial blocks for one eighth to seven eighths of a character cell.
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
_ELLIPSIS_UNICODE = "…"
# SGR parameters by role: green for success, cyan for redirects, yellow for
# the client's 4xx, red for the server's 5xx and for errors.
_SGR = {
    "2xx": "32",
    "3xx": "36",
    "4xx": "33",
    "5xx": "31",
    "error": "1;31",
    "dim": "2",
    "bold": "1",
}


@dataclass(frozen=True)
class Style:
    """How text is dressed: ANSI colours or none, Unicode block characters or ASCII.

    ``colour`` is for terminals only (and never when ``NO_COLOR`` is set);
    ``unicode`` is for terminals too: a log file or a pipe gets ASCII.
    """

    colour: bool = False
    unicode: bool = False

    def paint(self, text: str, role: str) -> str:
        """``text`` in the colour of ``role`` (see :func:`outcome_label`), or as it is."""
        if not self.colour or not text:
            return text
        code = _SGR.get(role, _SGR["error"])
        return f"\x1b[{code}m{text}\x1b[0m"

    @property
    def ellipsis(self) -> str:
        """The mark left where text was cut out."""
        return _ELLIPSIS_UNICODE if self.unicode else "..."


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 URL"``, ``"2 URLs"``, ``"1 connection"``: the count and the right form of ``word``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def format_size(size: int) -> str:
    """Human-readable byte count: ``512 B``, ``1.5 KiB``, ``3.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def format_duration(seconds: float) -> str:
    """A time to three significant figures at most: ``12.3 ms``, ``1.24 s``, ``2m05s``."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    return format_clock(seconds, units=True)


def format_clock(seconds: float, *, units: bool = False) -> str:
    """Elapsed time as a clock, ``0:04``, ``12:30``, ``1:02:03`` (or ``2m05s``, ``1h02m``)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if units:
        return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(count: int, seconds: float) -> str | None:
    """``count`` per second over ``seconds`` (``"4.25/s"``); ``None`` if too quick to mean much."""
    if count <= 0 or seconds < MIN_RATE_SECONDS:
        return None
    rate = count / seconds
    if rate >= 100:
        return f"{rate:.0f}/s"
    return f"{rate:.1f}/s" if rate >= 10 else f"{rate:.2f}/s"


def truncate(text: str, width: int, style: Style) -> str:
    """``text`` cut at the end to at most ``width`` characters, marked with an ellipsis."""
    if len(text) <= width:
        return text
    mark = style.ellipsis
    if width <= len(mark):
        return text[: max(0, width)]
    return text[: width - len(mark)] + mark


def shorten_middle(text: str, width: int, style: Style) -> str:
    """``text`` with its middle replaced by an ellipsis so it fits ``width`` characters.

    Both ends of a URL say the most (the host at the start, the file at the
    end), so the middle goes; a little more of the start is kept.
    """
    if len(text) <= width:
        return text
    mark = style.ellipsis
    room = width - len(mark)
    if room < 2:
        return text[: max(0, width)]
    tail = room // 2
    head = room - tail
    return text[:head] + mark + text[len(text) - tail :]


def outcome_label(status: int | None, error: BaseException | None) -> str:
    """The group a result is counted in: ``"2xx"`` ... ``"5xx"``, or its error's class name."""
    if error is not None or status is None:
        return type(error).__name__ if error is not None else "error"
    return f"{status // 100}xx"


def _role(label: str) -> str:
    return label if label in ("2xx", "3xx", "4xx", "5xx") else "error"


def progress_bar(fraction: float, width: int, style: Style) -> str:
    """A bar ``width`` characters wide filled to ``fraction`` (0 to 1), brackets included."""
    inner = max(0, width - 2)
    fraction = min(1.0, max(0.0, fraction))
    if style.unicode:
        eighths = int(fraction * inner * 8)
        full, part = divmod(eighths, 8)
        fill = _FULL * full + (_EIGHTHS[part] if part else "")
        return "▕" + fill.ljust(inner) + "▏"
    full = int(fraction * inner)
    return "[" + ("#" * full).ljust(inner, ".") + "]"


def progress_line(
    *,
    done: int,
    total: int | None,
    in_flight: int,
    failed: int,
    size: int,
    elapsed: float,
    width: int,
    style: Style,
) -> str:
    """The live line: done/total, a bar when the total is known, in flight, failed, rate, bytes,
    elapsed and an ETA; at most ``width - 1`` characters, so it never wraps.

    On a narrow terminal the bar goes first, then the least telling numbers.
    """
    count = f"{done}/{plural(total, 'URL')}" if total is not None else f"{plural(done, 'URL')} done"
    rate = format_rate(done, elapsed)
    parts: list[tuple[str, str]] = [  # (text, role); dropped from the end of this list first
        (f"{in_flight} in flight", "dim"),
        (f"{failed} failed", "error" if failed else "dim"),
        (rate or "-/s", ""),
        (format_size(size), ""),
        (format_clock(elapsed), ""),
    ]
    if total is not None and rate is not None and done < total:
        eta = (total - done) * elapsed / done
        parts.append((f"ETA {format_clock(eta)}", "bold"))
    # Dropped first on a narrow terminal: bytes, elapsed, in flight, rate;
    # then the bar; done, failed and the ETA stay as long as anything fits.
    drop_order = [3, 4, 0, 2]
    limit = max(1, width - 1)
    kept = list(range(len(parts)))
    sep = "  "

    def plain(with_bar: int) -> str:
        bar = (progress_bar(done / total, with_bar, style) + " ") if with_bar and total else ""
        rest = sep.join(parts[i][0] for i in kept)
        return f"{count} {bar}{rest}".rstrip()

    def bar_room() -> int:
        return limit - len(plain(0)) - 1

    bar_width = 0
    if total:
        for index in drop_order:
            if bar_room() >= _BAR_MIN:
                break
            kept.remove(index)
        if bar_room() >= _BAR_MIN:
            bar_width = min(_BAR_MAX, bar_room())
        else:
            kept = list(range(len(parts)))
    for index in drop_order:
        if len(plain(bar_width)) <= limit:
            break
        if index in kept:
            kept.remove(index)
    text = plain(bar_width)
    if len(text) > limit:
        return truncate(text, limit, style)
    if not style.colour:
        return text
    bar = (progress_bar(done / total, bar_width, style) + " ") if bar_width and total else ""
    rest = sep.join(style.paint(parts[i][0], parts[i][1]) if parts[i][1] else parts[i][0]
                    for i in kept)
    return f"{count} {bar}{rest}".rstrip()


class LatencyHistogram:
    """Latencies counted in log-spaced buckets: constant memory however many URLs.

    Each bucket spans a factor of 1.02, so a percentile read from the
    buckets (the upper edge of the bucket that holds it, capped at the
    largest value seen) is at most 2% above the exact one and never below
    it. One microsecond to a day is about 1,300 buckets at most; a run of a
    million URLs keeps no list of a million floats.
    """

    GROWTH = 1.02
    FLOOR = 1e-6

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.min = math.inf
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Count one latency."""
        seconds = max(0.0, seconds)
        index = 0 if seconds <= self.FLOOR else math.ceil(
            math.log(seconds / self.FLOOR) / math.log(self.GROWTH)
        )
        self._counts[index] = self._counts.get(index, 0) + 1
        self.count += 1
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)

    def _upper(self, index: int) -> float:
        return self.FLOOR * self.GROWTH**index

    def percentile(self, p: float) -> float:
        """The latency at or below which ``p`` percent of them are (0 < p <= 100)."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return min(self._upper(index), self.max)
        return self.max

    def bins(self, rows: int = _HISTOGRAM_ROWS) -> list[tuple[float, int]]:
        """Up to ``rows`` (upper edge, count) pairs from the fastest to the slowest.

        Edges are spaced evenly between the fastest and the slowest on a log
        scale when they are far apart (latencies spread by factors), evenly
        otherwise.
        """
        if not self.count:
            return []
        low, high = self.min, self.max
        # Latencies within 5% of each other are one bar, not eight rows
        # with the same label.
        if high <= low * 1.05 or rows < 2:
            return [(high, self.count)]
        if low > 0 and high / low >= 4:
            step = (math.log(high) - math.log(low)) / rows
            edges = [math.exp(math.log(low) + step * (i + 1)) for i in range(rows)]
        else:
            edges = [low + (high - low) * (i + 1) / rows for i in range(rows)]
        edges[-1] = high
        counts = [0] * rows
        for index, n in self._counts.items():
            # A bucket's upper edge, capped at the largest value, places it.
            value = min(self._upper(index), high)
            row = next((i for i, edge in enumerate(edges) if value <= edge * (1 + 1e-12)), rows - 1)
            counts[row] += n
        return list(zip(edges, counts, strict=True))


def histogram_lines(histogram: LatencyHistogram, width: int, style: Style) -> list[str]:
    """A small text histogram of ``histogram``, one row per bin, bars scaled to fit ``width``."""
    bins = histogram.bins()
    if not bins:
        return []
    le = "≤" if style.unicode else "<="
    labels = [f"  {le} {format_duration(edge)}" for edge, _ in bins]
    label_width = max(len(label) for label in labels)
    count_width = max(len(str(n)) for _, n in bins)
    room = max(1, min(_HISTOGRAM_BAR_MAX, width - 1 - label_width - count_width - 3))
    most = max(n for _, n in bins)
    lines = []
    for label, (_, n) in zip(labels, bins, strict=True):
        if style.unicode:
            eighths = round(n / most * room * 8)
            full, part = divmod(eighths, 8)
            bar = _FULL * full + (_EIGHTHS[part] if part else "")
            if n and not bar:
                bar = _EIGHTHS[1]
        else:
            bar = "#" * round(n / most * room)
            if n and not bar:
                bar = "#"
        bar = style.paint(bar, "3xx") if bar else bar
        gap = " " * (room - len(bar) if not style.colour else room - _visible(bar))
        lines.append(f"{label.ljust(label_width)} {bar}{gap} {n:>{count_width}}".rstrip())
    return lines


def _visible(text: str) -> int:
    """Length of ``text`` without the colour codes :meth:`Style.paint` adds."""
    count = 0
    skipping = False
    for char in text:
        if char == "\x1b":
            skipping = True
        elif skipping:
            skipping = char != "m"
        else:
            count += 1
    return count


def summary_lines(
    *,
    outcomes: Mapping[str, int],
    size: int,
    elapsed: float,
    latencies: LatencyHistogram,
    width: int,
    style: Style,
    interrupted: bool = False,
    unfinished: int = 0,
    brief: bool = False,
) -> list[str]:
    """The closing summary: a headline, the outcomes, latency percentiles and a histogram.

    The headline starts ``"N ok, M failed"`` (or is ``"0 URLs"`` for an empty
    list); ``brief`` keeps only the headline (``--quiet``). After Ctrl-C
    (``interrupted``) a first line says so, and how many URLs were cut off
    (``unfinished``).
    """
    total = sum(outcomes.values())
    ok = outcomes.get("2xx", 0) + outcomes.get("3xx", 0)
    failed = total - ok
    lines: list[str] = []
    if interrupted:
        cut = f", {plural(unfinished, 'URL')} unfinished" if unfinished else ""
        took = format_duration(elapsed)
        lines.append(style.paint("interrupted", "error") + f" after {took}{cut}")
    if total == 0:
        if not interrupted:
            lines.append("0 URLs")
        return lines
    rate = format_rate(total, elapsed)
    head = (
        f"{style.paint(f'{ok} ok', '2xx' if ok else 'dim')}, "
        f"{style.paint(f'{failed} failed', 'error' if failed else 'dim')}: "
        f"{plural(total, 'URL')} in {format_duration(elapsed)}"
        + (f" ({rate})" if rate else "")
        + f", {format_size(size)}"
    )
    lines.append(head)
    if brief:
        return lines
    lines.append("  " + "  ".join(
        f"{style.paint(label, _role(label))} {n}" for label, n in _ordered(outcomes.items())
    ))
    if latencies.count:
        figures = "  ".join(
            f"{name} {format_duration(value)}"
            for name, value in (
                ("p50", latencies.percentile(50)),
                ("p90", latencies.percentile(90)),
                ("p99", latencies.percentile(99)),
                ("max", latencies.max),
            )
        )
        lines.append(truncate(f"  latency  {figures}", max(1, width - 1), style))
        if latencies.count > 1:
            lines.extend(histogram_lines(latencies, width, style))
    return lines


def _ordered(items: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Status classes in numeric order, then error classes, the most frequent first."""
    items = list(items)
    statuses = sorted((label, n) for label, n in items if label.endswith("xx") and n)
    return statuses + sorted(
        ((label, n) for label, n in items if not label.endswith("xx") and n),
        key=lambda item: (-item[1], item[0]),
    )
