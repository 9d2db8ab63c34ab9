"""``python -m asyncnet``: the command line."""

from ._cli import main

raise SystemExit(main(prog="python -m asyncnet"))
