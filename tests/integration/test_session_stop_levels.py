"""A live session stopped midway: every captured frame is metered exactly once (one level
per frame with `level_interval` 0, a window covering it otherwise), the levels of the
frames captured come before `Finalizing`, and the counts in the state end exact."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from reactivex.subject import Subject

from operators.level import dbfs
from pipeline.audio import FRAME_SAMPLES, AudioFrame
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import AudioCounts, AudioLevel, Finalizing, StatusEvent
from tests.integration.test_session import chirp, fast
from tests.integration.test_session_levels import frames_of


@pytest.mark.parametrize("level_interval", [0.0, 0.1])
async def test_levels_of_a_stopped_stream_come_before_finalizing(
    backend: Any, level_interval: float
) -> None:
    session = Session(
        fast(backend.url, level_interval=level_interval), from_samples(chirp(5.0), realtime=True)
    )
    events: list[StatusEvent] = []
    midway = asyncio.Event()

    def note(event: StatusEvent) -> None:
        events.append(event)
        if isinstance(event, AudioCounts) and event.counts["system"].captured >= 12:
            midway.set()  # stop mid-window: 240 ms captured, windows at 100 ms steps

    session.status.subscribe(note)
    task = asyncio.create_task(session.run())
    await asyncio.wait_for(midway.wait(), 30)
    await session.stop()
    report = await asyncio.wait_for(task, 30)

    captured = report.totals.captured
    assert report.outcome == "stopped"
    assert session.current.audio["system"].captured == captured  # the state caught up
    assert report.totals.acked == captured
    finalizing = next(i for i, e in enumerate(events) if isinstance(e, Finalizing))
    levels = [i for i, e in enumerate(events) if isinstance(e, AudioLevel)]
    if level_interval == 0:
        assert len(levels) == captured
    assert levels and max(levels) < finalizing


async def test_stop_shows_the_window_it_cuts_short_before_finalizing(backend: Any) -> None:
    """Stopped before the meter's window closes (a 10 s window, stopped at once): the
    frames of that window are shown, before `Finalizing`, as at the end of the audio."""
    frames = frames_of((chirp(0.2) // 4).astype(np.int16))
    loud = frames[-1].samples.copy()
    loud[FRAME_SAMPLES // 2] = 30_000  # only a level of the cut window can show it
    frames[-1] = replace(frames[-1], samples=loud)
    audio: Subject[AudioFrame] = Subject()
    session = Session(fast(backend.url, level_interval=10.0), audio)
    events: list[StatusEvent] = []
    delivered = asyncio.Event()

    def note(event: StatusEvent) -> None:
        events.append(event)
        if isinstance(event, AudioCounts) and event.counts["system"].acked == len(frames):
            delivered.set()

    session.status.subscribe(note)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0)  # the session subscribes to the audio
    for frame in frames:
        audio.on_next(frame)
    await asyncio.wait_for(delivered.wait(), 30)
    await session.stop()
    report = await asyncio.wait_for(task, 30)

    assert report.outcome == "stopped"
    levels = [(i, e) for i, e in enumerate(events) if isinstance(e, AudioLevel)]
    assert [e.peak_dbfs for _, e in levels] == [dbfs(30_000)]
    finalizing = next(i for i, e in enumerate(events) if isinstance(e, Finalizing))
    assert levels[0][0] < finalizing
