"""Pipelined decoding: frames per second, asyncnet's framers vs asyncio streams.

Two framings, both 32 bytes a frame on the wire: text lines (31 letters and
``\\n``) and frames with a 4-byte big-endian length prefix (28-byte payload).
Two ways to decode them, each contestant in its own process pinned with
``taskset`` to ``--server-cpu``:

* ``alone``: no socket. The byte stream, cut into 64 KiB pieces (a large
  read), is fed to the decoder in-process: ``Lines().decoder().feed(piece)``
  or ``LengthPrefixed().decoder().feed(piece)``, against a
  ``StreamReader`` fed the same pieces with ``feed_data`` while a task runs
  ``async for line in reader`` (lines) or ``readexactly(4)`` then
  ``readexactly(n)`` (length prefixes).
* ``socket``: a real loopback connection. A client process pinned to
  ``--client-cpu`` sends the whole stream at once (``sendall``, pipelined,
  nothing read back) and half-closes; the server decodes with ``async for
  frame in conn`` (``asyncnet.start_server``) or with the streams loops
  above (``asyncio.start_server``), counting frames, from the first byte to
  the end of the stream.

Reported: median frames per second and CPU time per frame of the decoding
process (user + system) over the repetitions, and the paired ratio
asyncnet/streams (the median over repetitions of the ratio within one
repetition, whose runs are seconds apart). Issue 15's target is at least 2x
streams. Every run checks that it decoded exactly the frames sent; nothing
else is asserted.

Run from the repository root::

    python benchmarks/framing_decode.py            # 5 repetitions, about 3 minutes
    python benchmarks/framing_decode.py --quick    # 1 repetition of fewer frames
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
FRAME = 32
PIECE = 64 * 1024
KINDS = [
    (mode, framing, library)
    for mode in ("alone", "socket")
    for framing in ("lines", "prefix")
    for library in ("asyncnet", "streams")
]


def stream_bytes(framing: str, count: int) -> bytes:
    """``count`` frames of 32 bytes on the wire, all alike (their content costs nothing)."""
    if framing == "lines":
        frame = b"abcdefghijklmnopqrstuvwxyzABCDE\n"
    else:
        frame = (FRAME - 4).to_bytes(4, "big") + b"abcdefghijklmnopqrstuvwxyzAB"
    assert len(frame) == FRAME
    return frame * count


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- decoding, as each library's user would write it ---------------------------------


def asyncnet_framing(framing: str) -> Any:
    import asyncnet

    return asyncnet.Lines() if framing == "lines" else asyncnet.LengthPrefixed(4)


async def streams_count(reader: asyncio.StreamReader, framing: str) -> int:
    count = 0
    if framing == "lines":
        async for _line in reader:
            count += 1
        return count
    try:
        while True:
            header = await reader.readexactly(4)
            await reader.readexactly(int.from_bytes(header, "big"))
            count += 1
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
    return count


def alone(framing: str, library: str, count: int) -> dict[str, float]:
    data = stream_bytes(framing, count)
    pieces = [data[i : i + PIECE] for i in range(0, len(data), PIECE)]
    if library == "asyncnet":
        decoder = asyncnet_framing(framing).decoder()
        start, cpu = time.perf_counter(), cpu_seconds()
        frames = 0
        for piece in pieces:
            frames += len(decoder.feed(piece))
        decoder.feed_eof()
        return _result(frames, start, cpu)

    async def run() -> dict[str, float]:
        reader = asyncio.StreamReader(limit=PIECE)

        async def feed() -> None:
            for piece in pieces:
                reader.feed_data(piece)
                # Let the consumer take what is buffered, as a socket's reads would.
                await asyncio.sleep(0)
            reader.feed_eof()

        start, cpu = time.perf_counter(), cpu_seconds()
        feeder = asyncio.create_task(feed())
        frames = await streams_count(reader, framing)
        await feeder
        return _result(frames, start, cpu)

    return asyncio.run(run())


def _result(frames: int, start: float, cpu: float) -> dict[str, float]:
    return {
        "frames": frames,
        "seconds": time.perf_counter() - start,
        "cpu": cpu_seconds() - cpu,
    }


async def serve_once(framing: str, library: str) -> dict[str, float]:
    """Accept one connection, count its frames until EOF, and return the result."""
    done: asyncio.Future[dict[str, float]] = asyncio.get_running_loop().create_future()
    server: Any
    if library == "asyncnet":
        import asyncnet

        async def handler(conn: asyncnet.Connection[bytes]) -> None:
            start, cpu = time.perf_counter(), cpu_seconds()
            frames = 0
            async for _frame in conn:
                frames += 1
            done.set_result(_result(frames, start, cpu))

        server = await asyncnet.start_server(handler, framing=asyncnet_framing(framing))
    else:

        async def streams_handler(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            start, cpu = time.perf_counter(), cpu_seconds()
            frames = await streams_count(reader, framing)
            done.set_result(_result(frames, start, cpu))
            writer.close()

        server = await asyncio.start_server(streams_handler, "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        return await done
    finally:
        if library == "asyncnet":
            await server.shutdown(1)
        else:
            server.close()
            await server.wait_closed()


def client(port: int, framing: str, count: int) -> None:
    data = stream_bytes(framing, count)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        # Wait for the server to close, so the run ends with the decoding.
        while sock.recv(4096):
            pass


def pinned(cpu: str | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", cpu, *argv]


def measure(
    mode: str, framing: str, library: str, count: int, server_cpu: str, client_cpu: str
) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    me = [sys.executable, os.path.abspath(__file__)]
    if mode == "alone":
        out = subprocess.run(
            pinned(server_cpu, [*me, "_alone", framing, library, str(count)]),
            env=env, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    else:
        server = subprocess.Popen(
            pinned(server_cpu, [*me, "_server", framing, library]),
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("port "):
                raise RuntimeError(f"{library} server did not start")
            subprocess.run(
                pinned(client_cpu, [*me, "_client", line.split()[1], framing, str(count)]),
                env=env, timeout=600, check=True,
            )  # fmt: skip
            out_text, _ = server.communicate(timeout=600)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        result = json.loads(out_text.splitlines()[-1])
    if result["frames"] != count:
        raise RuntimeError(f"{mode} {framing} {library}: {result['frames']} frames of {count}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2_000_000, help="frames per run")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--quick", action="store_true", help="1 repetition of 200,000 frames")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.frames = 1, 200_000
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; load average {os.getloadavg()}")
    print(
        f"{args.frames} frames of {FRAME} B a run; decoder on CPU {args.server_cpu}, "
        f"sending client on CPU {args.client_cpu}; {args.reps} repetitions"
    )
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for rep in range(args.reps):
        order = KINDS[rep % len(KINDS) :] + KINDS[: rep % len(KINDS)]
        for mode, framing, library in order:
            r = measure(mode, framing, library, args.frames, args.server_cpu, args.client_cpu)
            results.setdefault((mode, framing, library), []).append(r)
        print(f"  repetition {rep + 1}/{args.reps} done", flush=True)
    print(f"load average at the end {os.getloadavg()}")
    print()
    print("frames/s (median) | decoding process CPU ns/frame (median)")
    print(
        f"{'mode':>7} {'framing':>8}  {'asyncnet':>24}  {'streams':>24}  "
        "asyncnet/streams (paired)"
    )
    for mode in ("alone", "socket"):
        for framing in ("lines", "prefix"):
            cells = []
            for library in ("asyncnet", "streams"):
                runs = results[(mode, framing, library)]
                rate = statistics.median(r["frames"] / r["seconds"] for r in runs)
                cpu = statistics.median(r["cpu"] / r["frames"] for r in runs) * 1e9
                cells.append(f"{rate:>12.0f} | {cpu:>6.0f} ns")
            a, s = results[(mode, framing, "asyncnet")], results[(mode, framing, "streams")]
            rate_ratio = statistics.median(
                (x["frames"] / x["seconds"]) / (y["frames"] / y["seconds"])
                for x, y in zip(a, s, strict=True)
            )
            cpu_ratio = statistics.median(
                (x["cpu"] / x["frames"]) / (y["cpu"] / y["frames"])
                for x, y in zip(a, s, strict=True)
            )
            verdict = "met" if rate_ratio >= 2 else "MISSED"
            print(
                f"{mode:>7} {framing:>8}  {cells[0]:>24}  {cells[1]:>24}  "
                f"{rate_ratio:5.2f}x frames/s ({verdict} >= 2x), {cpu_ratio:5.2f}x CPU/frame"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_alone":
        print(json.dumps(alone(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "_server":
        print(json.dumps(asyncio.run(serve_once(sys.argv[2], sys.argv[3]))), flush=True)
    elif len(sys.argv) > 1 and sys.argv[1] == "_client":
        client(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        main()
