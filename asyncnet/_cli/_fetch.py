"""The ``fetch`` subcommand: many URLs at once, a table or JSON lines, a clear exit status.

The formatting helpers are pure functions (a result in, a line out) so they
are tested without a network; :func:`run` wires them to :func:`fetch_iter`,
which holds no results, so the command's memory does not grow with the
number of URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from .._fetch import FetchResult, fetch_iter
from .._http._models import Timeout
from .._text import escape
from ._args import non_negative_int, positive_float, positive_int

__all__ = [
    "add_parser",
    "format_progress",
    "format_row",
    "format_size",
    "format_summary",
    "json_line",
    "read_urls",
    "run",
    "safe_filename",
    "short_error",
]

# Longest file name written by --output; most file systems allow 255 bytes.
_MAX_NAME = 120
# Longest error message in a table row or a JSON line: one line, readable.
_MAX_ERROR = 200
# Progress is redrawn at most this often (seconds): enough to look live,
# rare enough to cost nothing.
_PROGRESS_EVERY = 0.1


def read_urls(lines: Iterable[str]) -> list[str]:
    """Return the URLs in ``lines``, one per line; blank lines and ``#`` comments are skipped."""
    urls = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            urls.append(text)
    return urls


def short_error(error: BaseException) -> str:
    """One line naming the error: ``"ConnectError: connection refused"``.

    The message may quote what a server sent; it is escaped (see
    :func:`asyncnet._text.escape`) after runs of whitespace are joined.
    """
    message = escape(" ".join(str(error).split()))
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if len(text) > _MAX_ERROR:
        text = text[: _MAX_ERROR - 3] + "..."
    return text


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


def format_row(result: FetchResult) -> str:
    """One table line: status (or error class), size, time, URL, then the error message.

    The URL comes from the caller's list and the message from a server:
    both are escaped, so the line cannot drive the terminal.
    """
    head = type(result.error).__name__ if result.error is not None else f"{result.status}"
    size = "-" if result.error is not None else format_size(len(result.body))
    if result.truncated:
        size += "+"
    line = f"{head:<16} {size:>10} {result.elapsed:>8.3f}s  {escape(result.url)}"
    if result.error is not None:
        line += f"  ({short_error(result.error)})"
    elif result.attempts > 1:
        line += f"  ({result.attempts} attempts)"
    return line


def json_line(result: FetchResult) -> str:
    """One JSON object with exactly the keys url, ok, status, bytes, elapsed, error, attempts."""
    return json.dumps(
        {
            "url": result.url,
            "ok": result.ok,
            "status": result.status,
            "bytes": len(result.body),
            "elapsed": round(result.elapsed, 6),
            "error": None if result.error is None else short_error(result.error),
            "attempts": result.attempts,
        }
    )


def format_summary(ok: int, failed: int, total_bytes: int, wall: float) -> str:
    """The closing line: ok, failed, bytes, wall time and requests per second."""
    done = ok + failed
    rate = done / wall if wall > 0 else 0.0
    return (
        f"{ok} ok, {failed} failed, {format_size(total_bytes)} in {wall:.3f} s "
        f"({rate:.1f} requests/s)"
    )


def format_progress(done: int, total: int, failed: int, wall: float) -> str:
    """The live progress line drawn on a terminal."""
    rate = done / wall if wall > 0 else 0.0
    return f"{done}/{total} done, {failed} failed, {rate:.1f}/s"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(url: str) -> str:
    """A file name for ``url``'s body that cannot leave the output directory.

    Host, port and path are flattened into one name of letters, digits,
    ``.``, ``_`` and ``-`` (``http://h:8080/a/b.txt`` -> ``h_8080_a_b.txt``),
    never starting with a dot; a path ending in ``/`` gets ``index.html``.
    A query, or a name cut to length, adds a short hash of the whole URL so
    distinct URLs keep distinct names.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        parts = urlsplit("")
        host, port = "", None
    path = unquote(parts.path)
    if not path or path.endswith("/"):
        path += "index.html"
    pieces = [host] + ([str(port)] if port else []) + [p for p in path.split("/") if p]
    name = _UNSAFE.sub("_", "_".join(pieces)).strip("._-") or "download"
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    if parts.query or len(name) > _MAX_NAME or not (host or parts.path):
        stem, dot, ext = name[:_MAX_NAME].rpartition(".")
        if not dot or len(ext) > 8:
            stem, ext = name[:_MAX_NAME], ""
        name = f"{stem}-{digest}" + (f".{ext}" if ext else "")
    return name


def _write_body(directory: str, url: str, body: bytes) -> str:
    """Write ``body`` under ``directory`` with a fresh safe name; returns the path."""
    name = safe_filename(url)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    root = os.path.realpath(directory)
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{stem}~{n}" + (f".{ext}" if ext else "")
        path = os.path.join(root, candidate)
        # safe_filename already guarantees this; checked again because a
        # write outside the directory must be impossible, not unlikely.
        if os.path.dirname(path) != root:
            raise ValueError(f"refusing to write outside {root}: {candidate!r}")
        try:
            with open(path, "xb") as f:
                f.write(body)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free file name for {url} in {root}")


@dataclass
class _Tally:
    ok: int = 0
    failed: int = 0
    total_bytes: int = 0


def add_parser(subparsers: Any) -> None:
    """Register ``fetch`` on the top-level parser's subcommands."""
    parser = subparsers.add_parser(
        "fetch",
        help="fetch many URLs concurrently and report each one",
        description=(
            "Fetch URLs concurrently under limits and print one line per URL\n"
            "(status or error, size, time, URL), then a summary.\n\n"
            "Exit status: 0 when every URL answered 2xx/3xx, 1 when any failed,\n"
            "2 for bad usage."
        ),
        epilog=(
            "examples:\n"
            "  python -m asyncnet fetch http://127.0.0.1:8000/ http://127.0.0.1:8000/a\n"
            "  python -m asyncnet fetch -i urls.txt --concurrency 50 --json\n"
            "  cat urls.txt | python -m asyncnet fetch -i - --output pages/"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("urls", nargs="*", metavar="URL", help="URLs to fetch")
    parser.add_argument(
        "-i",
        "--input",
        metavar="FILE",
        help=(
            "read URLs from FILE, one per line ('-' for stdin; "
            "blank lines and # comments skipped)"
        ),
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=10, metavar="N",
        help="requests in flight at most (default 10)",
    )
    parser.add_argument(
        "--per-host", type=positive_int, default=None, metavar="N",
        help="requests in flight per host at most (default: no per-host limit)",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=30.0, metavar="S",
        help="connect, read and write timeout per request in seconds (default 30)",
    )
    parser.add_argument(
        "--deadline", type=positive_float, default=None, metavar="S",
        help="stop everything after S seconds; unfinished URLs fail with a timeout",
    )
    parser.add_argument(
        "--retries", type=non_negative_int, default=0, metavar="N",
        help="retry GETs up to N times on connection errors, timeouts, 429 and 502-504",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON object per URL (url, ok, status, bytes, elapsed, error, attempts)",
    )
    parser.add_argument(
        "--output", metavar="DIR",
        help="write each successful body to a new file in DIR, named safely from its URL",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress line, and in the table only failed URLs and the summary",
    )
    parser.set_defaults(run=run, _parser=parser)


def _collect_urls(args: argparse.Namespace, stdin: IO[str]) -> list[str]:
    urls = list(args.urls)
    if args.input == "-":
        urls += read_urls(stdin)
    elif args.input is not None:
        with open(args.input, encoding="utf-8") as f:
            urls += read_urls(f)
    return urls


def run(args: argparse.Namespace) -> int:
    """Run ``fetch`` with parsed arguments; returns the exit status."""
    parser: argparse.ArgumentParser = args._parser
    try:
        urls = _collect_urls(args, sys.stdin)
    except OSError as exc:
        parser.error(f"cannot read URLs from {args.input}: {exc.strerror or exc}")
    if not urls:
        parser.error("no URLs given (pass them as arguments or with -i FILE)")
    if args.output is not None and not os.path.isdir(args.output):
        parser.error(f"--output {args.output}: not a directory")
    try:
        tally = asyncio.run(_fetch(args, urls, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        return 130
    return 0 if tally.failed == 0 else 1


async def _fetch(
    args: argparse.Namespace, urls: list[str], out: IO[str], err: IO[str]
) -> _Tally:
    tally = _Tally()
    show_progress = not args.quiet and err.isatty()
    # When rows and the progress line share one terminal, the progress line
    # is wiped before each row and drawn again after it.
    shared_screen = show_progress and out.isatty()
    drawn = False
    started = last_draw = time.perf_counter()
    timeout = Timeout(
        connect=args.timeout, read=args.timeout, write=args.timeout, pool=None, total=None
    )
    results = fetch_iter(
        urls,
        concurrency=args.concurrency,
        per_host=args.per_host,
        timeout=timeout,
        deadline=args.deadline,
        retries=args.retries,
    )
    async with contextlib.aclosing(results):
        async for result in results:
            ok = result.ok
            if args.output is not None and ok:
                try:
                    _write_body(args.output, result.url, result.body)
                except (OSError, ValueError) as exc:
                    ok = False
                    where = escape(result.url)
                    print(f"cannot write the body of {where}: {escape(str(exc))}", file=err)
            if ok:
                tally.ok += 1
            else:
                tally.failed += 1
            tally.total_bytes += len(result.body)
            line = None
            if args.json:
                line = json_line(result)
            elif not args.quiet or not ok:
                line = format_row(result)
            if line is not None:
                if shared_screen and drawn:
                    err.write("\r\x1b[K")
                    err.flush()
                    drawn = False
                print(line, file=out)
                if shared_screen:
                    out.flush()
            now = time.perf_counter()
            if show_progress and (not drawn or now - last_draw >= _PROGRESS_EVERY):
                done = tally.ok + tally.failed
                progress = format_progress(done, len(urls), tally.failed, now - started)
                err.write("\r\x1b[K" + progress)
                err.flush()
                drawn = True
                last_draw = now
    wall = time.perf_counter() - started
    if drawn:
        err.write("\r\x1b[K")
        err.flush()
    summary = format_summary(tally.ok, tally.failed, tally.total_bytes, wall)
    if not args.json:
        print(summary, file=out)
    elif err.isatty():
        print(summary, file=err)
    return tally
