"""Soak: a live session through a fault every few seconds, for LL_SOAK_SECONDS (30 in the
suite). With v0.3 no frame is lost: the backend holds every frame once, in order. And no
frame outlives its accounting: every audio frame alive in the process is one of the
recording the source plays (it holds them all, as a file would) or one the outbox holds,
give or take the few in the pipeline's hands at that instant.

That is the leak check the suite can make on any machine: a count, not a memory figure.
The RSS and Python-heap slopes of the same run are figures of a noisy machine and live in
`benchmarks/soak.py` (`make soak` runs it for 300 s).
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import numpy as np
import pytest

from backend.recording import recorded_pcm
from benchmarks.soak import MAX_HEAP_SLOPE, fault_count, slope, soak
from pipeline.audio import AudioFrame
from pipeline.session import Session
from tests.conftest import BackendFactory

SOAK_SECONDS = float(os.environ.get("LL_SOAK_SECONDS", "30"))
WARM_UP = min(10.0, SOAK_SECONDS / 3)
SAMPLE_EVERY = 0.5
# Frames alive beyond those the outbox holds: the level meter's window (5), the frame
# being paced and the one being encoded. A leak of one frame per frame passes this in a
# second (50 frames); one per reconnect, within the run.
IN_HAND = 16


class FramesAlive:
    """How many `AudioFrame`s are alive beyond those the outbox holds, sampled."""

    def __init__(self) -> None:
        self.excess: list[tuple[float, int]] = []

    async def count(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            gc.collect()
            alive = sum(isinstance(thing, AudioFrame) for thing in gc.get_objects())
            self.excess.append((loop.time() - began, alive - session.outbox.held))
            await asyncio.sleep(SAMPLE_EVERY)

    def after(self, warm_up: float) -> list[int]:
        return [excess for at, excess in self.excess if at >= warm_up]


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
async def test_a_long_session_through_faults_loses_nothing_and_keeps_no_frame(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    frames = FramesAlive()
    async with make_backend() as backend:
        soaked = await soak(SOAK_SECONDS, backend.port, frames.count)

    report = soaked.report
    assert report.outcome == "completed", report.reason
    assert soaked.faults_applied == fault_count(SOAK_SECONDS)
    assert report.reconnects > 0 and report.resumes == report.reconnects
    assert report.frames_lost == 0
    assert recorded_pcm(record_dir, soaked.session_id) == soaked.samples.tobytes()

    steady = frames.after(WARM_UP)
    assert len(steady) >= 2  # sampled through the run, not only at its start
    recording = len(soaked.samples) // 320  # the source's own frames, held from the start
    assert max(steady) - recording <= IN_HAND, steady
