"""Lesson 3: why ``drain()`` matters, what ``pause_writing`` means, and bounded memory.

``transport.write()`` never blocks: when the peer reads slower than you
write, the bytes pile up in the transport's buffer in *your* process. asyncio
calls the protocol's ``pause_writing()`` when that buffer passes its
high-water mark and ``resume_writing()`` when it drains below the low mark;
``await writer.drain()`` (streams) or asyncnet's ``await protocol.drain()``
turns that signal into a wait. A writer that never awaits it grows without
bound; one that does stays near the high-water mark.

asyncnet's echo server applies the same rule to itself: when a client reads
slowly, the server stops *reading* from that client (``pause_reading``) until
its outgoing buffer drains, so a slow client costs a bounded amount of memory.
"""

import asyncio
import socket

import asyncnet

SMALL = 32 * 1024  # kernel socket buffers, kept small so the effect shows quickly
CHUNK = 64 * 1024
TOTAL = 8 * 1024 * 1024


async def connect_small(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def main() -> None:
    # A server that accepts and then never reads: the slowest possible peer.
    stalled: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    for listening in server.sockets:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
    port = server.sockets[0].getsockname()[1]

    # 1. Writing without drain(): every byte the peer has not taken is kept here.
    _, writer = await asyncio.open_connection(sock=await connect_small(port))
    for _ in range(TOTAL // CHUNK):
        writer.write(b"x" * CHUNK)
    print(
        f"without drain(): wrote {TOTAL // 1024} KiB to a peer that reads nothing; "
        f"{writer.transport.get_write_buffer_size() // 1024} KiB are now buffered in this process"
    )
    writer.transport.abort()

    # 2. With drain(): the writer waits once the buffer passes the high-water mark.
    _, writer = await asyncio.open_connection(sock=await connect_small(port))
    high, _low = writer.transport.get_write_buffer_limits()
    written = 0
    try:
        async with asyncio.timeout(0.2):  # the peer never reads, so stop waiting at some point
            while written < TOTAL:
                writer.write(b"x" * CHUNK)
                written += CHUNK
                await writer.drain()
    except TimeoutError:
        pass
    print(
        f"with drain():    the writer stopped after {written // 1024} KiB; buffered: "
        f"{writer.transport.get_write_buffer_size() // 1024} KiB "
        f"(high-water mark {high // 1024} KiB + one chunk at most)"
    )
    writer.transport.abort()

    # 3. pause_writing / resume_writing, seen from a protocol (asyncnet's drain()).
    events: list[str] = []

    class Sender(asyncnet.FlowControlProtocol):
        def pause_writing(self) -> None:
            events.append(f"pause_writing at {self.transport.get_write_buffer_size() // 1024} KiB")
            super().pause_writing()

        def resume_writing(self) -> None:
            events.append(f"resume_writing at {self.transport.get_write_buffer_size() // 1024} KiB")
            super().resume_writing()

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(Sender, sock=await connect_small(port))
    transport.set_write_buffer_limits(high=128 * 1024, low=32 * 1024)
    transport.write(b"x" * 256 * 1024)  # above high: pause_writing fires at once
    print(f"protocol callbacks after one big write: {events}; drain() would now wait")
    transport.abort()
    for peer in stalled:
        peer.transport.abort()
    server.close()
    await server.wait_closed()

    # 4. asyncnet's echo server facing a slow reader: its buffer stays bounded.
    high_water = 64 * 1024
    async with await asyncnet.start_echo_server("127.0.0.1", 0, high_water=high_water) as echo:
        for listening in echo.sockets:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
        sock.setblocking(False)
        await loop.sock_connect(sock, echo.sockets[0].getsockname()[:2])
        reader, writer = await asyncio.open_connection(sock=sock)

        async def push() -> None:
            for _ in range(2 * 1024 * 1024 // CHUNK):
                writer.write(b"y" * CHUNK)
                await writer.drain()  # the server's pause reaches us as backpressure

        async def read_slowly() -> int:
            got = 0
            while got < 2 * 1024 * 1024:
                got += len(await reader.read(CHUNK))
                await asyncio.sleep(0.002)  # a slow consumer
            return got

        pusher = asyncio.create_task(push())
        got = await read_slowly()
        await pusher
        writer.close()
        await writer.wait_closed()
        stats = echo.statistics()
    print(
        f"asyncnet echo server, slow reader: {got // 1024} KiB echoed; the server paused "
        f"reading {stats.write_pauses} times and its write buffer peaked at "
        f"{stats.max_write_buffer // 1024} KiB: at most the high-water mark "
        f"({high_water // 1024} KiB) plus one read, however much is sent"
    )


if __name__ == "__main__":
    asyncio.run(main())
