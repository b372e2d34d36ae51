"""Soak: a live session through a fault every few seconds, for LL_SOAK_SECONDS (30 in the
suite; `make soak` runs 300). Memory stays flat after warm-up and, with v0.3, no frame is
lost: the backend holds every frame once, in order.

Memory is watched two ways: the process's RSS, and the bytes the Python heap holds
(tracemalloc), which sees a leak of a few bytes per frame where RSS, with its allocator
slack, needs minutes. The outbox legitimately holds every frame captured during an
outage, so the heap's growth is fitted against time and the frames held together: what
grows with time alone is a leak.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import pytest
from reactivex import operators as ops

from backend.chaos import ChaosProxy, random_faults
from backend.recording import recorded_pcm
from pipeline.audio import AudioFrame
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.conftest import BackendFactory
from tests.integration.test_chaos import through
from tests.integration.test_session import chirp

SOAK_SECONDS = float(os.environ.get("LL_SOAK_SECONDS", "30"))
FAULT_EVERY = 3.0  # seconds, on average
WARM_UP = min(10.0, SOAK_SECONDS / 3)
SAMPLE_EVERY = 0.5
# Holding on to every frame grows the heap by ~40 KiB/s; one 100-byte object per 20 ms
# frame, by ~5 KiB/s. Caches still filling after the warm-up add up to ~1.3 KiB/s in the
# 30 s run (in 300 s runs the slope is ~0).
MAX_HEAP_SLOPE = 4 * 1024  # bytes/s the Python heap may grow after warm-up
MAX_RSS_SLOPE = 32 * 1024  # bytes/s the process may grow after warm-up


def fresh(frame: AudioFrame) -> AudioFrame:
    """A frame in a buffer of its own, as a live device delivers it."""
    return dataclasses.replace(frame, samples=frame.samples.copy())


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

    async def record(self, session: Session, began: float) -> None:
        process = psutil.Process()
        while self.count < len(self.rows):
            gc.collect()
            self.rows[self.count] = (
                time.monotonic() - began,
                # tracemalloc's own tables are not the session's
                process.memory_info().rss - tracemalloc.get_tracemalloc_memory(),
                tracemalloc.get_traced_memory()[0],
                session.outbox.held,
            )
            self.count += 1
            await asyncio.sleep(SAMPLE_EVERY)

    def after(self, warm_up: float) -> np.ndarray:
        rows = self.rows[: self.count]
        return rows[rows[:, 0] >= warm_up]


def test_slope_tells_growth_from_noise_and_buffering() -> None:
    times = np.arange(100.0)
    assert slope(times, 1e6 + 5_000 * times) == pytest.approx(5_000.0)
    noise = np.random.default_rng(1).normal(5e7, 2e4, size=100)
    assert abs(slope(times, noise)) < MAX_HEAP_SLOPE
    held = np.where(times > 80, 500.0, 5.0)  # an outage at the end holds 500 frames
    buffered = 5e7 + 1_000 * held
    assert slope(times, buffered) > MAX_HEAP_SLOPE  # time alone would call it a leak
    assert slope(times, buffered, held) == pytest.approx(0.0, abs=1e-6)
    assert slope(times, buffered + 5_000 * times, held) == pytest.approx(5_000.0)


@pytest.mark.timeout(SOAK_SECONDS + 120)
async def test_a_long_session_through_faults_keeps_memory_flat_and_loses_nothing(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    samples = chirp(SOAK_SECONDS)
    count = max(3, round(SOAK_SECONDS / FAULT_EVERY))
    faults = random_faults(7, count, span=(1.0, SOAK_SECONDS - 2.0), duration=(0.1, 1.5))
    memory = MemoryLog(round(SOAK_SECONDS / SAMPLE_EVERY) + 120)
    tracemalloc.start()
    try:
        async with make_backend() as backend, ChaosProxy(backend.port, faults) as proxy:
            live = from_samples(samples, realtime=True).pipe(ops.map(fresh))
            session = Session(through(proxy), live)
            sampler = asyncio.create_task(memory.record(session, time.monotonic()))
            try:
                report = await asyncio.wait_for(session.run(), SOAK_SECONDS + 60)
            finally:
                sampler.cancel()
    finally:
        tracemalloc.stop()

    assert report.outcome == "completed", report.reason
    assert len(proxy.stats.faults_applied) == count
    assert report.reconnects > 0 and report.resumes == report.reconnects
    assert report.frames_lost == 0
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()

    steady = memory.after(WARM_UP)
    rss_growth = slope(steady[:, 0], steady[:, 1], steady[:, 3])
    heap_growth = slope(steady[:, 0], steady[:, 2], steady[:, 3])
    print(
        f"\nsoak {SOAK_SECONDS:.0f} s: {count} faults, {report.reconnects} reconnects; after "
        f"{WARM_UP:.0f} s warm-up: RSS {steady[0, 1] / 2**20:.1f} -> {steady[-1, 1] / 2**20:.1f}"
        f" MiB ({rss_growth / 1024:+.2f} KiB/s), Python heap {steady[0, 2] / 2**20:.3f} -> "
        f"{steady[-1, 2] / 2**20:.3f} MiB ({heap_growth / 1024:+.2f} KiB/s), "
        f"{len(steady)} samples, up to {steady[:, 3].max():.0f} frames held"
    )
    assert heap_growth < MAX_HEAP_SLOPE
    assert rss_growth < MAX_RSS_SLOPE
