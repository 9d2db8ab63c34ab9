"""Real HTTP servers serving one site, for the interop suite (tests/http/test_interop.py).

nginx, Apache httpd, lighttpd, Caddy and a Node ``http`` script each serve
the same site from a private directory on 127.0.0.1 (a free port), in the
foreground, stopped by PID (see :class:`tests.support.peers.Peer`):

``/file.bin``
    :data:`FILE` as a static file (ETag, ``Range``, ``HEAD``); not compressed.
``/big.txt``
    :data:`TEXT`, compressed with gzip on the fly (so sent chunked, except
    where :attr:`Site.gzip_chunked` says the server sends a length).
``/redirect``
    a 301 to ``/file.bin``.
``/upload/NAME``
    where :attr:`Site.upload` is ``"store"``, ``PUT`` stores the body and
    ``GET`` returns it (WebDAV, or the Node script); ``"echo"``: ``POST``
    answers the body's SHA-256 (a CGI script); ``"accept"``: ``POST`` is
    answered ``200`` without storing anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.peers import Peer, binary, free_port, tmpdir
from tests.support.servers import pattern

__all__ = ["FILE", "SITES", "TEXT", "Site"]

FILE = pattern(100_000)
TEXT = b"".join(b"line %06d of a text that compresses well\n" % i for i in range(5000))

_NODE_SCRIPT = r"""
const http = require("http"), zlib = require("zlib"), fs = require("fs"), path = require("path");
const root = process.argv[3];
const file = fs.readFileSync(path.join(root, "file.bin"));
const text = fs.readFileSync(path.join(root, "big.txt"));
const etag = '"file-v1"';
const stored = new Map();
const server = http.createServer((req, res) => {
  if (req.url === "/file.bin") {
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, {ETag: etag});
      return res.end();
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range || "");
    if (m) {
      const a = +m[1], b = +m[2];
      res.writeHead(206, {"Content-Range": `bytes ${a}-${b}/${file.length}`,
                          "Content-Length": b - a + 1, ETag: etag});
      return res.end(req.method === "HEAD" ? undefined : file.subarray(a, b + 1));
    }
    res.writeHead(200, {"Content-Length": file.length, ETag: etag, "Accept-Ranges": "bytes"});
    return res.end(req.method === "HEAD" ? undefined : file);
  }
  if (req.url === "/big.txt") {
    res.writeHead(200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"});
    const gz = zlib.createGzip();
    gz.pipe(res);
    for (let i = 0; i < text.length; i += 16384) gz.write(text.subarray(i, i + 16384));
    return gz.end();
  }
  if (req.url === "/redirect") { res.writeHead(301, {Location: "/file.bin"}); return res.end(); }
  if (req.url.startsWith("/upload/")) {
    if (req.method === "PUT") {
      const parts = [];
      req.on("data", (c) => parts.push(c));
      req.on("end", () => {
        stored.set(req.url, Buffer.concat(parts));
        res.writeHead(201);
        res.end();
      });
      return;
    }
    const body = stored.get(req.url);
    if (!body) { res.writeHead(404); return res.end(); }
    res.writeHead(200, {"Content-Length": body.length});
    return res.end(body);
  }
  res.writeHead(404); res.end();
});
server.keepAliveTimeout = 30000;
server.listen(+process.argv[2], "127.0.0.1", () => console.log("listening"));
"""

_CGI_ECHO = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
head -c "$CONTENT_LENGTH" | sha256sum | cut -d' ' -f1
"""


@dataclass(frozen=True)
class Site:
    """One server kind: how to start it and what it does with uploads."""

    name: str
    binary: str
    start: Callable[[], Peer]
    upload: str
    gzip_chunked: bool = True

    def available(self) -> bool:
        return binary(self.binary) is not None


def _docroot(tmp: Path) -> Path:
    docs = tmp / "docs"
    (docs / "upload").mkdir(parents=True)
    (docs / "file.bin").write_bytes(FILE)
    (docs / "big.txt").write_bytes(TEXT)
    for path in (docs, docs / "upload"):
        # Servers that drop root privileges still read, and write uploads.
        os.chmod(path, 0o777)
    return docs


def _nginx() -> Peer:
    tmp = tmpdir("interop-nginx")
    root = Path(tmp.name)
    docs = _docroot(root)
    port = free_port()
    temp_paths = "".join(
        f"    {kind}_temp_path {root / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
    default_type application/octet-stream;
    types {{ text/plain txt; }}
    server {{
        listen 127.0.0.1:{port};
        root {docs};
        gzip on;
        gzip_types text/plain;
        location = /redirect {{ return 301 /file.bin; }}
        location /upload/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 10m;
        }}
    }}
}}
""")
    return Peer([binary("nginx") or "nginx", "-c", str(root / "nginx.conf"), "-p", str(root)],
                port=port, tmp=tmp, ready=r"start worker process")


def _apache() -> Peer:
    tmp = tmpdir("interop-apache")
    root = Path(tmp.name)
    docs = _docroot(root)
    port = free_port()
    modules = "".join(
        f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so\n"
        for name in ("mpm_event", "authz_core", "mime", "alias", "filter", "deflate",
                     "dav", "dav_fs")
    )
    user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
    (root / "httpd.conf").write_text(
        f"ServerRoot {root}\nDefaultRuntimeDir {root}\nPidFile {root}/httpd.pid\n"
        f"Listen 127.0.0.1:{port}\nServerName 127.0.0.1\n{modules}{user}"
        f"ErrorLog {root}/error.log\nDocumentRoot {docs}\n"
        "TypesConfig /etc/mime.types\nAddType text/plain .txt\n"
        "AddOutputFilterByType DEFLATE text/plain\n"
        "Redirect 301 /redirect /file.bin\n"
        f"DavLockDB {root}/davlock\n"
        f"<Directory {docs}>\n  Require all granted\n</Directory>\n"
        f"<Location /upload/>\n  Dav On\n</Location>\n"
    )
    return Peer([binary("apache2") or "apache2", "-X", "-f", str(root / "httpd.conf")],
                port=port, tmp=tmp)


def _lighttpd() -> Peer:
    tmp = tmpdir("interop-lighttpd")
    root = Path(tmp.name)
    docs = _docroot(root)
    (docs / "echo.cgi").write_text(_CGI_ECHO)
    port = free_port()
    user = 'server.username = "www-data"\nserver.groupname = "www-data"\n' if (
        os.geteuid() == 0
    ) else ""
    (root / "lighttpd.conf").write_text(f"""
server.document-root = "{docs}"
server.bind = "127.0.0.1"
server.port = {port}
{user}server.errorlog = "{root}/error.log"
server.modules += ("mod_deflate", "mod_cgi", "mod_redirect")
mimetype.assign = (".txt" => "text/plain", ".bin" => "application/octet-stream")
deflate.mimetypes = ("text/plain")
deflate.allowed-encodings = ("gzip")
url.redirect = ("^/redirect$" => "/file.bin")
url.redirect-code = 301
cgi.assign = (".cgi" => "/bin/sh")
""")
    return Peer([binary("lighttpd") or "lighttpd", "-D", "-f", str(root / "lighttpd.conf")],
                port=port, tmp=tmp)


def _caddy() -> Peer:
    tmp = tmpdir("interop-caddy")
    root = Path(tmp.name)
    docs = _docroot(root)
    port = free_port()
    (root / "Caddyfile").write_text(f"""{{
    admin off
    auto_https off
    storage file_system {root}/data
}}
http://127.0.0.1:{port} {{
    bind 127.0.0.1
    root * {docs}
    redir /redirect /file.bin 301
    respond /upload/* "ok" 200
    encode gzip
    file_server
}}
""")
    # Caddy keeps its state under $HOME / $XDG_*: point them at the private directory.
    env = {"HOME": str(root), "XDG_CONFIG_HOME": str(root), "XDG_DATA_HOME": str(root)}
    return Peer([binary("caddy") or "caddy", "run", "--config", str(root / "Caddyfile"),
                 "--adapter", "caddyfile"], port=port, tmp=tmp, env=env)


def _node() -> Peer:
    tmp = tmpdir("interop-node")
    root = Path(tmp.name)
    docs = _docroot(root)
    (root / "server.js").write_text(_NODE_SCRIPT)
    port = free_port()
    return Peer([binary("node") or "node", str(root / "server.js"), str(port), str(docs)],
                port=port, tmp=tmp, ready=r"^listening")


SITES = [
    Site("nginx", "nginx", _nginx, upload="store"),
    # Both compress a static file whole and send its length.
    Site("apache", "apache2", _apache, upload="store", gzip_chunked=False),
    Site("lighttpd", "lighttpd", _lighttpd, upload="echo", gzip_chunked=False),
    Site("caddy", "caddy", _caddy, upload="accept"),
    Site("node", "node", _node, upload="store"),
]
