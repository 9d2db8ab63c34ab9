"""Per-phase latency histograms from HTTPClient(trace=...), against a loopback server."""

import asyncio
import collections
import socket
import statistics

from _http_server import Handler, serve

import asyncnet
from asyncnet import tracing


class Hello(Handler):
    def setup(self) -> None:
        super().setup()
        # http.server writes the head and the body separately; without this,
        # Nagle's algorithm holds the body until the client's delayed ACK,
        # and the "body" phase below shows those 40 ms (try it).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.reply(200, b"hello")


# phase name: (the event that starts it, the event that ends it)
PHASES = {
    "connect": (tracing.ConnectStart, tracing.ConnectEnd),
    "ttfb": (tracing.RequestHeadSent, tracing.ResponseHeadReceived),
    "body": (tracing.ResponseHeadReceived, tracing.ResponseBodyComplete),
    "request": (tracing.RequestHeadSent, tracing.ResponseBodyComplete),
}


class PhaseTimer:
    """A trace callback: pairs events into phase durations (seconds), per connection."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = collections.defaultdict(list)
        self._open: dict[tuple[str, object], float] = {}

    def __call__(self, event: tracing.TraceEvent) -> None:
        # Connect events come before the connection exists: keyed by None
        # (this example opens one connection at a time).
        who = getattr(event, "connection", None)
        for phase, (start, end) in PHASES.items():
            if isinstance(event, start):
                self._open[phase, who] = event.time
            elif isinstance(event, end) and (phase, who) in self._open:
                self.samples[phase].append(event.time - self._open.pop((phase, who)))


def histogram(durations: list[float]) -> list[str]:
    """Powers-of-two buckets in microseconds, one bar per bucket."""
    buckets = collections.Counter(max(1, int(d * 1e6)).bit_length() for d in durations)
    widest = max(buckets.values())
    return [
        f"  < {2 ** bits:>7} us  {'#' * max(1, round(40 * buckets[bits] / widest))}"
        f" {buckets[bits]}"
        for bits in range(min(buckets), max(buckets) + 1)
        if buckets[bits]
    ]


async def main(base: str) -> None:
    timer = PhaseTimer()
    async with asyncnet.HTTPClient(trace=timer) as client:
        for _ in range(200):
            await client.get(base + "/")
    for phase in PHASES:
        durations = timer.samples[phase]
        median = statistics.median(durations) * 1e6
        print(f"{phase}: {len(durations)} samples, median {median:.0f} us")
        print("\n".join(histogram(durations)))


with serve(Hello) as base:
    asyncio.run(main(base))
