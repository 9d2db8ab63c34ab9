"""Framed connections never read into a fresh 256 KiB ``bytes`` per read.

For a plain ``asyncio.Protocol`` the socket transport allocates a 256 KiB
``bytes`` for every ``recv``; while glibc's mmap threshold is at its default
that is an ``mmap``, an ``mremap``, an ``munmap`` and page faults per read.
``FramedProtocol`` reads through asyncio's socket transport in reads of at
most ``READ_SIZE`` (below the threshold), and through other transports (TLS)
into one shared buffer per thread (``asyncnet._flow.shared_read_buffer``).
These tests pin the effect (no page fault per read, in a process whose
threshold is held at the default), the read size, and the safety of sharing
(frames stay intact after other connections' reads reuse the buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable

import pytest

import asyncnet
from asyncnet import Connection, Lines, Raw
from asyncnet._flow import READ_SIZE
from tests.support.servers import client_ssl_context, server_ssl_context

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Round trips of one short line between an await-style server and client in
# one process; the client counts minor page faults over the measured ones.
_FAULTS_SCRIPT = textwrap.dedent(
    """
    import asyncio, resource, sys
    import asyncnet

    async def echo(conn):
        async for line in conn:
            await conn.send(line)

    async def main():
        async with await asyncnet.start_server(echo, framing=asyncnet.Lines()) as server:
            port = server.sockets[0].getsockname()[1]
            async with asyncnet.open_connection(
                "127.0.0.1", port, framing=asyncnet.Lines()
            ) as conn:
                async def trips(n):
                    for _ in range(n):
                        await conn.send(b"x" * 63)
                        assert await conn.receive() == b"x" * 63
                await trips(200)
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                await trips(int(sys.argv[1]))
                after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        print(after - before)

    asyncio.run(main())
    """
)


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="the mmap threshold is glibc's (GLIBC_TUNABLES)",
)
def test_round_trips_cause_no_page_fault_per_read_at_glibcs_default_mmap_threshold() -> None:
    # A fixed threshold at glibc's default keeps the process from the
    # dynamic raise that would otherwise hide a per-read allocation by luck.
    # Reading through data_received, each round trip is two reads of a
    # 256 KiB bytes past that threshold: at least 2 faults each (measured
    # 4.0 per round trip); through the shared buffer, none.
    trips = 1000
    env = {
        **os.environ,
        "PYTHONPATH": REPO_ROOT,
        "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072",
    }
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS_SCRIPT, str(trips)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    faults = int(done.stdout.strip())
    assert faults < trips // 4, f"{faults} minor page faults over {trips} round trips"


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_frames_stay_intact_after_other_reads_reuse_the_shared_buffer(tls: bool) -> None:
    # Two connections' reads alternate (through the one buffer over TLS);
    # every frame kept from the first reads must still hold what was sent then.
    kept: dict[bytes, list[bytes]] = {}
    served = asyncio.Event()

    async def keep(conn: Connection[bytes]) -> None:
        async for frame in conn:
            kept.setdefault(frame[:1], []).append(frame)
            await conn.send(b"ok")
            if sum(len(v) for v in kept.values()) == 40:
                served.set()

    server_ssl = server_ssl_context() if tls else None
    client_ssl = client_ssl_context() if tls else None
    async with await asyncnet.start_server(keep, framing=Lines(), ssl=server_ssl) as server:
        port = server.sockets[0].getsockname()[1]
        async with (
            asyncnet.open_connection("127.0.0.1", port, framing=Lines(), ssl=client_ssl) as a,
            asyncnet.open_connection("127.0.0.1", port, framing=Lines(), ssl=client_ssl) as b,
        ):
            for i in range(20):
                for conn, tag in ((a, b"a"), (b, b"b")):
                    await conn.send(tag + bytes([48 + i % 10]) * (10 + i))
                    assert await conn.receive() == b"ok"
            await served.wait()
    for tag in (b"a", b"b"):
        assert kept[tag] == [tag + bytes([48 + i % 10]) * (10 + i) for i in range(20)]
        assert all(type(frame) is bytes for frame in kept[tag])


@contextlib.asynccontextmanager
async def _client_of(
    factory: Callable[[], asyncio.BaseProtocol], tls: bool = False
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Serve ``factory``'s protocol on loopback; yield an asyncio streams client of it."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, "127.0.0.1", 0, ssl=server_ssl_context() if tls else None
    )
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl_context() if tls else None,
            server_hostname="localhost" if tls else None,
        )
        try:
            yield reader, writer
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_raw_frames_are_bytes_of_their_own(tls: bool) -> None:
    # Over TLS each read is copied out of the shared buffer, which the next
    # read overwrites; over TCP each read is a bytes of its own already.
    got: list[bytes] = []

    class Keep(asyncnet.FramedProtocol[bytes]):
        def frame_received(self, frame: bytes) -> None:
            got.append(frame)
            self.send_nowait(b"k")

    async with _client_of(lambda: Keep(Raw()), tls) as (reader, writer):
        for i in range(10):
            # The "k" comes back once the server has the frame.
            writer.write(bytes([65 + i]) * 100)
            assert await reader.readexactly(1) == b"k"
    assert got == [bytes([65 + i]) * 100 for i in range(10)]
    assert all(type(frame) is bytes for frame in got)


async def test_socket_transport_reads_at_most_read_size_through_data_received() -> None:
    # 1 MiB sent at once arrives in reads of at most READ_SIZE, each a
    # bytes of its own handed to data_received.
    sizes: list[int] = []
    done = asyncio.Event()

    class Count(asyncnet.FramedProtocol[bytes]):
        def data_received(self, data: bytes) -> None:
            assert type(data) is bytes
            sizes.append(len(data))
            super().data_received(data)

        def end_received(self) -> bool:
            done.set()
            return False

    async with _client_of(lambda: Count(Raw())) as (_reader, writer):
        writer.write(b"x" * (1 << 20))
        writer.write_eof()
        await writer.drain()
        await done.wait()
    assert sum(sizes) == 1 << 20
    assert max(sizes) <= READ_SIZE
