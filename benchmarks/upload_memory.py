"""Client memory while a 1 GiB file is uploaded as multipart/form-data.

A server in its own process reads the request and throws the bytes away,
answering once the whole body has arrived. The client, in this process,
posts a sparse file of ``--size`` bytes (1 GiB by default; sparse, so it
costs no disk) with ``files={"upload": open(path, "rb")}``: the form is
streamed, the file read 64 KiB at a time and written only as fast as the
server takes it. Printed: the client's resident memory before, its peak
(``ru_maxrss``, which covers the whole run) and the growth, the bytes the
server counted and the throughput. ``--rate`` slows the server down (MB/s),
so that the upload is held back by backpressure rather than by the client.

Run from the repository root::

    python benchmarks/upload_memory.py                  # 1 GiB, server as fast as it can
    python benchmarks/upload_memory.py --size 256M --rate 200

Numbers only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import asyncnet  # noqa: E402


def _size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1:].upper()])
    return int(text)


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- server (its own process) ------------------------------------------------------------


async def _serve(rate: float | None) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        assert length is not None, "the benchmark's form has a known size"
        received = 0
        start = time.monotonic()
        while received < length:
            piece = await reader.read(min(256 * 1024, length - received))
            if not piece:
                return
            received += len(piece)
            if rate is not None:
                ahead = received / (rate * 1e6) - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        body = str(received).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.sleep(3600)


# -- client (this process) ----------------------------------------------------------------


async def _upload(port: int, path: str) -> tuple[int, float]:
    async with asyncnet.HTTPClient(timeout=600) as client:
        start = time.perf_counter()
        with open(path, "rb") as file:
            resp = await client.post(f"http://127.0.0.1:{port}/upload", files={"upload": file})
        elapsed = time.perf_counter() - start
        return int(resp.content), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=_size, default=1024**3, help="file size (e.g. 1G, 256M)")
    parser.add_argument("--rate", type=float, default=None, help="server read rate, MB/s")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.rate))
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"] + (["--rate", str(args.rate)] if args.rate else []),
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.NamedTemporaryFile(prefix="asyncnet-upload-") as file:
            file.truncate(args.size)  # sparse: reads as zeros, takes no disk
            file.flush()
            before = _rss_kib()
            received, elapsed = asyncio.run(_upload(port, file.name))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        server.terminate()
        server.wait()
    print(f"file size:          {args.size / 2**20:10.1f} MiB")
    print(f"server received:    {received / 2**20:10.1f} MiB (form included)")
    print(f"client RSS before:  {before / 1024:10.1f} MiB")
    print(f"client peak RSS:    {peak / 1024:10.1f} MiB")
    print(f"growth:             {(peak - before) / 1024:10.1f} MiB")
    print(f"throughput:         {received / elapsed / 1e6:10.1f} MB/s")


if __name__ == "__main__":
    main()
