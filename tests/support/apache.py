"""A private Apache httpd with ``mod_auth_digest`` on loopback, for Digest tests.

Runs the Debian ``apache2`` binary in the foreground (``-X``: one process, no
detaching) with a configuration written to a temporary directory: one
protected location, an ``htdigest`` user file and an access log of
``"%r" %>s`` lines. :func:`apache_path` returns ``None`` when Apache or the
module is missing, and the tests skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ApacheDigestServer", "apache_path"]

MODULES = Path("/usr/lib/apache2/modules")
_NEEDED = ("mod_mpm_prefork.so", "mod_authn_core.so", "mod_authn_file.so",
           "mod_authz_core.so", "mod_authz_user.so", "mod_auth_digest.so")


def apache_path() -> str | None:
    """The apache2 binary, if it and the modules this server needs are installed."""
    path = shutil.which("apache2") or (
        "/usr/sbin/apache2" if os.path.exists("/usr/sbin/apache2") else None
    )
    if path is None or not all((MODULES / name).exists() for name in _NEEDED):
        return None
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApacheDigestServer:
    """``with ApacheDigestServer(user, password) as srv``: ``srv.url("/secret.txt")``."""

    REALM = "asyncnet test"
    BODY = b"the secret file\n"

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def access_log(self) -> list[str]:
        """The request lines and statuses served so far, e.g. ``'"GET / HTTP/1.1" 401'``."""
        assert self._dir is not None
        log = Path(self._dir.name) / "access.log"
        return log.read_text().splitlines() if log.exists() else []

    def __enter__(self) -> ApacheDigestServer:
        binary = apache_path()
        assert binary is not None
        self._dir = tempfile.TemporaryDirectory(prefix="asyncnet-apache-")
        root = Path(self._dir.name)
        os.chmod(root, 0o755)  # the server may run as www-data when we are root
        (root / "docs").mkdir()
        (root / "docs" / "secret.txt").write_bytes(self.BODY)
        ha1 = hashlib.md5(f"{self.user}:{self.REALM}:{self.password}".encode()).hexdigest()
        (root / "htdigest").write_text(f"{self.user}:{self.REALM}:{ha1}\n")
        self.port = _free_port()
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        modules = "".join(
            f"LoadModule {name[4:-3]}_module {MODULES / name}\n" for name in _NEEDED
        )
        (root / "httpd.conf").write_text(
            f"ServerRoot {root}\nDefaultRuntimeDir {root}\nPidFile {root}/httpd.pid\n"
            f"Listen 127.0.0.1:{self.port}\nServerName 127.0.0.1\n{modules}{user}"
            f"ErrorLog {root}/error.log\nLogFormat \"\\\"%r\\\" %>s\" short\n"
            f"CustomLog {root}/access.log short\nDocumentRoot {root}/docs\n"
            f"<Directory {root}/docs>\n  AuthType Digest\n  AuthName \"{self.REALM}\"\n"
            f"  AuthDigestProvider file\n  AuthUserFile {root}/htdigest\n"
            f"  AuthDigestDomain /\n  Require valid-user\n</Directory>\n"
        )
        self._proc = subprocess.Popen(
            [binary, "-X", "-f", str(root / "httpd.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        # Readiness: the port accepts connections (bounded: 10 s in 0.05 s steps).
        for _ in range(200):
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                log = root / "error.log"
                err += log.read_text() if log.exists() else ""
                self.close()
                raise RuntimeError(f"apache2 exited: {err}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=1
            ):
                break
            time.sleep(0.05)
        else:
            self.close()
            raise RuntimeError("apache2 did not start listening")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
