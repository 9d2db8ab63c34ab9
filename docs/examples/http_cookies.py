"""Cookies: a site that sets a cookie and redirects to itself needs a jar."""

import asyncio

from _http_server import Handler, serve

import asyncnet


class Site(Handler):
    def do_GET(self) -> None:
        if self.path == "/login":
            self.reply(302, b"", [("Location", "/home"), ("Set-Cookie", "sid=abc123; Path=/")])
        elif "sid=abc123" in self.headers.get("Cookie", ""):
            self.reply(200, b"welcome back")
        else:
            self.reply(302, b"", [("Location", "/login")])


async def main(base: str) -> None:
    async with asyncnet.HTTPClient(cookies=True) as client:
        resp = await client.get(base + "/login")
        print("with cookies=True:", resp.status, await resp.text(),
              "| jar:", [f"{c.name}={c.value}" for c in client.cookies or []])
    async with asyncnet.HTTPClient(max_redirects=4) as client:
        try:
            await client.get(base + "/login")
        except asyncnet.TooManyRedirects as exc:
            print("without a jar:", type(exc).__name__, "after", len(exc.history), "responses")


with serve(Site) as base:
    asyncio.run(main(base))
