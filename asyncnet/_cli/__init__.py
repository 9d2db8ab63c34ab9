"""The command line: ``python -m asyncnet`` and the ``asyncnet`` console script.

``_main`` assembles the argparse subcommands; each subcommand lives in the
module of its job (``_echo``, ``_fetch``, ``_demo``) and shares argument types
from ``_args``.  ``_demo_server`` is the loopback HTTP server the demo and the
tests fetch from.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
