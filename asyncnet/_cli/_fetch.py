"""The ``fetch`` subcommand: many URLs at once, a table or JSON lines, a clear exit status.

The row helpers here are pure functions (a result in, a line out) so they
are tested without a network; :func:`run` wires them to :func:`fetch_iter`.
What a terminal shows lives beside it: ``_progress`` (the progress line and
the summary, pure), ``_screen`` (where and when they are written) and
``_output`` (``--output`` files).
Memory stays bounded however many URLs and however large the bodies:
fetch_iter holds no results, URLs are read as workers free up (so ``-i -``
answers while its producer is still writing), and bodies are never kept:
they are counted, and with ``--output`` streamed to their files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

from .._errors import InvalidURL, UsageError
from .._fetch import FetchResult, fetch_iter
from .._http._auth import BasicAuth
from .._http._client import HTTPClient
from .._http._models import Limits, Timeout
from .._http._proxy import parse_proxy_url, proxies_from_env
from .._http._request import validate_header_items, validate_method
from .._http._rules import IDEMPOTENT_METHODS
from .._text import escape
from ._args import non_negative_float, non_negative_int, positive_float, positive_int
from ._output import body_sink, prepare_output, safe_filename
from ._progress import (
    Style,
    format_duration,
    format_size,
    outcome_label,
    plural,
    shorten_middle,
    truncate,
)
from ._screen import Screen, Tally, redraw, style_for

__all__ = [
    "add_parser",
    "error_detail",
    "format_row",
    "format_size",
    "iter_urls",
    "json_line",
    "read_urls",
    "run",
    "safe_filename",
    "short_error",
]

# Longest error message in a table row or a JSON line: one line, readable.
_MAX_ERROR = 200
# Columns of a table row before the URL: status or error class, size, time.
_HEAD_WIDTH = 16
_SIZE_WIDTH = 10
_TIME_WIDTH = 9
# On a terminal a URL keeps at least this many characters (or all of it)
# when it shares the row with an error text.
_MIN_URL = 24
# Below this many characters left beside the URL, an error text goes on a
# line of its own under the row instead of being cut to nothing.
_MIN_DETAIL = 20
# Default --max-time (seconds) for one request, body included: curl has none,
# but a fetcher of many URLs must not let one server that drips a byte just
# inside --timeout hold a worker for ever; a minute fits any page or file a
# healthy server sends at a sane rate.
DEFAULT_MAX_TIME = 60.0
# Longest line read from standard input: a URL list line longer than this is
# not a URL, and reading it whole would let the producer set our memory.
_MAX_LINE = 64 * 1024


def iter_urls(lines: Iterable[str]) -> Iterator[str]:
    """Yield the URLs in ``lines`` one at a time; blank lines and ``#`` comments are skipped."""
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            yield text


def read_urls(lines: Iterable[str]) -> list[str]:
    """Return the URLs in ``lines``, one per line; blank lines and ``#`` comments are skipped."""
    return list(iter_urls(lines))


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


def error_detail(error: BaseException, url: str) -> str:
    """What a table row says about ``error``: its message without the class name or the URL.

    The row already shows the class in its first column and the URL before
    the message, so a message that repeats either (``InvalidURL`` quotes
    the URL, ``ConnectError`` names its host and port) loses the repeat.
    The text is escaped and on one line.
    """
    message = " ".join(str(error).split())
    if not message:
        return ""
    for form in (repr(url), url):
        message = message.replace(f": {form}", "").replace(form, "the URL")
    try:
        netloc = urlsplit(url).netloc.rpartition("@")[2]
    except ValueError:
        netloc = ""
    if netloc:
        for form in (netloc, netloc.lower()):
            message = message.replace(f" to {form}:", ":").replace(f" of {form} ", " ")
    return escape(message)


def format_row(
    result: FetchResult, *, width: int | None = None, style: Style | None = None
) -> str:
    """One table line: status (or error class), size, time, URL, then what went wrong.

    The URL comes from the caller's list and the message from a server:
    both are escaped, so the line cannot drive the terminal. With ``width``
    (a terminal's) the line fits it: a long URL loses its middle and the
    error text its end, or moves to a second, indented line when the
    terminal is too narrow to share one; without it (a pipe) the row is one
    line and kept in full.
    """
    style = style or Style()
    error = result.error
    head = type(error).__name__ if error is not None else f"{result.status}"
    size = "-" if error is not None else format_size(result.size)
    if result.truncated:
        size += "+"
    url = escape(result.url)
    notes = []
    if error is not None:
        detail = error_detail(error, result.url)
        if detail:
            notes.append(detail)
    if result.attempts > 1:
        notes.append(plural(result.attempts, "attempt"))
    detail = f"({'; '.join(notes)})" if notes else ""
    if width is None and len(detail) > _MAX_ERROR:
        detail = detail[: _MAX_ERROR - 4] + "...)"
    took = format_duration(result.elapsed)
    prefix = f"{head:<{_HEAD_WIDTH}} {size:>{_SIZE_WIDTH}} {took:>{_TIME_WIDTH}}  "
    below = ""
    if width is not None:
        room = max(1, width - 1 - len(prefix))
        if len(url) + (len(detail) + 2 if detail else 0) > room:
            url_room = min(len(url), max(_MIN_URL, room // 2))
            if detail and room - url_room - 2 < _MIN_DETAIL:
                # Too narrow to share the row: the error text gets a line of its own.
                below = "    " + truncate(detail, max(1, width - 5), style)
                detail = ""
            elif detail:
                # The URL keeps a fair share; the error text takes the rest.
                detail = truncate(detail, room - url_room - 2, style)
                url_room = room - len(detail) - 2
            url = shorten_middle(url, max(1, url_room if detail else room), style)
    line = f"{url}  {detail}" if detail else url
    if below:
        line += "\n" + below
    if style.colour:
        role = outcome_label(result.status, error)
        role = role if role in ("2xx", "3xx", "4xx", "5xx") else "error"
        painted = style.paint(head, role) + " " * (_HEAD_WIDTH - len(head))
        return painted + prefix[max(_HEAD_WIDTH, len(head)) :] + line
    return prefix + line


def json_line(result: FetchResult) -> str:
    """One JSON object with exactly the keys url, ok, status, bytes, elapsed, error, attempts."""
    return json.dumps(
        {
            "url": result.url,
            "ok": result.ok,
            "status": result.status,
            "bytes": result.size,
            "elapsed": round(result.elapsed, 6),
            "error": None if result.error is None else short_error(result.error),
            "attempts": result.attempts,
        }
    )


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
            "  cat urls.txt | python -m asyncnet fetch -i - --output pages/\n"
            "  python -m asyncnet fetch -X PUT -H 'Content-Type: application/json' \\\n"
            "      --data-binary @doc.json -u alice:s3cret http://127.0.0.1:8000/doc"
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
        "--max-time", type=non_negative_float, default=DEFAULT_MAX_TIME, metavar="S",
        help=(
            "total time for one request, body included, however steadily the server "
            f"drips (default {DEFAULT_MAX_TIME:g}; 0 for none); each retry gets its own"
        ),
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
        help=(
            "stream each successful body to a new file in DIR, named safely from its URL "
            "(without it bodies are counted, never kept)"
        ),
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress line, and in the table only failed URLs and the summary's first line",
    )
    parser.add_argument(
        "--no-color", action="store_true",
        help=(
            "no colours and plain ASCII even on a terminal (colours are also off "
            "when NO_COLOR is set)"
        ),
    )
    request = parser.add_argument_group("request (curl's spellings)")
    request.add_argument(
        "-X", "--method", metavar="METHOD", default=None,
        help="request method (default GET, or POST with -d/--data-binary)",
    )
    request.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable)",
    )
    request.add_argument(
        "-d", "--data", action="append", default=None, metavar="DATA",
        help=(
            "send DATA as an application/x-www-form-urlencoded body (repeatable, joined "
            "with '&'); @FILE reads it from FILE without its line breaks"
        ),
    )
    request.add_argument(
        "--data-binary", metavar="DATA", default=None,
        help="send DATA, or the bytes of @FILE exactly, as the body",
    )
    request.add_argument(
        "-u", "--user", metavar="USER:PASSWORD", default=None,
        help="HTTP Basic credentials, sent only to each URL's own origin",
    )
    request.add_argument(
        "--cookies", action="store_true",
        help="keep cookies in one jar for the run: every URL and redirect hop uses it",
    )
    request.add_argument(
        "--max-body", type=non_negative_int, default=None, metavar="BYTES",
        help="keep or write at most BYTES of each body; the rest is discarded (marked '+')",
    )
    route = parser.add_argument_group(
        "where connections go (curl's spellings)"
    ).add_mutually_exclusive_group()
    route.add_argument(
        "--proxy", metavar="URL",
        help=(
            "send every request through this proxy (http://, https://, socks5:// or "
            "socks5h://, with optional user:password@); NO_PROXY still applies. Without it "
            "HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY are honoured, as curl does"
        ),
    )
    route.add_argument(
        "--no-proxy", action="store_true",
        help="ignore the proxy environment variables and connect directly",
    )
    route.add_argument(
        "--unix-socket", metavar="PATH",
        help=(
            "connect to this Unix-domain socket for every URL (Host and path still come "
            "from the URL, e.g. http://localhost/v1.43/info); proxies do not apply"
        ),
    )
    parser.set_defaults(run=run, _parser=parser)


class _BadInput(Exception):
    """The URL list cannot be read on (a line beyond ``_MAX_LINE``): the run stops."""


async def _stdin_urls(stdin: IO[str]) -> AsyncIterator[str]:
    """Yield URLs from standard input as its lines arrive, without blocking the loop.

    A pipe, socket or terminal is read through the event loop, so results
    are printed while the producer is still writing; the reader's buffer
    bounds what is read ahead. A regular file or ``/dev/null`` cannot block
    (and the loop's readiness polling refuses them), so it is read directly.
    """
    fd = stdin.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))):
        for url in iter_urls(stdin):
            yield url
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_MAX_LINE)
    was_blocking = os.get_blocking(fd)
    # A duplicate, so closing the transport leaves sys.stdin's descriptor open.
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # the reader's limit: no newline within _MAX_LINE bytes
                raise _BadInput(
                    f"a line of standard input is longer than {_MAX_LINE} bytes"
                ) from None
            if not line:
                break
            for url in iter_urls([line.decode("utf-8", "replace")]):
                yield url
    finally:
        transport.close()
        # The file description is shared with whoever gave us stdin (a
        # shell's terminal): leave it blocking, as it was.
        os.set_blocking(fd, was_blocking)


def _open_input(args: argparse.Namespace) -> IO[str] | None:
    """Open ``--input FILE`` now, so a missing file is a usage error before any request."""
    if args.input is None or args.input == "-":
        return None
    return open(args.input, encoding="utf-8", errors="replace")


def _count_urls(listing: IO[str]) -> int | None:
    """How many URLs a seekable ``--input`` file holds (one streaming pass), for the ETA."""
    try:
        if not listing.seekable():
            return None
        count = sum(1 for _ in iter_urls(listing))
        listing.seek(0)
    except (OSError, ValueError):
        return None
    return count


async def _url_source(
    args: argparse.Namespace, listing: IO[str] | None, stdin: IO[str], tally: Tally
) -> AsyncIterator[str]:
    """The URLs given as arguments, then those of ``--input``, read lazily and counted."""
    for url in args.urls:
        tally.pulled += 1
        yield url
    if args.input == "-":
        async for url in _stdin_urls(stdin):
            tally.pulled += 1
            yield url
    elif listing is not None:
        for url in iter_urls(listing):
            tally.pulled += 1
            yield url
    # Once the input has ended, how many there are is no longer a guess.
    tally.total = tally.pulled


# Framing headers are the client's to write: one given by hand would
# contradict the body it frames.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "host"})


def _read_data(value: str, parser: argparse.ArgumentParser, option: str, binary: bool) -> bytes:
    """A ``-d``/``--data-binary`` value: the text itself, or ``@FILE``'s bytes."""
    if not value.startswith("@"):
        return value.encode("utf-8")
    path = value[1:]
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        parser.error(f"{option} {escape(value)}: {exc.strerror or exc}")
    # curl's -d @FILE drops CR and LF; --data-binary keeps every byte.
    return data if binary else data.replace(b"\r", b"").replace(b"\n", b"")


def _request_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Check the request options together and turn them into fetch_iter's arguments.

    Sets ``args.request_method``, ``args.request_headers``, ``args.body`` and
    ``args.auth``; a bad value or a contradictory combination exits 2.
    """
    if args.data is not None and args.data_binary is not None:
        parser.error("-d/--data and --data-binary cannot be combined: pick one body")
    body: bytes | None = None
    if args.data is not None:
        body = b"&".join(_read_data(v, parser, "-d", binary=False) for v in args.data)
    elif args.data_binary is not None:
        body = _read_data(args.data_binary, parser, "--data-binary", binary=True)
    method = args.method or ("POST" if body is not None else "GET")
    try:
        method = validate_method(method)
    except UsageError as exc:
        parser.error(f"-X/--method: {exc}")
    if body is not None and method in ("GET", "HEAD"):
        parser.error(f"-X {method} sends no body: drop -d/--data-binary or use POST or PUT")
    headers: list[tuple[str, str]] = []
    for raw in args.header:
        name, colon, value = raw.partition(":")
        if not colon or not name.strip():
            parser.error(f"-H {escape(raw)!r}: expected 'Name: value'")
        if name.strip().lower() in _FRAMING_HEADERS:
            parser.error(f"-H {escape(name.strip())}: that header is set by the client")
        headers.append((name.strip(), value.strip()))
    try:
        headers = validate_header_items(headers)
    except UsageError as exc:
        parser.error(f"-H: {escape(str(exc))}")
    if body is not None and args.data is not None and not any(
        name.lower() == "content-type" for name, _ in headers
    ):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    auth = None
    if args.user is not None:
        user, colon, password = args.user.partition(":")
        if not colon:
            parser.error("-u/--user needs USER:PASSWORD (there is no password prompt)")
        try:
            auth = BasicAuth(user, password)
        except UsageError as exc:
            parser.error(f"-u/--user: {escape(str(exc))}")
    if args.retries and method not in IDEMPOTENT_METHODS:
        parser.error(f"--retries would resend a {method}, which is not idempotent")
    args.request_method = method
    args.request_headers = headers or None
    args.body = body
    args.auth = auth


def run(args: argparse.Namespace) -> int:
    """Run ``fetch`` with parsed arguments; returns the exit status (130 after Ctrl-C)."""
    parser: argparse.ArgumentParser = args._parser
    _request_options(args, parser)
    if not args.urls and args.input is None:
        # Nothing to do is not a mistake (a script's list may be empty), but
        # a person who typed only "fetch" is shown where the URLs go.
        print("0 URLs")
        print("fetch: no URLs given (pass them as arguments or with -i FILE; see --help)",
              file=sys.stderr)
        return 0
    if args.output is not None:
        prepare_output(parser, args.output)
    try:
        listing = _open_input(args)
    except OSError as exc:
        parser.error(f"cannot read URLs from {args.input}: {exc.strerror or exc}")
    try:
        # Checked now, outside the loop, so a bad proxy URL (given, or in the
        # environment) is a usage error before any request.
        routing = _routing(args, os.environ)
    except InvalidURL as exc:
        if listing is not None:
            listing.close()
        parser.error(escape(str(exc)))
    try:
        tally = asyncio.run(_fetch(args, listing, sys.stdin, sys.stdout, sys.stderr, routing))
    except KeyboardInterrupt:
        # The summary is already out (see _fetch); no traceback for a Ctrl-C.
        return 130
    except _BadInput as exc:
        print(f"fetch: cannot read URLs: {exc}", file=sys.stderr)
        return 2
    finally:
        if listing is not None:
            listing.close()
    return 0 if tally.failed == 0 else 1


def _routing(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The client's ``proxy``/``trust_env``/``uds`` arguments from the options.

    Like curl, the command honours the proxy environment unless told
    otherwise. The proxy settings are checked now (raising
    :class:`~asyncnet.InvalidURL`), so that building the client cannot fail
    on them later.
    """
    if args.unix_socket is not None:
        return {"uds": args.unix_socket}
    if args.no_proxy:
        return {"trust_env": False}
    if args.proxy is not None:
        parse_proxy_url(args.proxy)
    proxies_from_env(environ)
    return {"proxy": args.proxy, "trust_env": True}


async def _fetch(
    args: argparse.Namespace,
    listing: IO[str] | None,
    stdin: IO[str],
    out: IO[str],
    err: IO[str],
    routing: dict[str, Any] | None = None,
) -> Tally:
    tally = Tally()
    screen = Screen(args, out, err)
    timeout = Timeout(
        connect=args.timeout,
        read=args.timeout,
        write=args.timeout,
        pool=None,
        total=args.max_time or None,
    )
    if args.input is None:
        tally.total = len(args.urls)
    elif listing is not None:
        counted = _count_urls(listing)
        tally.total = None if counted is None else len(args.urls) + counted
    # The client fetch_iter would make, plus where its connections go.
    client = HTTPClient(
        cookies=args.cookies,
        timeout=timeout,
        limits=Limits(
            max_connections=args.concurrency,
            max_per_host=min(args.per_host or args.concurrency, args.concurrency),
        ),
        **(routing if routing is not None else {"trust_env": False}),
    )
    results = fetch_iter(
        _url_source(args, listing, stdin, tally),
        client=client,
        concurrency=args.concurrency,
        per_host=args.per_host,
        timeout=timeout,
        deadline=args.deadline,
        retries=args.retries,
        sink=body_sink(args.output),
        method=args.request_method,
        headers=args.request_headers,
        body=args.body,
        auth=args.auth,
        max_body=args.max_body,
    )
    row_style = style_for(out, args)
    redrawing = asyncio.create_task(redraw(screen, tally)) if screen.show_progress else None
    interrupted = completed = False
    try:
        async with client, contextlib.aclosing(results):
            async for result in results:
                tally.add(result)
                line = None
                if args.json:
                    line = json_line(result)
                elif not args.quiet or not result.ok:
                    line = format_row(result, width=screen.row_width(), style=row_style)
                if line is not None:
                    screen.row(line)
                    if screen.show_progress:
                        screen.draw(tally)
        completed = True
    except asyncio.CancelledError:
        # Ctrl-C: asyncio.run cancels us, then raises KeyboardInterrupt.
        interrupted = True
        raise
    finally:
        if redrawing is not None:
            redrawing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await redrawing
        screen.clear()
        if completed or interrupted:
            screen.summary(tally, interrupted=interrupted)
    return tally
