"""What a forward proxy costs per request: keep-alive GETs through squid against direct.

One invocation starts nginx (the origin) and squid (a forward proxy with no
cache, both on 127.0.0.1, each pinned to ``--server-cpus``), then for every
repetition runs asyncnet and aiohttp, each in its own subprocess pinned to
``--client-cpus``, twice: straight to nginx, and through squid (``http://``
targets go to the proxy in absolute form on a kept-alive connection). Prints
requests per second and client CPU per request for each, and for each
library the extra client CPU a request costs through the proxy; the issue's
target is that asyncnet's proxy path costs no more per request than
aiohttp's. Prints numbers only: nothing here asserts.

    python benchmarks/proxy_overhead.py --quick    # one short repetition
    python benchmarks/proxy_overhead.py            # the full run (about 3 minutes)

aiohttp runs on ``/opt/benchvenv/bin/python`` (or ``$ASYNCNET_BENCH_VENV_PYTHON``);
it is never a dependency of asyncnet. squid's wall-clock throughput bounds
both clients alike, so compare CPU per request, not requests per second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from _harness import (
    BENCHVENV_PYTHON,
    Contestant,
    ContestantFailed,
    asyncnet_env,
    available,
    fmt_ratio,
    median,
    pinned,
    run_json,
    stop_on_sigterm,
)
from _nginx import BODIES, NginxServer

_SQUID_CONFIG = """\
http_port 127.0.0.1:{port}
{user}pid_filename {root}/squid.pid
cache_log stdio:/dev/stderr
access_log none
cache deny all
cache_mem 8 MB
coredump_dir {root}
netdb_filename none
pinger_enable off
visible_hostname asyncnet-bench
shutdown_lifetime 0 seconds
acl to_loopback dst 127.0.0.0/8
http_access allow localhost to_loopback
http_access deny all
"""


class Squid:
    """squid in the foreground on a free loopback port, stopped by its PID on exit."""

    def __init__(self, cpus: str | None) -> None:
        self.cpus = cpus
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Squid:
        binary = shutil.which("squid") or "/usr/sbin/squid"
        self._tmp = tempfile.TemporaryDirectory(prefix="asyncnet-bench-squid-")
        os.chmod(self._tmp.name, 0o777)  # squid drops root privileges and still writes here
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        conf = os.path.join(self._tmp.name, "squid.conf")
        user = "cache_effective_user proxy\n" if os.geteuid() == 0 else ""
        with open(conf, "w") as file:
            file.write(_SQUID_CONFIG.format(port=self.port, root=self._tmp.name, user=user))
        self._proc = subprocess.Popen(
            pinned([binary, "-N", "-d", "1", "-f", conf], self.cpus),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True,
        )
        ready = threading.Event()
        lines: list[str] = []

        def read() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:
                lines.append(line)
                if "Accepting HTTP Socket connections" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30) or self._proc.poll() is not None:
            self.__exit__()
            raise RuntimeError("squid did not start: " + "".join(lines[-20:]))
        for _ in range(200):  # it prints the line just before listening
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("squid is not listening")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(15)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)  # helpers it forked, if any
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def run_one(
    who: Contestant, url: str, proxy: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    options = [
        "--url", url, "--expect", str(BODIES[args.path]),
        "--concurrency", str(args.concurrency),
        "--warmup", str(args.warmup), "--duration", str(args.duration),
    ]
    if proxy is not None:
        options += ["--proxy", proxy]
    argv = pinned(who.argv("load", options), args.client_cpus)
    result, _rss = run_json(argv, env=who.env, timeout=args.warmup + args.duration + 120)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition of 1 s")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--path", default="/1k", choices=sorted(BODIES))
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--server-cpus", default="1")
    args = parser.parse_args(argv)
    if args.quick:
        args.repetitions, args.duration, args.warmup = 1, 1.0, 0.3
    stop_on_sigterm()
    contestants = [
        Contestant("asyncnet", "asyncnet", env=asyncnet_env()),
        Contestant("aiohttp", "aiohttp", python=BENCHVENV_PYTHON),
    ]
    who = []
    for c in contestants:
        reason = available(c)
        if reason is None:
            who.append(c)
        else:
            print(f"skipping {c.name}: {reason}")
    if shutil.which("squid") is None and not os.path.exists("/usr/sbin/squid"):
        print("squid is not installed: nothing to measure")
        return 1
    print(f"GET {args.path}, concurrency {args.concurrency}, {args.repetitions} x "
          f"{args.duration:g} s, client CPUs {args.client_cpus}, servers {args.server_cpus}")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with NginxServer(cpus=args.server_cpus) as nginx, Squid(args.server_cpus) as squid:
        url = nginx.url(args.path)
        for rep in range(args.repetitions):
            # Rotate the order so that drifting load falls on everyone alike.
            order = who[rep % len(who):] + who[: rep % len(who)]
            for c in order:
                for mode, proxy in (("direct", None), ("squid", squid.url)):
                    try:
                        result = run_one(c, url, proxy, args)
                    except ContestantFailed as exc:
                        print(f"   {c.name} {mode}: failed: {exc}")
                        continue
                    results.setdefault((c.name, mode), []).append(result)
    print()
    print(f"   {'contestant':<12}{'path':<8}{'median req/s':>13}{'cpu us/req':>12}")
    extra: dict[str, float] = {}
    for c in who:
        cpus = {}
        for mode in ("direct", "squid"):
            runs = results.get((c.name, mode), [])
            if not runs:
                continue
            rps = median([r["rps"] for r in runs])
            cpu = median([r["cpu_per_request_us"] for r in runs if r["cpu_per_request_us"]])
            cpus[mode] = cpu
            print(f"   {c.name:<12}{mode:<8}{rps:13.0f}{cpu:12.1f}")
        if len(cpus) == 2:
            extra[c.name] = cpus["squid"] - cpus["direct"]
            print(f"   {c.name:<12}proxy path costs {extra[c.name]:+.1f} us of client CPU "
                  f"per request ({fmt_ratio(cpus['squid'], cpus['direct'])} of direct)")
    if "asyncnet" in extra and "aiohttp" in extra:
        proxied = [median([r["cpu_per_request_us"] for r in results[(n, "squid")]])
                   for n in ("asyncnet", "aiohttp")]
        print()
        print("== target (issue 16): asyncnet's proxy path costs no more per request than "
              "aiohttp's")
        print(f"   client CPU per proxied request, asyncnet / aiohttp: "
              f"{fmt_ratio(proxied[0], proxied[1])}")
        print(f"   extra CPU for the proxy, asyncnet {extra['asyncnet']:+.1f} us, "
              f"aiohttp {extra['aiohttp']:+.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
