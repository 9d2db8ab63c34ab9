"""Test helpers for protocols built on asyncnet: a conformance kit for your own framers.

* :func:`check_framing` checks that a framing decodes the same frames however
  the byte stream is split, and that its size limit holds exactly.

Everything here raises :class:`AssertionError` on failure and needs no test
framework; hypothesis is used when installed, never required.
"""

from ._framing_check import check_framing as check_framing

__all__ = ["check_framing"]
