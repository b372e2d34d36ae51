"""Memory during a long outage: RSS grows with the buffered audio, then stops at the bound.

    python benchmarks/outage_memory.py          # ~30 s
    python benchmarks/outage_memory.py --smoke  # a few seconds (the test suite runs this)

A live-like source (a fresh buffer per 20 ms frame, as a capture callback delivers, never
waiting for demand) runs at 200x real time into a `Session` whose backend never answers
(connection refused: the outage lasts the whole run), with the default buffer bound
(`SessionConfig.buffer_seconds`, 120 s). Three times the bound passes, so most of the run
is spent at the bound, dropping the oldest frames. Each measurement is a fresh process;
RSS is sampled with the outbox's buffered count. Baseline, alternated with it: the same
source into a bare `deque(maxlen=bound)`, i.e. what the frames themselves cost to hold.

Figures: bytes of RSS per buffered second while filling (slope), vs raw PCM at 32,000 B/s,
and growth after the bound is reached (should be ~0).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from backend.server import free_port
from benchmarks.measure import (
    FRAME_S,
    MB,
    alternate,
    machine,
    median,
    quiet,
    rss,
    spread,
    summary,
)
from pipeline.audio import (
    BYTES_PER_SECOND,
    FRAME_SAMPLES,
    FRAMES_PER_SECOND,
    SAMPLE_RATE,
    AudioFrame,
)
from pipeline.config import SessionConfig
from pipeline.session import Session

SPEED = 200.0
BOUND_S = SessionConfig().buffer_seconds


def live_like(seconds: float, speed: float) -> Observable[AudioFrame]:
    """Frames at `speed` x real time, each with its own new sample buffer, never waiting."""
    pattern = np.random.default_rng(3).integers(-8000, 8000, SAMPLE_RATE, dtype=np.int16)
    total = round(seconds / FRAME_S)

    def subscribe(
        observer: abc.ObserverBase[AudioFrame], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        async def capture() -> None:
            began, seq = time.monotonic(), 0
            while seq < total:
                await asyncio.sleep(0.005)
                due = min(total, int((time.monotonic() - began) * speed / FRAME_S))
                while seq < due:
                    at = (seq % FRAMES_PER_SECOND) * FRAME_SAMPLES
                    samples = pattern[at : at + FRAME_SAMPLES].copy()
                    observer.on_next(AudioFrame(samples, "system", seq, time.time()))
                    seq += 1
            observer.on_completed()

        task = asyncio.get_running_loop().create_task(capture())

        def cancel() -> None:
            task.cancel()

        return Disposable(cancel)

    return reactivex.create(subscribe)


@dataclass
class Curve:
    """RSS samples against buffered audio, for one process."""

    points: list[tuple[float, int]]  # (buffered seconds, RSS bytes)
    captured: int
    dropped: int
    buffered: int

    def slope(self) -> float:
        """Bytes of RSS per buffered second, fitted while filling (10%..90% of the bound)."""
        filling = [(s, r) for s, r in self.points if 0.1 * BOUND_S <= s <= 0.9 * BOUND_S]
        if len(filling) < 3:
            raise RuntimeError(f"too few samples while filling ({len(filling)})")
        xs, ys = zip(*filling, strict=True)
        return float(np.polyfit(xs, ys, 1)[0])

    def plateau_growth(self) -> int:
        """RSS growth from the moment the buffer reached the bound to the end."""
        at_bound = [r for s, r in self.points if s >= BOUND_S - 1e-9]
        if not at_bound:
            raise RuntimeError("the buffer never reached its bound")
        return at_bound[-1] - at_bound[0]


async def _sampled(
    buffered: Callable[[], int], finished: Callable[[], bool]
) -> list[tuple[float, int]]:
    points: list[tuple[float, int]] = []
    while not finished():
        points.append((buffered() * FRAME_S, rss()))
        await asyncio.sleep(0.02)
    points.append((buffered() * FRAME_S, rss()))
    return points


async def _measure_session(seconds: float) -> Curve:
    config = SessionConfig(url=f"ws://127.0.0.1:{free_port()}/ws/live-listener")
    session = Session(config, live_like(seconds, SPEED))
    outbox = session.outbox
    run = asyncio.create_task(session.run())
    points = await _sampled(lambda: outbox.held, lambda: outbox.closed)  # closed: audio ended
    run.cancel()
    counts = outbox.counts()["system"]
    if counts.captured != counts.sent + counts.buffered + counts.dropped or counts.sent:
        raise RuntimeError(f"frames unaccounted for: {counts}")
    return Curve(points, counts.captured, counts.dropped, counts.buffered)


async def _measure_deque(seconds: float) -> Curve:
    held: deque[AudioFrame] = deque(maxlen=round(BOUND_S / FRAME_S))
    ended = False
    captured = 0

    def push(frame: AudioFrame) -> None:
        nonlocal captured
        captured += 1
        held.append(frame)

    def end() -> None:
        nonlocal ended
        ended = True

    live_like(seconds, SPEED).subscribe(push, on_completed=end)
    points = await _sampled(lambda: len(held), lambda: ended)
    return Curve(points, captured, captured - len(held), len(held))


def _child(conn: Connection, arm: str, seconds: float) -> None:
    quiet()
    measure = _measure_session if arm == "session" else _measure_deque
    curve = asyncio.run(measure(seconds))
    conn.send(curve)


async def in_child(arm: str, seconds: float) -> Curve:
    """One measurement in a fresh process, so neither arm inherits the other's heap."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_child, args=(theirs, arm, seconds), daemon=True)
    process.start()
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, ours.poll, 120):
        process.kill()
        raise RuntimeError(f"the {arm} measurement did not finish")
    curve: Curve = ours.recv()
    process.join()
    return curve


async def main(seconds: float, rounds: int) -> None:
    print(f"machine: {machine()}")
    print(
        f"outage: {seconds:.0f} s of audio at {SPEED:.0f}x real time, "
        f"buffer bound {BOUND_S:.0f} s, {rounds} rounds"
    )
    runs = await alternate(
        {
            "session": lambda: in_child("session", seconds),
            "deque": lambda: in_child("deque", seconds),
        },
        rounds,
    )
    slopes = {name: [c.slope() for c in curves] for name, curves in runs.items()}
    plateau = {name: [c.plateau_growth() / MB for c in curves] for name, curves in runs.items()}
    for name, curves in runs.items():
        last = curves[-1]
        print(
            f"{name:8s} {median(slopes[name]):7,.0f} B per buffered s "
            f"({median(slopes[name]) / BYTES_PER_SECOND:.2f}x raw PCM; spread "
            f"{spread(slopes[name]):.0%}), growth at the bound {median(plateau[name]):+.1f} MB; "
            f"captured {last.captured}, dropped {last.dropped}, held {last.buffered}"
        )
    session = median(slopes["session"])
    bare = median(slopes["deque"])
    summary(
        f"outage buffer {session:.0f} B per buffered s = {session / BYTES_PER_SECOND:.2f}x raw PCM "
        f"(bare deque {bare:.0f} B/s = {bare / BYTES_PER_SECOND:.2f}x); growth after the "
        f"{BOUND_S:.0f} s bound {median(plateau['session']):+.1f} MB "
        f"(RSS at the bound +{session * BOUND_S / MB:.1f} MB)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--seconds", type=float, default=3 * BOUND_S, help="audio per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(main(1.5 * BOUND_S, 1))
    else:
        asyncio.run(main(args.seconds, args.rounds))
