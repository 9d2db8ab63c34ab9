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


def build_parser(prog: str = "asyncnet") -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered.

    ``prog`` is how the user invoked us, shown in usage lines: ``asyncnet``
    for the console script, ``python -m asyncnet`` from ``__main__``.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
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


def main(argv: Sequence[str] | None = None, *, prog: str = "asyncnet") -> int:
    """Run the command line and return its exit status (2 for bad usage)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    run = args.run
    status: int = run(args)
    return status
