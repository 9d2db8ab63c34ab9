"""Trace events of :class:`~asyncnet.HTTPClient` (``HTTPClient(trace=callback)``).

Each event is a frozen dataclass with ``time`` (a :func:`time.monotonic`
reading) and the fields of its step; :mod:`asyncnet._http._trace` documents
their order. Match on the classes::

    def trace(event: asyncnet.tracing.TraceEvent) -> None:
        if isinstance(event, asyncnet.tracing.ResponseHeadReceived):
            ...
"""

from ._http._trace import PUBLIC_NAMES
from ._http._trace import ConnectEnd as ConnectEnd
from ._http._trace import ConnectionClosedEvent as ConnectionClosedEvent
from ._http._trace import ConnectionCreated as ConnectionCreated
from ._http._trace import ConnectionReleased as ConnectionReleased
from ._http._trace import ConnectionReused as ConnectionReused
from ._http._trace import ConnectStart as ConnectStart
from ._http._trace import DNSEnd as DNSEnd
from ._http._trace import DNSStart as DNSStart
from ._http._trace import ProxyTunnelEstablished as ProxyTunnelEstablished
from ._http._trace import RequestBodySent as RequestBodySent
from ._http._trace import RequestHeadSent as RequestHeadSent
from ._http._trace import ResponseBodyComplete as ResponseBodyComplete
from ._http._trace import ResponseHeadReceived as ResponseHeadReceived
from ._http._trace import TLSEnd as TLSEnd
from ._http._trace import TLSStart as TLSStart
from ._http._trace import TraceCallback as TraceCallback
from ._http._trace import TraceEvent as TraceEvent

__all__ = list(PUBLIC_NAMES)
