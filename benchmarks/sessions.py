"""N concurrent real-time sessions in one process: CPU per session and capture-to-send lag.

    python benchmarks/sessions.py          # ~1.5 minutes
    python benchmarks/sessions.py --smoke  # a few seconds (the test suite runs this)

N real `Session`s (20 ms frames paced at 1x) stream to the counting sink in another
process (benchmarks/sink.py), which stamps every frame's arrival. Frame `seq` of a source
that started at t0 is captured at t0 + (seq + 1) * 20 ms, so its lag is
`arrival - capture`: pacing lateness, the pipeline, the socket, and the sink's own
reading (the sink is on the other core; the baseline pays it too). Only frames captured
in a steady window (after every session is streaming) count, and the client process's
CPU time over that window gives CPU per session. Each run's line also names the garbage
collector's runs inside its window — the young ones, and the full ones with the longest:
one of those stalls every stream at once, and in a 3-s window it decides the p99.

Baseline, alternated with it at every N: N bare aiohttp tasks that sleep until each
frame's capture time and send it with the same encoding as the sessions (v2 binary frames
with seq, which the sink offers; JSON with `--json`), on the same event loop (`--loop`).
After N = 1, 50, 200, 500 a short bisection per arm finds the largest N whose p99 lag stays
under 20 ms (each probe is one run: a noisy neighbour can move it by a step). The summary
gives CPU per session as a ratio to the bare senders at N = 50 and 200, and the ratio of
the two largest N. With `--rounds R` each N runs R alternated rounds, every round's ratio
is printed, and the figures are each arm's median run:

    python benchmarks/sessions.py --counts 50 --bisect 0 --rounds 3   # ~1.5 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import reactivex
from reactivex import Observable, abc

from benchmarks.measure import (
    FRAME_S,
    add_loop_option,
    alternate,
    loop_name,
    machine,
    percentile,
    quiet,
    raise_fd_limit,
    run_on,
    summary,
)
from benchmarks.sink import SinkOptions, SinkProcess
from benchmarks.throughput import audio_binary, audio_message, frames_of, start_message
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
    full_gc_ms: list[float] = field(default_factory=list)  # in the window, each one's length
    young_gcs: int = 0  # collections of the younger generations in the window

    def line(self, arm: str) -> str:
        collections = f", young GC {self.young_gcs}x" if self.young_gcs else ""
        if self.full_gc_ms:
            collections += (
                f", full GC {len(self.full_gc_ms)}x (longest {max(self.full_gc_ms):.0f} ms)"
            )
        return (
            f"{arm:8s} N={self.n:4d}  lag p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:7.1f} ms  "
            f"max {self.max_ms:7.1f} ms  CPU {self.cpu_per_session * 100:6.3f}% of a core "
            f"per session ({self.cpu_per_session * self.n * 100:5.1f}% total), "
            f"{self.frames} frames{collections}"
        )


class Collections:
    """The collector's runs while installed as one of `gc.callbacks`: the full (oldest
    generation) ones each with its length — one of 100 ms stalls every stream at once, and
    in a 3-s window it puts the p99 past the target — and a count of the young ones, which
    come with the objects a frame leaves alive and, by promoting them, bring the full
    ones."""

    def __init__(self) -> None:
        self.lengths_ms: list[float] = []
        self.young = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            self.young += phase == "start"
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.lengths_ms.append((time.perf_counter() - self._started) * 1000)


def silence(seconds: float) -> Samples:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def started(samples: Samples, starts: dict[str, float], key: str) -> Observable[AudioFrame]:
    """A real-time source that notes when it started (frame seq is captured at start + ...)."""

    def factory(_: abc.SchedulerBase) -> Observable[AudioFrame]:
        frames = from_samples(samples, realtime=True)
        starts[key] = time.time()
        return frames

    return reactivex.defer(factory)


async def steady_window(
    sink: SinkProcess,
    n: int,
    ready: Callable[[], Awaitable[None]],
    window: float,
    starts: dict[str, float],
) -> Point:
    """Wait until every stream flows, measure `window` seconds, collect the lags."""
    await ready()
    await asyncio.sleep(SETTLE_S)
    collections = Collections()
    gc.callbacks.append(collections)
    opened, cpu = time.time(), time.process_time()
    try:
        await asyncio.sleep(window)
    finally:
        gc.callbacks.remove(collections)
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
    if not lags:  # every frame of the window still on its way: lag beyond measuring
        inf = float("inf")
        cpu_per_session = cpu / (closed - opened) / n
        return Point(
            n=n,
            p50_ms=inf,
            p99_ms=inf,
            max_ms=inf,
            cpu_per_session=cpu_per_session,
            frames=0,
            full_gc_ms=collections.lengths_ms,
            young_gcs=collections.young,
        )
    return Point(
        n=n,
        p50_ms=percentile(lags, 50),
        p99_ms=percentile(lags, 99),
        max_ms=max(lags),
        cpu_per_session=cpu / (closed - opened) / n,
        frames=len(lags),
        full_gc_ms=collections.lengths_ms,
        young_gcs=collections.young,
    )


Measure = Callable[
    [SinkProcess, int, Callable[[], Awaitable[None]], float, dict[str, float]], Awaitable[Point]
]


async def run_sessions(
    sink: SinkProcess,
    n: int,
    window: float,
    binary: bool = True,
    measure: Measure = steady_window,
    *,
    levels: bool = True,
) -> Point:
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

    config = SessionConfig(
        url=sink.url,
        backoff=BackoffPolicy(initial=0.1),
        connect_timeout=30,
        binary_seq=binary,
        level_interval=SessionConfig.level_interval if levels else None,
    )
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
        point = await measure(sink, n, ready, window, starts)
    finally:
        await asyncio.gather(*(s.stop(timeout=10) for s in sessions))
        reports = await asyncio.gather(*runs)
    failed = [r for r in reports if r.outcome == "failed" or r.reconnects]
    if failed:
        raise RuntimeError(f"{len(failed)} sessions failed or reconnected: {failed[0].reason}")
    return point


async def run_bare(
    sink: SinkProcess, n: int, window: float, binary: bool = True, measure: Measure = steady_window
) -> Point:
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
            await ws.send_str(start_message(session_id, binary=binary))
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
                if binary:
                    await ws.send_bytes(audio_binary(frame))
                else:
                    await ws.send_str(audio_message(frame))
            await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
            await reader

    tasks = [asyncio.create_task(one()) for _ in range(n)]

    async def ready() -> None:
        await asyncio.wait_for(all_streaming.wait(), 60)

    try:
        point = await measure(sink, n, ready, window, starts)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return point


Arm = Callable[[SinkProcess, int, float, bool], Awaitable[Point]]


async def largest_n(
    sink: SinkProcess,
    arm: Arm,
    name: str,
    points: dict[int, Point],
    window: float,
    binary: bool,
    steps: int,
) -> tuple[int, int | None]:
    """The largest N with p99 lag under the target: from the measured points, then
    `steps` probes of bisection between the last passing and the first failing N."""
    passing = [n for n, p in points.items() if p.p99_ms < TARGET_P99_MS]
    failing = [n for n, p in points.items() if p.p99_ms >= TARGET_P99_MS]
    low = max(passing, default=0)
    high = min((n for n in failing if n > low), default=None)
    for _ in range(steps if high is not None else 0):
        assert high is not None
        if high - low <= max(10, low // 10):
            break
        middle = (low + high) // 2
        point = await arm(sink, middle, window, binary)
        print(point.line(f"probe {name}"))
        if point.p99_ms < TARGET_P99_MS:
            low = middle
        else:
            high = middle
    return low, high


def held(low: int, high: int | None) -> str:
    return f">= {low}" if high is None else f"{low} (fails at {high})"


def ratio(session: Point, bare: Point) -> float:
    return session.cpu_per_session / bare.cpu_per_session


def middle(points: list[Point]) -> Point:
    """The run with the median CPU per session (of an odd count; the lower middle else)."""
    return sorted(points, key=lambda p: p.cpu_per_session)[(len(points) - 1) // 2]


async def main(
    counts: list[int],
    window: float,
    bisect_steps: int,
    binary: bool,
    rounds: int = 1,
    levels: bool = True,
) -> None:
    quiet()
    raise_fd_limit(4 * max(counts) + 256)
    print(f"machine: {machine()}")
    framing = "binary v2" if binary else "JSON"
    print(
        f"N = {', '.join(map(str, counts))}; window {window:.0f} s of steady streaming per run; "
        f"{rounds} alternated round(s) per N (figures: the median run of each arm); "
        f"{framing} audio in both arms; {loop_name()}"
        + ("" if levels else "; sessions without a level meter (level_interval=None)")
    )
    sessions: Arm = functools.partial(run_sessions, levels=levels)
    points: dict[int, Point] = {}
    bares: dict[int, Point] = {}
    with SinkProcess(SinkOptions(arrivals=True)) as sink:
        for index, n in enumerate(counts):
            arms: dict[str, Callable[[], Awaitable[Point]]] = {
                "session": lambda n=n: sessions(sink, n, window, binary),  # type: ignore[misc]
                "bare": lambda n=n: run_bare(sink, n, window, binary),  # type: ignore[misc]
            }
            if index % 2:  # alternate which arm goes first
                arms = dict(reversed(list(arms.items())))
            result = await alternate(arms, rounds)
            for session_point, bare_point in zip(result["session"], result["bare"], strict=True):
                print(session_point.line("session"))
                print(bare_point.line("bare"))
                print(
                    f"ratio    N={n:4d}  CPU per session "
                    f"{ratio(session_point, bare_point):.2f}x the bare"
                )
            points[n], bares[n] = middle(result["session"]), middle(result["bare"])
        low, high = await largest_n(sink, sessions, "session", points, window, binary, bisect_steps)
        bare_low, bare_high = await largest_n(
            sink, run_bare, "bare", bares, window, binary, bisect_steps
        )
    print(f"target: p99 lag < {TARGET_P99_MS:.0f} ms holds up to N = {held(low, high)}")
    print(f"bare:   p99 lag < {TARGET_P99_MS:.0f} ms holds up to N = {held(bare_low, bare_high)}")
    biggest = max(points)
    single = points[min(points)]
    cpu = "; ".join(
        f"CPU per session {points[n].cpu_per_session * 100:.3f}% of a core at N={n} = "
        f"{ratio(points[n], bares[n]):.2f}x the bare ({bares[n].cpu_per_session * 100:.3f}%)"
        for n in counts
        if n > 1
    )
    fails = "" if high is None else f" (fails at {high})"
    summary(
        f"max sessions at p99 lag < {TARGET_P99_MS:.0f} ms: {low}{fails}, "
        f"{low / max(bare_low, 1):.2f}x the bare senders' {held(bare_low, bare_high)}; "
        f"N={single.n} p99 {single.p99_ms:.1f} ms, "
        f"N={biggest} p99 {points[biggest].p99_ms:.1f} ms; {cpu}; {framing}, {loop_name()}"
        + ("" if levels else ", sessions without levels")
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--window", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--bisect", type=int, default=3, help="probes per arm for the largest N")
    parser.add_argument("--counts", default="1,50,200,500", help="the N measured in both arms")
    parser.add_argument("--json", action="store_true", help="JSON audio in both arms")
    parser.add_argument(
        "--no-levels",
        action="store_true",
        help="sessions without a level meter (level_interval=None), as a headless bot runs them",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternated rounds per N (medians of each arm)"
    )
    add_loop_option(parser)
    args = parser.parse_args()
    if args.smoke:
        run_on(args.loop, main([1, 5], 1.0, 0, not args.json, 1, not args.no_levels))
    else:
        counts = [int(n) for n in args.counts.split(",")]
        run_on(
            args.loop,
            main(counts, args.window, args.bisect, not args.json, args.rounds, not args.no_levels),
        )
