"""A live session stopped midway: every captured frame is metered exactly once (one level
per frame with `level_interval` 0, a window covering it otherwise), the levels of the
frames captured come before `Finalizing`, and the counts in the state end exact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import AudioCounts, AudioLevel, Finalizing, StatusEvent
from tests.integration.test_session import chirp, fast


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
