"""Lesson 4: closing properly: ``close()`` starts it, ``wait_closed()`` finishes it.

``close()`` only asks: the transport flushes what is buffered and closes on a
later loop iteration, and the peer learns about it later still. Awaiting
``wait_closed()`` is how you know it has happened. Skipping both leaks the
socket and keeps the peer's side open (asyncio reports the transport as a
``ResourceWarning: unclosed transport`` if it is ever garbage-collected).
"""

import asyncio


async def main() -> None:
    server_saw_eof = asyncio.Event()
    handlers: set[asyncio.Task[None]] = set()
    arrived = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        arrived.set()
        try:
            await reader.read()  # returns b"" once the client has closed
            server_saw_eof.set()
            writer.close()
            await writer.wait_closed()
        finally:
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    # 1. A client connection: close() then wait_closed().
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"last words")
    writer.close()
    print(
        f"after close():       is_closing={writer.is_closing()}, "
        f"server saw EOF={server_saw_eof.is_set()} (close only started)"
    )
    await writer.wait_closed()
    await server_saw_eof.wait()
    await asyncio.gather(*handlers)  # let the server side finish closing too
    print(f"after wait_closed(): the socket is closed, server saw EOF={server_saw_eof.is_set()}")

    # 2. What forgetting costs: a connection nobody closes stays open.
    open_handlers_before = len(handlers)
    arrived.clear()
    _, forgotten = await asyncio.open_connection("127.0.0.1", port)
    forgotten.write(b"hello")
    await arrived.wait()  # the server is now handling it
    await asyncio.sleep(0.1)
    print(
        f"a connection never closed is still open 100 ms later: "
        f"server handlers running={len(handlers) - open_handlers_before}, "
        f"client is_closing={forgotten.is_closing()} (its socket and the server's task leak)"
    )
    forgotten.close()
    await forgotten.wait_closed()
    await asyncio.gather(*handlers)
    print(f"closed properly: server handlers running={len(handlers) - open_handlers_before}")

    # 3. The server: close() stops accepting, wait_closed() waits for that.
    server.close()
    await server.wait_closed()
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        print("after server.close() + wait_closed(): new connections are refused")
    else:
        w.close()
        await w.wait_closed()
        print("unexpected: the closed server still accepted a connection")


if __name__ == "__main__":
    asyncio.run(main())
