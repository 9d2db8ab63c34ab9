"""Expect: 100-continue: the body goes only once the server has said it wants it."""

import asyncio

from _http_server import Handler, serve

import asyncnet


class Picky(Handler):
    def handle_expect_100(self) -> bool:
        # http.server calls this for "Expect: 100-continue" before reading the body.
        if int(self.headers["Content-Length"]) > 1_000_000:
            self.reply(413, b"too large, not even sent")
            self.close_connection = True
            return False
        return super().handle_expect_100()  # sends "100 Continue"

    def do_PUT(self) -> None:
        self.reply(201, b"stored %d bytes" % len(self.body()))


async def main(base: str) -> None:
    async with asyncnet.HTTPClient(expect_continue=True) as client:
        small = await client.put(base + "/small", body=b"x" * 1000)
        print("small:", small.status, await small.text())
        large = await client.put(base + "/large", body=b"x" * 5_000_000)
        print("large:", large.status, await large.text())


with serve(Picky) as base:
    asyncio.run(main(base))
