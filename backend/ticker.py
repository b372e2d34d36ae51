"""Acks and metrics on a clock: acks every `ack_interval` (v0.3), and while audio flows,
`metrics` (and `backpressure` when a recogniser falls behind) every `metrics_interval`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from backend.config import BackendConfig
from backend.session_state import Send
from backend.store import BackendSession
from pipeline.messages import to_wire
from pipeline.protocol import Ack, Status


def ack(session: BackendSession, source: str, send: Send) -> None:
    """Acknowledge what `source` may have acked now, if that is more than before."""
    stream = session.streams[source]
    # not beyond what the recogniser took (v0.3 flow control), nor what is kept
    seq = min(stream.ackable_seq, session.state.persisted(source))
    stream.frames_since_ack = 0
    if seq > stream.acked_seq:
        stream.acked_seq = seq
        send(to_wire(Ack(source=source, seq=seq)))


def report(session: BackendSession, seen: dict[str, int], send: Send) -> None:
    """`metrics` of each source that received audio since the last report (`seen`)."""
    for source, stream in list(session.streams.items()):
        if stream.received_bytes == seen.get(source):
            continue  # metrics only while audio flows
        seen[source] = stream.received_bytes
        overloaded = stream.overloaded
        metrics = stream.metrics()
        send(metrics)
        if overloaded:
            backpressure = Status(
                state="backpressure",
                message=f"recogniser behind on {source}",
                dropped_frames=metrics["dropped_total"],
            )
            send(to_wire(backpressure))


async def tick(
    session: BackendSession,
    config: BackendConfig,
    *,
    acks: bool,
    send: Send,
    closed: Callable[[], bool],
) -> None:
    """Acks (when `acks`: v0.3) at `ack_interval`, metrics at `metrics_interval`,
    until `closed()`."""
    loop = asyncio.get_running_loop()
    next_metrics = loop.time() + config.metrics_interval
    seen: dict[str, int] = {}
    while not closed():
        await asyncio.sleep(config.ack_interval)
        if acks:
            for source in list(session.streams):
                ack(session, source, send)
        if loop.time() < next_metrics:
            continue
        next_metrics = loop.time() + config.metrics_interval
        report(session, seen, send)
