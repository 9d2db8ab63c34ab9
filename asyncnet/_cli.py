"""The ``python -m asyncnet`` command line: one argparse subcommand per job.

Each subcommand lives in the module that owns its job and registers itself
through ``add_parser(subparsers)``; this module only assembles them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m asyncnet",
        description=(
            "Protocol-level asyncio networking: a flow-controlled echo server and "
            "client, a strict HTTP/1.1 fetcher, and a loopback demo."
        ),
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"asyncnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    # Subcommand modules register here (each defines add_parser(subparsers)).
    from . import _cli_echo, _cli_fetch, _demo

    _cli_echo.add_parser(subparsers)
    _cli_fetch.add_parser(subparsers)
    _demo.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status (2 for bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run = args.run
    status: int = run(args)
    return status
