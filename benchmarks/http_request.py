"""Speed of request building and content decoding, the per-request sans-IO work.

Prints, for each workload, the best of several timed rounds (the round least
disturbed by other load on the machine), and ratios to a standard-library
reference where one exists. Nothing is asserted.

* ``parse_url`` cached (the same URLs again, as a client fetching a site does)
  and uncached (every URL new), against :func:`urllib.parse.urlsplit`, which
  validates far less.
* A typical GET head: ``validate_method`` + ``validate_header_items`` +
  ``serialize_head`` with five caller headers.
* gzip decoding throughput through ``make_decoder("gzip")`` in 64 KiB input
  pieces, against one bare ``zlib.decompressobj`` call per piece (no output
  bound, no limits): the cost of bounded steps and the bomb check.
* With ``--gib N``: an N GiB gzip stream of ordinary text-like data decoded
  piece by piece, with the peak traced memory, to show that a large
  legitimate body passes the bomb check in flat memory.

    python benchmarks/http_request.py [--rounds 5] [--seconds 0.5] [--gib 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncnet._http._decoders import make_decoder
from asyncnet._http._request import (
    serialize_head,
    validate_header_items,
    validate_method,
)
from asyncnet._http._url import _parse, parse_url

URLS = [
    f"https://api{i % 7}.example.com:8443/v1/items/{i}?page={i % 13}&sort=asc" for i in range(500)
]
HEADERS = {
    "User-Agent": "asyncnet/0.1",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Authorization": "Bearer abcdefghijklmnopqrstuvwxyz0123456789",
    "X-Request-Id": "0f8fad5b-d9cb-469f-a165-70867728950e",
}


def best_rate(func: Callable[[], int], rounds: int, seconds: float) -> float:
    """Run ``func`` (which returns how many operations it did) repeatedly; best ops/s."""
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            done += func()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


def text_like(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    letters = b"abcdefghijklmnopqrstuvwxyz"
    words = [bytes(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(5000)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=200)) + b"\n"
    return bytes(out[:size])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--gib", type=float, default=0.0, help="also decode N GiB of gzip")
    args = parser.parse_args()
    rounds, seconds = args.rounds, args.seconds

    def cached() -> int:
        for u in URLS:
            parse_url(u)
        return len(URLS)

    def uncached() -> int:
        for u in URLS:
            _parse(u)
        return len(URLS)

    def stdlib() -> int:
        for u in URLS:
            urlsplit(u)
        return len(URLS)

    url = parse_url(URLS[0])

    def head() -> int:
        for _ in range(500):
            method = validate_method("GET")
            items = validate_header_items(HEADERS)
            serialize_head(method, url, items, None, chunked=False)
        return 500

    r_cached = best_rate(cached, rounds, seconds)
    r_uncached = best_rate(uncached, rounds, seconds)
    r_stdlib = best_rate(stdlib, rounds, seconds)
    r_head = best_rate(head, rounds, seconds)
    print(f"parse_url, cached:            {r_cached:12,.0f} URLs/s")
    print(f"parse_url, uncached:          {r_uncached:12,.0f} URLs/s")
    print(f"urllib.parse.urlsplit:        {r_stdlib:12,.0f} URLs/s")
    print(f"  ratio uncached/urlsplit:    {r_uncached / r_stdlib:12.2f}")
    print(f"GET head (validate+serialize):{r_head:12,.0f} requests/s")
    print(f"  head + cached parse_url:    {1 / (1 / r_head + 1 / r_cached):12,.0f} requests/s")

    data = text_like(8 << 20)
    encoded = gzip_bytes(data)
    pieces = [encoded[i : i + 65536] for i in range(0, len(encoded), 65536)]

    def ours() -> int:
        d = make_decoder("gzip")
        assert d is not None
        for piece in pieces:
            for _ in d.iter_decode(piece):
                pass
        d.flush()
        return len(data)

    def bare() -> int:
        d = zlib.decompressobj(31)
        for piece in pieces:
            d.decompress(piece)
        return len(data)

    r_ours = best_rate(ours, rounds, seconds)
    r_bare = best_rate(bare, rounds, seconds)
    print(
        f"gzip decode (ratio {len(data) / len(encoded):.1f}x), "
        f"asyncnet: {r_ours / 1e6:8.1f} MB/s out"
    )
    print(f"gzip decode, bare zlib:                  {r_bare / 1e6:8.1f} MB/s out")
    print(f"  ratio asyncnet/bare:                   {r_ours / r_bare:8.2f}")

    if args.gib:
        total = int(args.gib * (1 << 30))
        block = data[: 1 << 20]
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        blocks = total // len(block)
        d = make_decoder("gzip")
        assert d is not None
        tracemalloc.start()
        start = time.perf_counter()
        produced = 0
        compressed = 0
        for i in range(blocks + 1):
            raw = comp.compress(block) if i < blocks else comp.flush()
            compressed += len(raw)
            for j in range(0, len(raw), 65536):
                for out in d.iter_decode(raw[j : j + 65536]):
                    produced += len(out)
        produced += len(d.flush())
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{args.gib} GiB gzip stream ({compressed:,} bytes compressed): decoded {produced:,} "
            f"bytes, compress+decode {elapsed:.1f} s, peak traced memory {peak / 1e6:.1f} MB"
        )


def gzip_bytes(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


if __name__ == "__main__":
    main()
