"""N concurrent real-time sessions in one process: CPU per session and capture-to-send lag.

    python benchmarks/sessions.py          # ~1.5 minutes
    python benchmarks/sessions.py --smoke  # a few seconds (the test suite runs this)

N real `Session`s (20 ms frames paced at 1x) stream to the counting sink in another
process (benchmarks/sink.py), which stamps every frame's arrival. Frame `seq` of a source
that started at t0 is captured at t0 + (seq + 1) * 20 ms, so its lag is
`arrival - capture`: pacing lateness, the pipeline, the socket, and the sink's own
reading (the sink is on the other core; the baseline pays it too). Only frames captured
in a steady window (after every session is streaming) count, and the client process's
CPU time over that window gives CPU per session.

Baseline, alternated with it at every N: N bare aiohttp tasks that sleep until each
frame's capture time and send it with the same encoding (the floor for this machine).
After N = 1, 50, 200, 500 a short bisection finds the largest N whose p99 lag stays under
20 ms (each probe is one run: a noisy neighbour can move it by a step).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import numpy as np
import reactivex
from reactivex import Observable, abc

from benchmarks.measure import (
    FRAME_S,
    alternate,
    machine,
    percentile,
    quiet,
    raise_fd_limit,
    summary,
)
from benchmarks.sink import SinkOptions, SinkProcess
from benchmarks.throughput import audio_message, frames_of, start_message
from operators.backoff import BackoffPolicy
from pipeline.audio import SAMPLE_RATE, AudioFrame, Samples
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import StatusEvent, Streaming

TARGET_P99_MS = 20.0
SETTLE_S = 0.5  # after the last session streams, before the window opens


@dataclass
class Point:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_per_session: float  # fraction of one core
    frames: int

    def line(self, arm: str) -> str:
        return (
            f"{arm:8s} N={self.n:4d}  lag p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:7.1f} ms  "
            f"max {self.max_ms:7.1f} ms  CPU {self.cpu_per_session * 100:6.3f}% of a core "
            f"per session ({self.cpu_per_session * self.n * 100:5.1f}% total), "
            f"{self.frames} frames"
        )


def silence(seconds: float) -> Samples:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def started(samples: Samples, starts: dict[str, float], key: str) -> Observable[AudioFrame]:
    """A real-time source that notes when it started (frame seq is captured at start + ...)."""

    def factory(_: abc.SchedulerBase) -> Observable[AudioFrame]:
        frames = from_samples(samples, realtime=True)
        starts[key] = time.time()
        return frames

    return reactivex.defer(factory)


async def _window(
    sink: SinkProcess,
    n: int,
    ready: Callable[[], Awaitable[None]],
    window: float,
    starts: dict[str, float],
) -> Point:
    """Wait until every stream flows, measure `window` seconds, collect the lags."""
    await ready()
    await asyncio.sleep(SETTLE_S)
    opened, cpu = time.time(), time.process_time()
    await asyncio.sleep(window)
    closed, cpu = time.time(), time.process_time() - cpu
    await asyncio.sleep(0.2)  # let the window's last frames arrive
    stats = await sink.stats()
    lags: list[float] = []
    for sid, tally in stats["sessions"].items():
        t0 = starts[sid]
        for seq, arrival in tally["arrivals"]:
            captured = t0 + (seq + 1) * FRAME_S
            if opened <= captured < closed:
                lags.append((arrival - captured) * 1000)
    if not lags:
        raise RuntimeError("no frame arrived in the window")
    return Point(
        n=n,
        p50_ms=percentile(lags, 50),
        p99_ms=percentile(lags, 99),
        max_ms=max(lags),
        cpu_per_session=cpu / (closed - opened) / n,
        frames=len(lags),
    )


async def run_sessions(sink: SinkProcess, n: int, window: float) -> Point:
    await sink.reset()
    samples = silence(window + SETTLE_S + 10.0)
    starts: dict[str, float] = {}
    streaming = 0
    all_streaming = asyncio.Event()

    def on_status(event: StatusEvent) -> None:
        nonlocal streaming
        if isinstance(event, Streaming):
            streaming += 1
            if streaming == n:
                all_streaming.set()

    config = SessionConfig(url=sink.url, backoff=BackoffPolicy(initial=0.1), connect_timeout=30)
    sessions = []
    for _ in range(n):
        ids = SessionIds.new()
        session = Session(config, started(samples, starts, ids.session_id), ids=ids)
        session.status.subscribe(on_status)
        sessions.append(session)
    runs = [asyncio.create_task(s.run()) for s in sessions]

    async def ready() -> None:
        await asyncio.wait_for(all_streaming.wait(), 60)

    try:
        point = await _window(sink, n, ready, window, starts)
    finally:
        await asyncio.gather(*(s.stop(timeout=10) for s in sessions))
        reports = await asyncio.gather(*runs)
    failed = [r for r in reports if r.outcome == "failed" or r.reconnects]
    if failed:
        raise RuntimeError(f"{len(failed)} sessions failed or reconnected: {failed[0].reason}")
    return point


async def run_bare(sink: SinkProcess, n: int, window: float) -> Point:
    await sink.reset()
    frames = frames_of(silence(window + SETTLE_S + 10.0))
    starts: dict[str, float] = {}
    streaming = 0
    all_streaming = asyncio.Event()
    stop = asyncio.Event()

    async def one() -> None:
        nonlocal streaming
        session_id = str(uuid.uuid4())
        async with aiohttp.ClientSession() as http, http.ws_connect(sink.url) as ws:
            await ws.receive_str()  # connected
            await ws.send_str(start_message(session_id))
            await ws.receive_str()  # streaming
            streaming += 1
            if streaming == n:
                all_streaming.set()

            async def drain() -> None:
                async for _ in ws:
                    pass

            reader = asyncio.create_task(drain())
            loop = asyncio.get_running_loop()
            starts[session_id] = time.time()
            origin = loop.time()
            for frame in frames:
                await asyncio.sleep(origin + (frame.seq + 1) * FRAME_S - loop.time())
                if stop.is_set():
                    break
                await ws.send_str(audio_message(frame))
            await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
            await reader

    tasks = [asyncio.create_task(one()) for _ in range(n)]

    async def ready() -> None:
        await asyncio.wait_for(all_streaming.wait(), 60)

    try:
        point = await _window(sink, n, ready, window, starts)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return point


async def main(counts: list[int], window: float, bisect_steps: int) -> None:
    quiet()
    raise_fd_limit(4 * max(counts) + 256)
    print(f"machine: {machine()}")
    print(f"N = {', '.join(map(str, counts))}; window {window:.0f} s of steady streaming per run")
    points: dict[int, Point] = {}
    with SinkProcess(SinkOptions(arrivals=True)) as sink:
        for index, n in enumerate(counts):
            arms: dict[str, Callable[[], Awaitable[Point]]] = {
                "session": lambda n=n: run_sessions(sink, n, window),  # type: ignore[misc]
                "bare": lambda n=n: run_bare(sink, n, window),  # type: ignore[misc]
            }
            if index % 2:  # alternate which arm goes first
                arms = dict(reversed(list(arms.items())))
            result = await alternate(arms, 1)
            points[n] = result["session"][0]
            print(points[n].line("session"))
            print(result["bare"][0].line("bare"))
        passing = [n for n, p in points.items() if p.p99_ms < TARGET_P99_MS]
        failing = [n for n, p in points.items() if p.p99_ms >= TARGET_P99_MS]
        low = max(passing, default=0)
        high = min((n for n in failing if n > low), default=None)
        for _ in range(bisect_steps if high is not None else 0):
            assert high is not None
            if high - low <= max(10, low // 10):
                break
            middle = (low + high) // 2
            point = await run_sessions(sink, middle, window)
            print(point.line("probe"))
            if point.p99_ms < TARGET_P99_MS:
                low = middle
            else:
                high = middle
    held = f">= {low}" if high is None else f"{low} (fails at {high})"
    print(f"target: p99 lag < {TARGET_P99_MS:.0f} ms holds up to N = {held}")
    biggest = points[max(points)]
    single = points[min(points)]
    summary(
        f"max sessions at p99 lag < {TARGET_P99_MS:.0f} ms: {low}"
        f"{'' if high is None else f' (fails at {high})'}; "
        f"N={single.n} p99 {single.p99_ms:.1f} ms, "
        f"N={biggest.n} p99 {biggest.p99_ms:.1f} ms; "
        f"CPU per session {biggest.cpu_per_session * 100:.3f}% of a core at N={biggest.n}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--window", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--bisect", type=int, default=3, help="probes to find the largest N")
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(main([1, 5], 1.0, 0))
    else:
        asyncio.run(main([1, 50, 200, 500], args.window, args.bisect))
