"""Reading bodies as lines, as text and as Server-Sent Events."""

import asyncio

from _http_server import Handler, serve

import asyncnet


class Streams(Handler):
    def do_GET(self) -> None:
        if self.path == "/events":
            body = (
                b"retry: 3000\n\n"
                b"event: tick\ndata: 1\nid: a\n\n"
                b": keep-alive\ndata: line one\ndata: line two\n\n"
            )
            self.reply(200, body, [("Content-Type", "text/event-stream")])
        else:
            self.reply(200, "first\r\nsecond\nthird: café, no newline".encode(),
                       [("Content-Type", "text/plain; charset=utf-8")])


async def main(base: str) -> None:
    async with asyncnet.HTTPClient() as client:
        async with client.stream("GET", base + "/log") as resp:
            print("lines: ", [line async for line in resp.aiter_lines(max_line=1000)])
        async with client.stream("GET", base + "/events") as resp:
            async for event in resp.aiter_events():
                print("event: ", event.event, repr(event.data), "id", repr(event.id))


with serve(Streams) as base:
    asyncio.run(main(base))
