"""The ``python -m asyncnet`` command line: one argparse subcommand per job.

Each subcommand lives in the module that owns its job and registers itself
through ``add_parser(subparsers)``; this module only assembles them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .._version import __version__
from ._demo import add_parser as add_demo_parser
from ._echo import add_parser as add_echo_parsers
from ._fetch import add_parser as add_fetch_parser

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
    parser.add_argument("--version", action="version", version=f"asyncnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    # Subcommand modules register here (each defines add_parser(subparsers)).
    add_echo_parsers(subparsers)
    add_fetch_parser(subparsers)
    add_demo_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status (2 for bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run = args.run
    status: int = run(args)
    return status
