"""``docs/examples/resp_server.py`` written with asyncio streams, for ``resp_bench.py``.

The same commands and replies (the example's ``Store`` and ``RESP().encode``
are imported, so only reading and framing differ), with the parsing a
streams user writes: ``readline`` for each header line, ``readexactly`` for
each bulk string, ``write`` and ``await drain()`` for each reply.

Run as ``python benchmarks/_resp_streams.py --port P`` (``0``: a free port);
it prints ``RESP server listening on HOST:PORT`` like the example.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "docs", "examples"))

from resp_server import RESP, Store  # noqa: E402

# The example's limits: a bulk string of at most 1 MiB, at most 1024 arguments.
MAX_BULK = 1 << 20
MAX_ARGS = 1024


async def read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One command (an array of bulk strings, or an inline command); None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    if line[:1] != b"*":
        return line.split()
    count = int(line[1:])
    if not 0 <= count <= MAX_ARGS:
        raise ValueError(f"bad argument count {count}")
    args = []
    for _ in range(count):
        header = await reader.readline()
        if header[:1] != b"$":
            raise ValueError("expected a bulk string")
        length = int(header[1:])
        if not 0 <= length <= MAX_BULK:
            raise ValueError(f"bad bulk length {length}")
        args.append((await reader.readexactly(length + 2))[:-2])
    return args


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6381)
    args = parser.parse_args()
    store = Store()
    encode = RESP().encode

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (command := await read_command(reader)) is not None:
                writer.write(encode(store.execute(command)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, args.host, args.port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"RESP server listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
