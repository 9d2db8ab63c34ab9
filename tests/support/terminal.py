"""Run a command on a pseudo-terminal of a chosen size and read what it draws.

For the command line's terminal behaviour (progress lines, colours, widths,
clearing, Ctrl-C): the child's stdout and stderr are the terminal, so
``isatty()`` is true and ``os.get_terminal_size()`` reports ``columns``.
Reads are bounded: a test waits for text to appear, never for a duration.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Terminal", "python_env"]

ROOT = Path(__file__).resolve().parents[2]
# Longest a test waits for output before it fails; far beyond any healthy run.
WAIT = 30.0


def python_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m asyncnet`` from this checkout, colours allowed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **extra)
    if "NO_COLOR" not in extra:
        env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    return env


class Terminal:
    """A child process whose stdout and stderr are a pseudo-terminal ``columns`` wide."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        columns: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
        stdin: Any = subprocess.DEVNULL,
        stdout_pipe: bool = False,
    ) -> None:
        self._master, slave = pty.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
            self.proc = subprocess.Popen(
                list(argv),
                stdin=stdin,
                stdout=subprocess.PIPE if stdout_pipe else slave,
                stderr=slave,
                env=env if env is not None else python_env(),
            )
        finally:
            # The child holds its own copy; ours would keep the terminal open
            # after the child exits, and reads would never see the end.
            os.close(slave)
        self._data = bytearray()
        self._ended = False

    @property
    def output(self) -> str:
        """Everything the terminal received so far."""
        return self._data.decode("utf-8", "replace")

    def _read_once(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the terminal has closed."""
        if self._ended:
            return False
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every writer is gone
            data = b""
        if not data:
            self._ended = True
            return False
        self._data += data
        return True

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """Read until ``pattern`` (a regular expression) appears in the output; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output)
            if match is not None:
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read_once(min(remaining, 1.0)):
                match = re.search(pattern, self.output)
                if match is not None:
                    return match
                # The end of what was drawn is what explains a failure.
                raise AssertionError(f"{pattern!r} never appeared in ...{self.output[-1500:]!r}")

    def finish(self, timeout: float = WAIT) -> tuple[int, str]:
        """Wait for the child to exit and the terminal to close; (exit status, all output)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read_once(0.5):
            pass
        code = self.proc.wait(max(0.1, deadline - time.monotonic()))
        return code, self.output

    def interrupt(self) -> None:
        """Send SIGINT, as Ctrl-C on a terminal would."""
        self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        with contextlib.suppress(OSError):
            os.close(self._master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
