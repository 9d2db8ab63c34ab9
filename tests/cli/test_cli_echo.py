"""``python -m asyncnet echo-server`` / ``echo-client`` as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from asyncnet._cli._echo import parse_size

REPO_ROOT = str(Path(__file__).resolve().parents[2])
LISTENING = re.compile(r"^listening on (\S+):(\d+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return env


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncnet", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class ServerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, first_line: str) -> None:
        self.proc = proc
        self.first_line = first_line
        match = LISTENING.match(first_line)
        self.port = int(match.group(2)) if match else 0

    async def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = await self.proc.communicate()
        assert self.proc.returncode is not None
        return self.proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def echo_server_process(*args: str) -> AsyncIterator[ServerProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncnet", "echo-server", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode()
        if not line:
            _, err = await proc.communicate()
            raise AssertionError(f"server did not start: {err.decode()}")
        yield ServerProcess(proc, line)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def test_server_prints_real_port_serves_client_and_exits_0_on_sigterm() -> None:
    async with echo_server_process("--port", "0") as server:
        assert LISTENING.match(server.first_line), server.first_line
        assert server.port != 0
        code, out, err = await _run(
            "echo-client", "--port", str(server.port), "--size", "10K", "--count", "50",
            "--concurrency", "3",
        )  # fmt: skip
        assert code == 0, err
        assert "150 messages" in out
        assert "verified" in out
        code, out, err = await _run(
            "echo-client", "--port", str(server.port), "--size", "1M", "--count", "4", "--bulk"
        )
        assert code == 0, err
        assert f"{4 * 1024 * 1024} bytes echoed" in out
        code, _, err = await server.stop(signal.SIGTERM)
    assert code == 0, err
    assert "stopped: 2 connections" not in err  # 4 connections were made
    assert "stopped: 4 connections" in err


async def test_sigint_is_a_graceful_exit_too() -> None:
    async with echo_server_process("--port", "0", "--idle-timeout", "30") as server:
        code, _, err = await server.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err


async def test_unix_socket_server_and_client(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with echo_server_process("--unix", path) as server:
        assert server.first_line.strip() == f"listening on {path}"
        code, out, err = await _run("echo-client", "--unix", path, "--count", "20")
        assert code == 0, err
        assert "verified" in out
        code, _, err = await server.stop()
    assert code == 0, err
    assert not os.path.exists(path)


async def test_client_exits_nonzero_when_a_byte_differs() -> None:
    async def corrupt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data[:-1] + bytes([data[-1] ^ 0xFF]))
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(corrupt, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        code, out, _ = await _run(
            "echo-client", "--port", str(port), "--size", "100", "--count", "3"
        )
        assert code == 1
        assert "MISMATCH" in out
        code, out, _ = await _run(
            "echo-client", "--port", str(port), "--size", "64K", "--count", "4", "--bulk"
        )
        assert code == 1
        assert "MISMATCH" in out


async def test_client_reports_connection_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = await _run("echo-client", "--port", str(port), "--count", "1")
    assert code == 1
    assert "connection failed" in err


async def test_server_reports_bad_configuration() -> None:
    code, _, err = await _run(
        "echo-server", "--port", "0", "--high-water", "1K", "--low-water", "2K"
    )
    assert code == 1
    assert "high >= low" in err


async def test_server_reports_address_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code, _, err = await _run("echo-server", "--port", str(port))
    assert code == 1
    assert "cannot listen" in err


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
async def test_workers_share_one_port() -> None:
    async with echo_server_process("--port", "0", "--workers", "2") as server:
        assert server.port != 0
        assert "(2 workers)" in server.first_line
        code, out, err = await _run(
            "echo-client", "--port", str(server.port), "--count", "20", "--concurrency", "8"
        )
        assert code == 0, err
        assert "8/8 connections" in out
        code, _, err = await server.stop()
    assert code == 0, err
    # Every worker shut down gracefully and reported on its way out.
    assert err.count("stopped:") == 2


async def test_help_for_both_subcommands() -> None:
    code, out, _ = await _run("echo-server", "--help")
    assert code == 0
    for option in ("--port", "--unix", "--high-water", "--idle-timeout", "--workers"):
        assert option in out
    code, out, _ = await _run("echo-client", "--help")
    assert code == 0
    for option in ("--size", "--count", "--concurrency", "--bulk"):
        assert option in out


def test_parse_size() -> None:
    import argparse

    assert parse_size("4096") == 4096
    assert parse_size("64K") == 65536
    assert parse_size("10m") == 10 * 1024 * 1024
    assert parse_size("1GiB") == 1024**3
    with pytest.raises(argparse.ArgumentTypeError, match="not a byte count"):
        parse_size("lots")


# -- errors a newcomer understands ------------------------------------------------------

CERTS = Path(REPO_ROOT) / "tests" / "certs"


@pytest.mark.parametrize("command", ["echo-server", "echo-client"])
@pytest.mark.parametrize("port", ["70000", "-1", "http"])
async def test_a_bad_port_is_a_one_line_usage_error(command: str, port: str) -> None:
    code, out, err = await _run(command, "--port", port)
    assert code == 2
    assert "Traceback" not in err
    assert "usage:" in err and "--port" in err
    assert "0 to 65535" in err or "not a port number" in err
    assert out == ""


async def test_a_missing_certfile_is_named() -> None:
    code, _, err = await _run("echo-server", "--port", "0", "--certfile", "/nope/server.pem")
    assert code == 2
    assert err.strip() == "echo-server: --certfile /nope/server.pem: no such file"


async def test_a_certificate_without_its_key_says_the_key_is_missing() -> None:
    cert = str(CERTS / "server.pem")
    code, _, err = await _run("echo-server", "--port", "0", "--certfile", cert)
    assert code == 2
    assert "Traceback" not in err
    assert f"--certfile {cert} holds a certificate but no private key" in err
    assert "--keyfile" in err
    wrong = str(CERTS / "ca.key")
    code, _, err = await _run("echo-server", "--port", "0", "--certfile", cert, "--keyfile", wrong)
    assert code == 2
    assert f"--keyfile {wrong}: not the private key of the certificate in {cert}" in err


async def test_echo_client_speaks_tls_to_echo_server_certfile() -> None:
    async with echo_server_process(
        "--port", "0", "--certfile", str(CERTS / "server.pem"),
        "--keyfile", str(CERTS / "server.key"),
    ) as server:  # fmt: skip
        port = str(server.port)
        base = ("echo-client", "--port", port, "--count", "5", "--size", "100")
        code, out, err = await _run(*base, "--cafile", str(CERTS / "ca.pem"))
        assert code == 0, err
        assert "verified" in out
        code, out, err = await _run(*base, "--insecure")
        assert code == 0, err
        # The system's CAs do not know the test CA: refused, in one line.
        code, out, err = await _run(*base, "--tls")
        assert code == 1
        assert "certificate verify failed" in err and "Traceback" not in err
        # Plain to a TLS port, and TLS to a plain port, each say what happened.
        code, out, err = await _run(*base)
        assert code == 1 and "Traceback" not in err
        await server.stop()
    async with echo_server_process("--port", "0") as plain:
        code, _, err = await _run(
            "echo-client", "--port", str(plain.port), "--count", "1", "--insecure"
        )
        await plain.stop()
    assert code == 1
    assert "it echoes in plain text, not TLS" in err and "Traceback" not in err


async def test_ctrl_c_on_echo_client_is_one_line_and_130() -> None:
    from asyncnet import start_echo_server

    async with start_echo_server() as server:
        port = server.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asyncnet", "echo-client", "--port", str(port),
            "--count", "100000000", "--size", "16",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(),
        )  # fmt: skip
        try:
            # Interrupted once it is really echoing, not while it starts up.
            while server.statistics().bytes_received == 0:
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
    assert proc.returncode == 130
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"echo-client: interrupted after [0-9.]+ s: [0-9]+ messages?, [0-9]+ bytes? echoed "
        r"on 1 connection",
        lines[0],
    ), lines
    assert out == b""
