"""Pin the public surface: every name in ``__all__`` exists, and nothing slips in or out."""

from __future__ import annotations

import inspect
from pathlib import Path

import asyncnet

# The public API, in one list: adding or removing a name is a deliberate act.
EXPECTED = {
    "BulkResult",
    "EchoClient",
    "EchoClientProtocol",
    "EchoServer",
    "EchoServerProtocol",
    "EchoServerStatistics",
    "open_echo_client",
    "start_echo_server",
    "AsyncNetError",
    "BodyNotReplayable",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
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
    "FetchResult",
    "BodySink",
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
}


def test_all_is_exactly_the_expected_surface() -> None:
    assert set(asyncnet.__all__) == EXPECTED
    assert len(asyncnet.__all__) == len(set(asyncnet.__all__))


def test_every_exported_name_exists() -> None:
    for name in asyncnet.__all__:
        assert hasattr(asyncnet, name), name


def test_public_objects_live_in_private_modules_but_claim_the_package() -> None:
    for name in asyncnet.__all__:
        obj = getattr(asyncnet, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        # Tracebacks and reprs say asyncnet.X (issue 18) ...
        assert obj.__module__ == "asyncnet", (name, obj.__module__)
        # ... while the code stays in the underscore modules.
        source = Path(inspect.getfile(obj))
        in_package = source.parent.name in ("asyncnet", "_http", "_fetch")
        assert in_package and source.name.startswith("_"), (name, source)


def test_no_public_submodules_besides_the_package() -> None:
    module_type = type(asyncnet)
    public = [
        n
        for n in dir(asyncnet)
        if not n.startswith("_")
        and n not in EXPECTED
        and not isinstance(getattr(asyncnet, n), module_type)
    ]
    assert public == []
