"""Memory of a large download streamed through ``aiter_bytes()`` by a slow consumer.

A server in another process sends ``--size`` bytes (1 GiB by default) as one
response with a Content-Length, as fast as loopback allows. The client reads
it with ``client.stream()`` + ``aiter_bytes()`` and pauses ``--delay`` seconds
after every chunk, so it consumes far slower than the server sends. Printed:
the growth of this process's peak RSS during the download, the most body
bytes the connection ever buffered, how often reading was paused, and the
throughput. With backpressure the RSS growth stays near ``--buffer`` plus one
socket read, whatever ``--size``; without it, it would approach ``--size``.

    python benchmarks/stream_memory.py                    # 1 GiB, 1 MiB buffer
    python benchmarks/stream_memory.py --size 64M --delay 0.0002

Numbers only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import asyncnet  # noqa: E402

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    SIZE = int(sys.argv[1])
    BLOCK = b"z" * (256 * 1024)

    async def handle(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % SIZE)
        left = SIZE
        while left > 0:
            piece = BLOCK if left >= len(BLOCK) else BLOCK[:left]
            writer.write(piece)
            left -= len(piece)
            await writer.drain()
        await reader.read()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.wait_for(server.serve_forever(), 3600)

    asyncio.run(main())
    """
)


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def peak_rss_kib() -> int:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def run(size: int, delay: float, buffer: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(size)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}/"
        rss_before = peak_rss_kib()
        received = 0
        chunks = 0
        started = time.perf_counter()
        async with asyncnet.HTTPClient(body_buffer=buffer, timeout=None) as client:
            async with client.stream("GET", url) as resp:
                async for chunk in resp.aiter_bytes():
                    received += len(chunk)
                    chunks += 1
                    if delay:
                        await asyncio.sleep(delay)
            stats = client.statistics()
        elapsed = time.perf_counter() - started
        rss_after = peak_rss_kib()
    finally:
        proc.kill()
        proc.wait()
    print(f"python {sys.version.split()[0]}, body {size} bytes, buffer {buffer}, "
          f"delay {delay} s per chunk")
    print(f"received              {received} bytes in {chunks} chunks, {elapsed:.1f} s "
          f"({received / elapsed / 1e6:.0f} MB/s)")
    print(f"peak RSS growth       {(rss_after - rss_before) / 1024:.1f} MiB "
          f"(body is {size / 2**20:.0f} MiB)")
    print(f"peak body buffered    {stats.peak_body_buffered / 1024:.0f} KiB "
          f"(limit {buffer / 1024:.0f} KiB + one read of at most 256 KiB)")
    print(f"read pauses           {stats.read_pauses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="body size, e.g. 1G, 64M (default 1G)")
    parser.add_argument("--delay", type=float, default=0.0001,
                        help="seconds the consumer sleeps after each chunk (default 0.0001)")
    parser.add_argument("--buffer", default="1M", help="client body_buffer (default 1M)")
    args = parser.parse_args()
    asyncio.run(run(parse_size(args.size), args.delay, parse_size(args.buffer)))


if __name__ == "__main__":
    main()
