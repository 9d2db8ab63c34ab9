"""The ``python -m asyncnet`` command line: one argparse subcommand per job.

Each subcommand lives in the module that owns its job and registers itself
through ``add_parser(subparsers)``; this module only assembles them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["build_parser", "main", "non_negative_int", "positive_float", "positive_int"]


# Argument types shared by the subcommands: argparse turns ArgumentTypeError
# into a usage error (exit status 2) that quotes the message.


def positive_int(text: str) -> int:
    """Parse an integer of at least 1 for ``type=``; counts and limits must not be 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer of 0 or more for ``type=``; 0 means "none" (e.g. no retries)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def positive_float(text: str) -> float:
    """Parse a number of seconds above 0 for ``type=``; NaN is refused too."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


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
