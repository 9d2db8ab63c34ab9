"""``fetch`` on a terminal: the run's tally, and where rows, progress and summary are written.

:mod:`._progress` decides what a line says; this module decides where and
when it is written: the progress line on standard error only when that is a
terminal, wiped before a row shares its screen and before the command ends,
colours and Unicode only on a terminal and never with ``NO_COLOR`` or
``--no-color``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from .._fetch import FetchResult
from ._progress import LatencyHistogram, Style, outcome_label, progress_line, summary_lines

__all__ = ["Screen", "Tally", "redraw", "style_for", "terminal_width"]

# The progress line is redrawn this often (seconds), whether or not a URL
# finished: about five times a second looks live and costs nothing.
_PROGRESS_EVERY = 0.2
# Width assumed when the output is not a terminal (a pipe, a file).
_DEFAULT_WIDTH = 80


@dataclass
class Tally:
    """Everything the progress line and the summary show; constant size whatever the run."""

    started: float = field(default_factory=time.perf_counter)
    #: URLs taken from the input so far (done + in flight).
    pulled: int = 0
    #: Known once every URL is on the command line or in a file, or stdin ended.
    total: int | None = None
    ok: int = 0
    failed: int = 0
    total_bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Latencies of the URLs a server answered (errors have none worth showing).
    latencies: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def done(self) -> int:
        """URLs with a result."""
        return self.ok + self.failed

    def add(self, result: FetchResult) -> None:
        """Count one result."""
        if result.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.total_bytes += result.size
        self.outcomes[outcome_label(result.status, result.error)] += 1
        if result.status is not None:
            self.latencies.add(result.elapsed)


def terminal_width(stream: IO[str]) -> int | None:
    """Columns of the terminal ``stream`` writes to, or ``None`` when it is no terminal."""
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno()).columns or _DEFAULT_WIDTH
    except (OSError, ValueError):
        return None


def style_for(stream: IO[str], args: argparse.Namespace) -> Style:
    """Colours and Unicode on a terminal only; ``--no-color`` and ``NO_COLOR`` turn colours off."""
    if args.no_color or terminal_width(stream) is None:
        return Style()
    return Style(colour=not os.environ.get("NO_COLOR"), unicode=True)


class Screen:
    """Rows on ``out``, the progress line on ``err`` (a terminal), and the summary.

    When both go to one terminal, the progress line is wiped before each
    row and drawn again after it; it is always wiped before the summary and
    whenever the command ends, so the shell prompt comes back on a clean line.
    """

    def __init__(self, args: argparse.Namespace, out: IO[str], err: IO[str]) -> None:
        self._args = args
        self._out = out
        self._err = err
        self.show_progress = not args.quiet and terminal_width(err) is not None
        self._shared = self.show_progress and terminal_width(out) is not None
        self._drawn = False

    def row(self, line: str) -> None:
        self.clear()
        # Flushed row by row: a pipeline reading our output sees each result
        # as it lands, not when a buffer fills.
        print(line, file=self._out, flush=True)

    def row_width(self) -> int | None:
        return terminal_width(self._out)

    def draw(self, tally: Tally) -> None:
        if not self.show_progress:
            return
        width = terminal_width(self._err) or _DEFAULT_WIDTH
        line = progress_line(
            done=tally.done,
            total=tally.total,
            in_flight=max(0, tally.pulled - tally.done),
            failed=tally.failed,
            size=tally.total_bytes,
            elapsed=time.perf_counter() - tally.started,
            width=width,
            style=style_for(self._err, self._args),
        )
        self._err.write("\r\x1b[K" + line)
        self._err.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self._err.write("\r\x1b[K")
            self._err.flush()
            self._drawn = False

    def summary(self, tally: Tally, *, interrupted: bool) -> None:
        self.clear()
        # The table's summary ends the table on stdout; with --json stdout
        # holds only JSON, so the summary goes to a terminal on stderr or nowhere.
        if not self._args.json:
            target = self._out
        elif terminal_width(self._err) is not None:
            target = self._err
        else:
            return
        lines = summary_lines(
            outcomes=tally.outcomes,
            size=tally.total_bytes,
            elapsed=time.perf_counter() - tally.started,
            latencies=tally.latencies,
            width=terminal_width(target) or _DEFAULT_WIDTH,
            style=style_for(target, self._args),
            interrupted=interrupted,
            # Those in flight, and those never started when the total is known.
            unfinished=max(0, (tally.pulled if tally.total is None else tally.total) - tally.done),
            brief=self._args.quiet,
        )
        print("\n".join(lines), file=target, flush=True)


async def redraw(screen: Screen, tally: Tally) -> None:
    """Redraw the progress line on a timer, so a slow URL or a stalled run still shows life."""
    while True:
        screen.draw(tally)
        await asyncio.sleep(_PROGRESS_EVERY)
