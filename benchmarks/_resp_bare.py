"""A hand-written ``asyncio.Protocol`` RESP server with no library, for ``resp_bench.py``.

The least a Python asyncio server does per request, so its requests per
second bound what any asyncio-based server reaches on the machine: one
``data_received`` per read parses every complete command in it (arrays of
bulk strings, and inline commands) with ``find`` and slicing, runs it
against a dict, and writes the replies to the whole read at once. The
commands and replies are the example's (``docs/examples/resp_server.py``:
``PING ECHO SET GET DEL EXISTS INCR``, empty replies to ``CONFIG`` and
``COMMAND``), with the replies encoded inline; unlike the example it has
no limits, no flow control and no statistics, and a malformed command
closes the connection.

So it skips work the example must do, and is a ceiling, not a twin: it
does not check the ``$`` before a bulk string's length nor the CRLF after
its bytes (the CRLF check alone is about 1,400 of the example's
instructions per request at ``-P 1``, ``resp_instructions.py``), refuses
no length (a client announcing a huge bulk string makes it buffer without
bound), and parses and copies an incomplete command again on every read
(quadratic in the reads of a large value; the example appends them and
parses once). Its frames are never objects handed to a separate command
layer and encoder: two Python calls per request (``data_received``,
``execute``) against the example's six (``data_received``, ``feed``,
``frame_received``, ``execute``, ``send_nowait``, ``encode``).

Run as ``python benchmarks/_resp_bare.py --port P`` (``0``: a free port);
it prints ``RESP server listening on HOST:PORT`` like the example.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


def execute(data: dict[bytes, bytes], args: list[bytes]) -> bytes:
    """Run one command; return its encoded reply."""
    name = args[0].upper()
    if name == b"SET" and len(args) >= 3:
        data[args[1]] = args[2]
        return b"+OK\r\n"
    if name == b"GET" and len(args) == 2:
        value = data.get(args[1])
        return b"$-1\r\n" if value is None else b"$%d\r\n%b\r\n" % (len(value), value)
    if name == b"PING":
        return b"+PONG\r\n" if len(args) == 1 else b"$%d\r\n%b\r\n" % (len(args[1]), args[1])
    if name == b"ECHO" and len(args) == 2:
        return b"$%d\r\n%b\r\n" % (len(args[1]), args[1])
    if name == b"DEL" and len(args) >= 2:
        return b":%d\r\n" % sum(data.pop(key, None) is not None for key in args[1:])
    if name == b"EXISTS" and len(args) >= 2:
        return b":%d\r\n" % sum(key in data for key in args[1:])
    if name == b"INCR" and len(args) == 2:
        try:
            value = int(data.get(args[1], b"0")) + 1
        except ValueError:
            return b"-ERR value is not an integer or out of range\r\n"
        data[args[1]] = b"%d" % value
        return b":%d\r\n" % value
    if name in (b"CONFIG", b"COMMAND"):
        return b"*0\r\n"
    return b"-ERR unknown command or wrong arguments\r\n"


class BareRESP(asyncio.Protocol):
    """Parse every complete command of a read, write all their replies in one write."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, chunk: bytes) -> None:
        buf = self.buffer + chunk if self.buffer else chunk
        size = len(buf)
        data = self.data
        replies = []
        pos = 0
        try:
            while pos < size:
                if buf[pos] != 42:  # not "*": an inline command, up to LF
                    end = buf.find(b"\n", pos)
                    if end < 0:
                        break
                    args = buf[pos:end].split()
                    pos = end + 1
                    if args:
                        replies.append(execute(data, args))
                    continue
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                count = int(buf[pos + 1 : end])
                at = end + 2
                args = []
                while len(args) < count:
                    end = buf.find(b"\r\n", at)
                    if end < 0:
                        break
                    start = end + 2
                    at = start + int(buf[at + 1 : end]) + 2
                    if at > size:
                        break
                    args.append(buf[start : at - 2])
                if len(args) < count:
                    break  # incomplete: wait for more bytes
                pos = at
                if args:
                    replies.append(execute(data, args))
        except ValueError:
            self.transport.close()
            return
        self.buffer = buf[pos:]
        if replies:
            self.transport.write(replies[0] if len(replies) == 1 else b"".join(replies))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6382)
    args = parser.parse_args()
    data: dict[bytes, bytes] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: BareRESP(data), args.host, args.port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"RESP server listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
