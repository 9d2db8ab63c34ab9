"""Test helpers for protocols built on asyncnet: a conformance kit for your own protocols.

* :func:`check_framing` checks that a framing decodes the same frames however
  the byte stream is split, and that its size limit holds exactly.
* :func:`memory_connection_pair` gives two connected
  :class:`~asyncnet.Connection` objects without sockets, with real backpressure.
* :func:`check_two_way_stream` runs the scenarios every connection pair must
  pass: both directions, concurrent senders, a clogged peer, EOF, close, abort.
* :class:`MockTransport` answers an :class:`~asyncnet.HTTPClient`'s requests
  with a function of yours, through the client's real parser and pipeline.

Everything here raises :class:`AssertionError` on failure and needs no test
framework; hypothesis is used when installed, never required.
"""

from ._framing_check import check_framing as check_framing
from ._memory import MemoryTransport as MemoryTransport
from ._memory import memory_connection_pair as memory_connection_pair
from ._mock import MockHandler as MockHandler
from ._mock import MockResponse as MockResponse
from ._mock import MockTransport as MockTransport
from ._streams import check_two_way_stream as check_two_way_stream

__all__ = [
    "MemoryTransport",
    "MockHandler",
    "MockResponse",
    "MockTransport",
    "check_framing",
    "check_two_way_stream",
    "memory_connection_pair",
]
