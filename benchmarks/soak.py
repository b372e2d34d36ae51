"""Soak: a live session through a fault every few seconds, and its memory after warm-up.

    python benchmarks/soak.py                 # 60 s
    python benchmarks/soak.py --seconds 300   # what `make soak` runs
    python benchmarks/soak.py --smoke         # 10 s (the test suite runs this)

A real-time chirp (a fresh buffer per 20 ms frame, as a capture callback delivers) goes
through the chaos proxy (resets, black holes and delays, one every ~3 s) to the embedded
backend. Memory is watched two ways: the process's RSS, and the bytes the Python heap
holds (tracemalloc), which sees a leak of a few bytes per frame where RSS, with its
allocator slack, needs minutes. The outbox legitimately holds every frame captured during
an outage, so growth is fitted against time and the frames held together: what grows
with time alone is a leak. These are figures of a noisy machine, so they are printed here
and never asserted by the test suite (tests/integration/test_soak.py asserts the facts:
nothing lost, no frame kept beyond what the outbox accounts for).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from reactivex import operators as ops

from backend.chaos import ChaosProxy, random_faults
from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import running_backend
from benchmarks.measure import machine, quiet, rss, summary
from operators.backoff import BackoffPolicy
from pipeline.audio import SAMPLE_RATE, AudioFrame, Samples, to_int16
from pipeline.config import SessionConfig
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples

FAULT_EVERY = 3.0  # seconds, on average
SAMPLE_EVERY = 0.5
# Holding on to every frame grows the heap by ~40 KiB/s; one 100-byte object per 20 ms
# frame, by ~5 KiB/s. Caches still filling after the warm-up add up to ~1.3 KiB/s in a
# 30 s run (in 300 s runs the slope is ~0).
MAX_HEAP_SLOPE = 4 * 1024  # bytes/s the Python heap may grow after warm-up
MAX_RSS_SLOPE = 32 * 1024  # bytes/s the process may grow after warm-up

Watch = Callable[[Session], Coroutine[Any, Any, None]]


def chirp(seconds: float) -> Samples:
    """A recognisable signal: every frame differs from every other."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return to_int16(0.4 * np.sin(2 * np.pi * (200 + 400 * t) * t))


def fresh(frame: AudioFrame) -> AudioFrame:
    """A frame in a buffer of its own, as a live device delivers it."""
    return dataclasses.replace(frame, samples=frame.samples.copy())


def fault_count(seconds: float) -> int:
    return max(3, round(seconds / FAULT_EVERY))


@dataclass(frozen=True)
class Soaked:
    report: SessionReport
    samples: Samples
    session_id: str
    faults_applied: int


async def soak(seconds: float, backend_port: int, watch: Watch) -> Soaked:
    """Stream `seconds` of live chirp through faults to the backend on `backend_port`,
    with `watch(session)` running beside the session until it ends."""
    samples = chirp(seconds)
    faults = random_faults(7, fault_count(seconds), span=(1.0, seconds - 2.0), duration=(0.1, 1.5))
    async with ChaosProxy(backend_port, faults) as proxy:
        config = SessionConfig(
            url=proxy.url,
            heartbeat=0.5,
            connect_timeout=1.0,
            backoff=BackoffPolicy(initial=0.05, max_delay=0.2, reset_after=0.5),
        )
        session = Session(config, from_samples(samples, realtime=True).pipe(ops.map(fresh)))
        watching = asyncio.create_task(watch(session))
        try:
            report = await asyncio.wait_for(session.run(), seconds + 60)
        finally:
            watching.cancel()
    return Soaked(report, samples, session.ids.session_id, len(proxy.stats.faults_applied))


def slope(times: np.ndarray, values: np.ndarray, *given: np.ndarray) -> float:
    """Least-squares growth of `values` per unit of `times`, with what the `given`
    columns explain (e.g. frames held) fitted out."""
    design = np.column_stack([np.ones_like(times), times, *given])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(coefficients[1])


class MemoryLog:
    """Samples of (time, RSS, Python heap, frames held), in arrays allocated up front so
    that taking them grows nothing. RSS leaves out what tracemalloc itself holds."""

    def __init__(self, capacity: int) -> None:
        self.rows = np.zeros((capacity, 4))
        self.count = 0

    async def record(self, session: Session) -> None:
        began = time.monotonic()
        while self.count < len(self.rows):
            gc.collect()
            self.rows[self.count] = (
                time.monotonic() - began,
                # tracemalloc's own tables are not the session's
                rss() - tracemalloc.get_tracemalloc_memory(),
                tracemalloc.get_traced_memory()[0],
                session.outbox.held,
            )
            self.count += 1
            await asyncio.sleep(SAMPLE_EVERY)

    def after(self, warm_up: float) -> np.ndarray:
        rows = self.rows[: self.count]
        return rows[rows[:, 0] >= warm_up]


async def main(seconds: float) -> None:
    quiet()
    print(f"machine: {machine()}")
    warm_up = min(10.0, seconds / 3)
    memory = MemoryLog(round(seconds / SAMPLE_EVERY) + 120)
    with tempfile.TemporaryDirectory() as directory:
        record_dir = Path(directory)
        tracemalloc.start()
        try:
            async with running_backend(BackendConfig(record_dir=record_dir)) as backend:
                soaked = await soak(seconds, backend.port, memory.record)
        finally:
            tracemalloc.stop()
        identical = recorded_pcm(record_dir, soaked.session_id) == soaked.samples.tobytes()
    report = soaked.report
    steady = memory.after(warm_up)
    rss_growth = slope(steady[:, 0], steady[:, 1], steady[:, 3])
    heap_growth = slope(steady[:, 0], steady[:, 2], steady[:, 3])
    print(
        f"soak {seconds:.0f} s: outcome {report.outcome}, {soaked.faults_applied} faults, "
        f"{report.reconnects} reconnects, {report.resumes} resumed, frames lost "
        f"{report.frames_lost}, recording identical {identical}"
    )
    print(
        f"after {warm_up:.0f} s warm-up: RSS {steady[0, 1] / 2**20:.1f} -> "
        f"{steady[-1, 1] / 2**20:.1f} MiB, Python heap {steady[0, 2] / 2**20:.3f} -> "
        f"{steady[-1, 2] / 2**20:.3f} MiB, {len(steady)} samples, up to "
        f"{steady[:, 3].max():.0f} frames held"
    )
    summary(
        f"soak {seconds:.0f} s, {soaked.faults_applied} faults, frames lost "
        f"{report.frames_lost}: RSS {rss_growth / 1024:+.2f} KiB/s (bound "
        f"{MAX_RSS_SLOPE // 1024}), Python heap {heap_growth / 1024:+.2f} KiB/s (bound "
        f"{MAX_HEAP_SLOPE // 1024}) after warm-up, frames held fitted out"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="10 s, for the test suite")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the session")
    args = parser.parse_args()
    asyncio.run(main(10.0 if args.smoke else args.seconds))
