"""``echo-server --unix PATH`` never takes a path that is not its own, as real processes.

Refuse a path another server listens on; remove a stale socket file only
when nobody listens; never delete a file that is no socket; at shutdown
unlink the path only while it is still the socket this process created.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return env


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncnet", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip


@asynccontextmanager
async def server_at(path: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Run ``echo-server --unix path``; yields the process and its first stdout line.

    The first line is "listening on ..." once it serves, or empty when the
    process exited instead; whatever is still running is killed on exit.
    """
    proc = await _spawn("echo-server", "--unix", path)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode()
        yield proc, line
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()


async def _echo_through(path: str) -> bytes:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(b"still here")
        await writer.drain()
        return await reader.readexactly(10)
    finally:
        writer.close()
        await writer.wait_closed()


async def _exit_status(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_refuses_a_path_another_server_listens_on(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with server_at(path) as (first, line):
        assert line.startswith("listening on "), line
        inode = os.stat(path).st_ino
        async with server_at(path) as (second, line2):
            assert line2 == "", f"second server took over the path: {line2!r}"
            code, err = await _exit_status(second)
        assert code == 1
        assert f"a server is already listening on {path}" in err
        assert "Traceback" not in err
        # The first server still owns its path and still answers on it.
        assert os.stat(path).st_ino == inode
        assert await _echo_through(path) == b"still here"
        first.send_signal(signal.SIGTERM)
        code, err = await _exit_status(first)
    assert code == 0, err
    assert not os.path.exists(path)


async def test_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # bound, never listening, then closed: a stale file
    assert os.path.exists(path)
    async with server_at(path) as (proc, line):
        assert line.startswith("listening on "), line
        assert await _echo_through(path) == b"still here"
        proc.send_signal(signal.SIGTERM)
        code, err = await _exit_status(proc)
    assert code == 0, err


async def test_never_deletes_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("precious")
    async with server_at(str(path)) as (proc, line):
        assert line == ""
        code, err = await _exit_status(proc)
    assert code == 1
    assert f"{path} exists and is not a socket" in err
    assert path.read_text() == "precious"


async def test_shutdown_leaves_a_successors_socket_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with server_at(path) as (proc, line):
        assert line.startswith("listening on "), line
        # Someone removes our file and a new server binds the same path.
        os.unlink(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as successor:
            successor.bind(path)
            successor.listen()
            inode = os.stat(path).st_ino
            proc.send_signal(signal.SIGTERM)
            code, err = await _exit_status(proc)
            assert code == 0, err
            assert os.path.exists(path) and os.stat(path).st_ino == inode
            # The successor still accepts connections on its path.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
