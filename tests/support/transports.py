"""A transport that records what a protocol asks of it, for unit tests of flow control."""

from __future__ import annotations

import asyncio
from typing import Any


class RecordingTransport(asyncio.Transport):
    """A transport that records flow-control calls instead of touching a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default
