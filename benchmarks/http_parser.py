"""Throughput of asyncnet's HTTP/1.1 response parser, against h11 and aiohttp's.

Prints, for each workload, the best of several timed rounds (the round least
disturbed by other load on the machine): responses per second for small
responses, MB/s for large and chunked bodies, and the ratios of asyncnet to
h11 (pure Python) and to aiohttp's C parser (``aiohttp._http_parser``, built
on llhttp). Those two run under ``/opt/benchvenv/bin/python`` in subprocesses,
so neither becomes a dependency. Nothing is asserted.

Only parsing is timed: feeding the reads of one response and taking its
events until the end of the message (for aiohttp: ``feed_data`` and draining
the payload with ``read_nowait``). h11 also needs a request sent per
response; that happens outside the timed region.

    python benchmarks/http_parser.py [--rounds 5] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = "/opt/benchvenv/bin/python"

SMALL_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.22.1\r\n"
    b"Date: Tue, 24 Nov 2026 16:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Length: 100\r\n"
    b"Last-Modified: Tue, 24 Nov 2026 15:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b'ETag: "6743c8f0-64"\r\n'
    b"Accept-Ranges: bytes\r\n"
    b"\r\n"
)
SMALL = SMALL_HEAD + b"x" * 100
LARGE_BODY = 1024 * 1024
LARGE_HEAD = SMALL_HEAD.replace(b"Content-Length: 100", b"Content-Length: %d" % LARGE_BODY)
READ_SIZE = 64 * 1024


def _chunked(body_size: int, chunk: int) -> bytes:
    head = SMALL_HEAD.replace(b"Content-Length: 100", b"Transfer-Encoding: chunked")
    piece = b"%x\r\n" % chunk + b"y" * chunk + b"\r\n"
    return head + piece * (body_size // chunk) + b"0\r\n\r\n"


CHUNKED = _chunked(LARGE_BODY, 16 * 1024)


def _nginx_chunked_reads() -> list[bytes]:
    """64 KiB as 16 chunks of 4 KiB, in the four reads a client saw from nginx.

    nginx writes whole chunks, each read ending right after a chunk's CRLF:
    head and one chunk, then three, nine, and three chunks with the last chunk.
    """
    raw = _chunked(64 * 1024, 4 * 1024)
    piece = len(b"1000\r\n") + 4 * 1024 + 2
    head = len(raw) - 16 * piece - len(b"0\r\n\r\n")
    cuts = [0, head + piece, head + 4 * piece, head + 13 * piece, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(cuts)]


def _reads(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


WORKLOADS: dict[str, tuple[list[bytes], int, str]] = {
    # name -> (reads of one response, unit size for the rate, unit)
    "small (100 B body, 9 fields, one read)": ([SMALL], 1, "responses/s"),
    "1 MiB Content-Length body, 64 KiB reads": (
        _reads(LARGE_HEAD + b"z" * LARGE_BODY, READ_SIZE),
        LARGE_BODY,
        "MB/s",
    ),
    "1 MiB chunked body (16 KiB chunks), 64 KiB reads": (
        _reads(CHUNKED, READ_SIZE),
        LARGE_BODY,
        "MB/s",
    ),
    "64 KiB chunked (16 x 4 KiB), in nginx's 4 reads": (
        _nginx_chunked_reads(),
        1,
        "responses/s",
    ),
    "small response fed 1 byte per read": (_reads(SMALL, 1), 1, "responses/s"),
}


def _asyncnet_runner(reads: list[bytes]) -> Callable[[], float]:
    sys.path.insert(0, str(ROOT))
    from asyncnet._http._parser import EndOfMessage, ResponseParser

    parser = ResponseParser()

    def once() -> float:
        start = time.perf_counter()
        parser.start_response("GET")
        events = parser.events
        for data in reads:
            last = events(data)
        assert type(last[-1]) is EndOfMessage and parser.keep_alive
        return time.perf_counter() - start

    return once


def _h11_runner(reads: list[bytes]) -> Callable[[], float]:
    import h11

    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target="/", headers=[("Host", "localhost")])

    def once() -> float:
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(request)
        conn.send(h11.EndOfMessage())
        start = time.perf_counter()
        done = False
        for data in reads:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    break
                if type(event) is h11.EndOfMessage:
                    done = True
                    break
        elapsed = time.perf_counter() - start
        assert done
        return elapsed

    return once


def _aiohttp_runner(reads: list[bytes]) -> Callable[[], float]:
    import asyncio

    from aiohttp._http_parser import HttpResponseParser
    from aiohttp.base_protocol import BaseProtocol

    loop = asyncio.new_event_loop()
    parser = HttpResponseParser(BaseProtocol(loop), loop, 2**16, timer=None, auto_decompress=False)

    def once() -> float:
        start = time.perf_counter()
        payload = None
        for data in reads:
            messages, _, _ = parser.feed_data(data)
            if messages:
                payload = messages[0][1]
            if payload is not None:
                payload.read_nowait(-1)
        elapsed = time.perf_counter() - start
        assert payload is not None and payload.is_eof()
        return elapsed

    return once


RUNNERS = {"asyncnet": _asyncnet_runner, "h11": _h11_runner, "aiohttp": _aiohttp_runner}


def measure(impl: str, rounds: int, seconds: float) -> dict[str, float]:
    """Median rate per workload for one implementation (runs in this process)."""
    results: dict[str, float] = {}
    for name, (reads, unit, _) in WORKLOADS.items():
        runner = RUNNERS[impl](reads)
        for _ in range(3):
            runner()  # warm up
        rates = []
        for _ in range(rounds):
            count = 0
            busy = 0.0
            wall_end = time.perf_counter() + seconds
            while time.perf_counter() < wall_end:
                busy += runner()
                count += 1
            rates.append(count * unit / busy)
        results[name] = max(rates)
    return results


def linearity() -> list[tuple[int, float]]:
    """Seconds to parse a head of N bytes fed one byte per read (should grow linearly)."""
    sys.path.insert(0, str(ROOT))
    from asyncnet._http._parser import ParserLimits, ResponseParser

    out = []
    for fields in (50, 100, 200):
        raw = (
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-F-%03d: %s\r\n" % (i, b"v" * 300) for i in range(fields))
            + b"Content-Length: 0\r\n\r\n"
        )
        parser = ResponseParser(ParserLimits(max_head_size=1 << 20, max_header_count=1000))
        parser.start_response("GET")
        start = time.perf_counter()
        for i in range(len(raw)):
            parser.events(raw[i : i + 1])
        out.append((len(raw), time.perf_counter() - start))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--impl", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impl:
        print(json.dumps(measure(args.impl, args.rounds, args.seconds)))
        return 0

    results = {"asyncnet": measure("asyncnet", args.rounds, args.seconds)}
    others = ["h11", "aiohttp"]
    for impl in others:
        if not os.path.exists(BENCH_PYTHON):
            print(f"{impl} not measured: {BENCH_PYTHON} is missing")
            continue
        cmd = [
            BENCH_PYTHON,
            __file__,
            "--impl",
            impl,
            "--rounds",
            str(args.rounds),
            "--seconds",
            str(args.seconds),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            results[impl] = json.loads(proc.stdout)
        else:
            print(f"{impl} not measured: {proc.stderr.strip().splitlines()[-1:]}")
    print(f"python {sys.version.split()[0]}, best of {args.rounds} rounds of {args.seconds}s")
    columns = [impl for impl in ["asyncnet", *others] if impl in results]
    header = f"{'workload':50}" + "".join(f"{c:>12}" for c in columns)
    header += "".join(f"{'vs ' + c:>12}" for c in columns[1:])
    print(header)
    for name, (_, _unit, label) in WORKLOADS.items():
        scale = 1e6 if label == "MB/s" else 1
        rates = [results[c][name] / scale for c in columns]
        line = f"{name:50}" + "".join(f"{r:>12,.0f}" for r in rates)
        line += "".join(f"{rates[0] / r:>11.2f}x" for r in rates[1:])
        print(line + f"  {label}")
    print("\nhead fed 1 byte per read (linear scanning: time grows with size, not its square)")
    for size, secs in linearity():
        print(f"  {size:>7} bytes: {secs * 1000:8.1f} ms  ({secs / size * 1e6:.2f} us/byte)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
