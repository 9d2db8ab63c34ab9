"""Authentication: Basic, Bearer, and Digest answering the server's 401 challenge."""

import asyncio
import hashlib
import re

from _http_server import Handler, serve

import asyncnet

USER, PASSWORD, REALM, NONCE = "alice", "s3cret", "example", "d41d8cd98f00b204"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Protected(Handler):
    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        if self.path == "/digest":
            # The server's side of RFC 7616 (MD5, qop=auth), just enough to check.
            p = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', auth)}
            ha1, ha2 = md5(f"{USER}:{REALM}:{PASSWORD}"), md5(f"GET:{p.get('uri')}")
            good = md5(f"{ha1}:{NONCE}:{p.get('nc')}:{p.get('cnonce')}:auth:{ha2}")
            if p.get("response") != good:
                challenge = f'Digest realm="{REALM}", nonce="{NONCE}", qop="auth"'
                return self.reply(401, b"", [("WWW-Authenticate", challenge)])
            return self.reply(200, f"digest ok, nonce count {p['nc']}".encode())
        self.reply(200, auth.encode())


async def main(base: str) -> None:
    async with asyncnet.HTTPClient(auth=(USER, PASSWORD)) as client:
        print("Basic:  ", await (await client.get(base + "/")).text())
        resp = await client.get(base + "/", auth=asyncnet.BearerAuth("tok3n"))
        print("Bearer: ", await resp.text())
    async with asyncnet.HTTPClient(auth=asyncnet.DigestAuth(USER, PASSWORD)) as client:
        first = await client.get(base + "/digest")  # 401, answered once, then 200
        print("Digest: ", await first.text())
        again = await client.get(base + "/digest")  # the known challenge, no 401
        print("Digest: ", await again.text())


with serve(Protected) as base:
    asyncio.run(main(base))
