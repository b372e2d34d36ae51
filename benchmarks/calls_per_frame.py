"""Python calls per frame: the session's frame path against the bare aiohttp loops, counted.

    python benchmarks/calls_per_frame.py          # ~40 s
    python benchmarks/calls_per_frame.py --smoke  # a few seconds (the test suite runs this)

CPU figures on a shared machine move by 20-40% between runs minutes apart; the number of
Python-level calls (functions and builtins, as cProfile counts them) a frame costs moves
by a fraction of a percent, so it shows what a change to the frame path bought when the
CPU figures cannot. It is not the cost itself: a call to the socket costs more than a
call to `len`, and profiling slows every call.

- Real time: N sessions (benchmarks/sessions.py) against N bare senders, calls counted
  over a steady window and divided by the frames of that window (N x window / 20 ms).
- File at full speed: one session with a `realtime=False` source against the aiohttp
  loop of benchmarks/throughput.py, calls over the whole run divided by its frames.
Both arms on one loop (`--loop`), binary v2 audio (`--json`: JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from collections.abc import Awaitable, Callable

from benchmarks.measure import (
    FRAME_S,
    add_loop_option,
    loop_name,
    machine,
    quiet,
    raise_fd_limit,
    run_on,
    summary,
)
from benchmarks.sessions import SETTLE_S, Point, run_bare, run_sessions
from benchmarks.sink import SinkOptions, SinkProcess
from benchmarks.throughput import bare_aiohttp, frames_of, noise, pipeline


def calls(profile: cProfile.Profile) -> int:
    return sum(row[1] for row in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]


class Counted:
    """A steady window for benchmarks/sessions.py's arms that counts calls instead of CPU."""

    def __init__(self) -> None:
        self.per_frame = 0.0

    async def __call__(
        self,
        sink: SinkProcess,
        n: int,
        ready: Callable[[], Awaitable[None]],
        window: float,
        starts: dict[str, float],
    ) -> Point:
        await ready()
        await asyncio.sleep(SETTLE_S)
        profile = cProfile.Profile()
        profile.enable()
        await asyncio.sleep(window)
        profile.disable()
        frames = round(n * window / FRAME_S)
        self.per_frame = calls(profile) / frames
        return Point(n=n, p50_ms=0, p99_ms=0, max_ms=0, cpu_per_session=0, frames=frames)


async def real_time(n: int, window: float, binary: bool) -> tuple[float, float]:
    session, bare = Counted(), Counted()
    with SinkProcess(SinkOptions()) as sink:
        await run_sessions(sink, n, window, binary, measure=session)
        await run_bare(sink, n, window, binary, measure=bare)
    return session.per_frame, bare.per_frame


async def file(seconds: float, binary: bool) -> tuple[float, float]:
    samples = noise(seconds)
    frames = frames_of(samples)
    per_frame: list[float] = []
    with SinkProcess() as sink:
        arms: list[Callable[[], Awaitable[object]]] = [
            lambda: pipeline(sink.url, samples, binary),
            lambda: bare_aiohttp(sink.url, frames, binary),
        ]
        for arm in arms:
            await arm()  # warm: imports, first connection
            profile = cProfile.Profile()
            profile.enable()
            await arm()
            profile.disable()
            per_frame.append(calls(profile) / len(frames))
    return per_frame[0], per_frame[1]


async def main(n: int, window: float, seconds: float, binary: bool) -> None:
    quiet()
    raise_fd_limit(4 * n + 256)
    framing = "binary v2" if binary else "JSON"
    print(f"machine: {machine()}")
    print(f"N = {n} real-time sessions, {window:.0f} s window; a file of {seconds:.0f} s")
    session, bare = await real_time(n, window, binary)
    print(f"real time  session {session:6.1f} calls per frame   bare senders {bare:6.1f}")
    piped, loop = await file(seconds, binary)
    print(f"file       session {piped:6.1f} calls per frame   aiohttp loop {loop:6.1f}")
    summary(
        f"real time (N={n}): {session:.1f} calls per frame, {session / bare:.2f}x the bare "
        f"senders' {bare:.1f}; file: {piped:.1f}, {piped / loop:.2f}x the aiohttp loop's "
        f"{loop:.1f}; {framing}, {loop_name()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--json", action="store_true", help="JSON audio in both arms")
    add_loop_option(parser)
    args = parser.parse_args()
    if args.smoke:
        run_on(args.loop, main(5, 1.0, 20.0, not args.json))
    else:
        run_on(args.loop, main(50, 4.0, 600.0, not args.json))
