"""asyncnet: protocol-level networking on asyncio, with flow control built in.

Everything public is importable from here; the underscore modules behind it
are implementation detail and may move between releases.
"""

from . import _echo
from ._connection import Connection as Connection
from ._echo import BulkResult as BulkResult
from ._echo import EchoClient as EchoClient
from ._echo import EchoClientProtocol as EchoClientProtocol
from ._echo import EchoServer as EchoServer
from ._echo import EchoServerProtocol as EchoServerProtocol
from ._echo import EchoServerStatistics as EchoServerStatistics
from ._echo import open_echo_client as open_echo_client
from ._echo import start_echo_server as start_echo_server
from ._errors import AsyncNetError as AsyncNetError
from ._errors import BodyNotReplayable as BodyNotReplayable
from ._errors import BodyTooLarge as BodyTooLarge
from ._errors import ConnectError as ConnectError
from ._errors import ConnectionClosed as ConnectionClosed
from ._errors import ConnectTimeout as ConnectTimeout
from ._errors import DecodeError as DecodeError
from ._errors import EndOfStream as EndOfStream
from ._errors import FrameTooLarge as FrameTooLarge
from ._errors import HTTPStatusError as HTTPStatusError
from ._errors import IdleTimeout as IdleTimeout
from ._errors import IncompleteFrame as IncompleteFrame
from ._errors import InvalidHeader as InvalidHeader
from ._errors import InvalidMethod as InvalidMethod
from ._errors import InvalidURL as InvalidURL
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import PoolTimeout as PoolTimeout
from ._errors import ProtocolError as ProtocolError
from ._errors import ProxyError as ProxyError
from ._errors import ReadError as ReadError
from ._errors import ReadTimeout as ReadTimeout
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._errors import StreamClosed as StreamClosed
from ._errors import StreamConsumed as StreamConsumed
from ._errors import StreamError as StreamError
from ._errors import TimeoutError as TimeoutError
from ._errors import TooManyRedirects as TooManyRedirects
from ._errors import TotalTimeout as TotalTimeout
from ._errors import TransportError as TransportError
from ._errors import UsageError as UsageError
from ._errors import WriteError as WriteError
from ._errors import WriteTimeout as WriteTimeout
from ._fetch import BodySink as BodySink
from ._fetch import FetchResult as FetchResult
from ._fetch import fetch_all as fetch_all
from ._fetch import fetch_iter as fetch_iter
from ._flow import FlowControlProtocol as FlowControlProtocol
from ._flow import ReceiveBuffer as ReceiveBuffer
from ._flow import WaterMarks as WaterMarks
from ._framed import ConnectionStatistics as ConnectionStatistics
from ._framed import FramedProtocol as FramedProtocol
from ._framing import Delimited as Delimited
from ._framing import FixedSize as FixedSize
from ._framing import FrameDecoder as FrameDecoder
from ._framing import Framing as Framing
from ._framing import LengthPrefixed as LengthPrefixed
from ._framing import Lines as Lines
from ._framing import Raw as Raw
from ._http._auth import Auth as Auth
from ._http._auth import BasicAuth as BasicAuth
from ._http._auth import BearerAuth as BearerAuth
from ._http._auth import DigestAuth as DigestAuth
from ._http._client import HTTPClient as HTTPClient
from ._http._client import RequestOptions as RequestOptions
from ._http._headers import Headers as Headers
from ._http._hooks import Request as Request
from ._http._models import ClientStatistics as ClientStatistics
from ._http._models import Limits as Limits
from ._http._models import Response as Response
from ._http._models import Timeout as Timeout
from ._http._parser import ParserLimits as ParserLimits
from ._http._sse import ServerSentEvent as ServerSentEvent
from ._http._url import URL as URL
from ._server import Server as Server
from ._server import ServerStatistics as ServerStatistics
from ._server import open_connection as open_connection
from ._server import start_server as start_server
from ._version import __version__ as __version__

__all__ = [
    *_echo.__all__,  # every name of the echo server and client is public
    "AsyncNetError",
    "BodyNotReplayable",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
    "BodySink",
    "FetchResult",
    "FlowControlProtocol",
    "HTTPStatusError",
    "Headers",
    "IdleTimeout",
    "InvalidHeader",
    "InvalidMethod",
    "InvalidURL",
    "LocalProtocolError",
    "ParserLimits",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "ReceiveBuffer",
    "RemoteProtocolError",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "TimeoutError",
    "TooManyRedirects",
    "TotalTimeout",
    "TransportError",
    "URL",
    "UsageError",
    "WaterMarks",
    "WriteError",
    "WriteTimeout",
    "HTTPClient",
    "Request",
    "RequestOptions",
    "ClientStatistics",
    "Limits",
    "Response",
    "Timeout",
    "__version__",
    "fetch_all",
    "fetch_iter",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "BodyTooLarge",
    "DigestAuth",
    "ServerSentEvent",
    "Delimited",
    "EndOfStream",
    "FixedSize",
    "FrameDecoder",
    "FrameTooLarge",
    "Framing",
    "IncompleteFrame",
    "LengthPrefixed",
    "Lines",
    "Raw",
    "Connection",
    "ConnectionStatistics",
    "FramedProtocol",
    "Server",
    "ServerStatistics",
    "open_connection",
    "start_server",
]


#: Where each public class or function is defined (``"asyncnet._fetch"``),
#: before :func:`_claim_public_names` renamed its module: for tools that read
#: source (``inspect.getsource``, the docs build's ``#:`` comments), which
#: look in the module ``__module__`` names.
_defined_in: dict[str, str] = {}


def _claim_public_names() -> None:
    """Make tracebacks and reprs name ``asyncnet.X`` rather than ``asyncnet._mod.X``.

    Only classes and functions defined in an asyncnet submodule are touched;
    pickling still works, because each name is importable from here.
    """
    for name in __all__:
        obj = globals()[name]
        module = getattr(obj, "__module__", None)
        if callable(obj) and isinstance(module, str) and module.startswith("asyncnet."):
            _defined_in[name] = module
            obj.__module__ = __name__


_claim_public_names()
