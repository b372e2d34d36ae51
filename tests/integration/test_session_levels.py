"""The session's level meter, fed beside the outbox from one subscription to the source:
every frame metered once, the last window before `Finalizing`, a failing source's frames
still shown."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import reactivex

from operators.level import dbfs, frame_level
from pipeline.audio import FRAME_SAMPLES, AudioFrame
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import AudioLevel, Finalizing, StatusEvent
from tests.integration.test_session import chirp, fast


def frames_of(samples: np.ndarray[Any, Any]) -> list[AudioFrame]:
    frames: list[AudioFrame] = []
    from_samples(samples, realtime=False).subscribe(frames.append)
    return frames


async def run(session: Session) -> list[StatusEvent]:
    events: list[StatusEvent] = []
    session.status.subscribe(events.append)
    await asyncio.wait_for(session.run(), 30)
    return events


async def test_every_frame_is_metered_once_in_order_before_finalizing(backend: Any) -> None:
    samples = chirp(1.0)
    session = Session(fast(backend.url, level_interval=0), from_samples(samples, realtime=False))

    events = await run(session)

    levels = [e for e in events if isinstance(e, AudioLevel)]
    frames = frames_of(samples)
    assert len(levels) == len(frames) == session.current.audio["system"].captured
    assert [(e.rms_dbfs, e.peak_dbfs) for e in levels] == [
        (lv.rms_dbfs, lv.peak_dbfs) for lv in map(frame_level, frames)
    ]
    finalizing = next(i for i, e in enumerate(events) if isinstance(e, Finalizing))
    assert all(i < finalizing for i, e in enumerate(events) if isinstance(e, AudioLevel))


async def test_windows_cover_every_frame_and_the_last_comes_before_finalizing(
    backend: Any,
) -> None:
    # the loudest sample sits in the last frame: only the closing window can show it
    samples = (chirp(1.0) // 4).astype(np.int16)
    samples[-FRAME_SAMPLES // 2] = 30_000
    session = Session(fast(backend.url, level_interval=0.25), from_samples(samples, realtime=False))

    events = await run(session)

    levels = [e for e in events if isinstance(e, AudioLevel)]
    assert levels and max(e.peak_dbfs for e in levels) == dbfs(30_000)
    finalizing = next(i for i, e in enumerate(events) if isinstance(e, Finalizing))
    assert max(i for i, e in enumerate(events) if isinstance(e, AudioLevel)) < finalizing


async def test_a_failing_source_still_shows_the_levels_of_what_it_captured(
    backend: Any,
) -> None:
    frames = frames_of(chirp(0.5))
    failing = reactivex.from_iterable(frames).pipe(
        lambda source: reactivex.concat(source, reactivex.throw(OSError("device unplugged")))
    )
    session = Session(fast(backend.url, level_interval=0), failing)

    events = await run(session)

    levels = [e for e in events if isinstance(e, AudioLevel)]
    assert [e.peak_dbfs for e in levels] == [frame_level(f).peak_dbfs for f in frames]
    finalizing = next(i for i, e in enumerate(events) if isinstance(e, Finalizing))
    assert max(i for i, e in enumerate(events) if isinstance(e, AudioLevel)) < finalizing
    assert session.current.failure_kind is not None
    assert session.current.audio["system"].acked == len(frames)


async def test_without_a_meter_no_level_is_computed_and_no_frame_is_lost(backend: Any) -> None:
    # real time, so that windows would have closed; stopped half-way, so that `stop`
    # (which closes a meter's cut-short window) runs without one
    samples = chirp(4.0)
    total = len(frames_of(samples))
    session = Session(fast(backend.url, level_interval=None), from_samples(samples, realtime=2.0))
    events: list[StatusEvent] = []
    session.status.subscribe(events.append)
    running = asyncio.create_task(session.run())
    while (lane := session.outbox.counts().get("system")) is None or lane.captured < total // 2:
        assert not running.done(), "the session ended before half of its audio was captured"
        await asyncio.sleep(0.01)  # a frame at twice real time
    await session.stop()
    report = await asyncio.wait_for(running, 30)

    assert not [e for e in events if isinstance(e, AudioLevel)]
    assert session.current.levels == {}
    counts = session.current.audio["system"]
    assert total // 2 <= counts.captured < total
    assert counts.acked == counts.sent == counts.captured
    assert counts.dropped == counts.unconfirmed == 0
    assert report.outcome == "stopped"


def test_level_interval_none_means_no_meter_and_a_negative_one_is_refused() -> None:
    assert (
        SessionConfig(url="ws://127.0.0.1:1/v1/stream", level_interval=None).level_interval is None
    )
    with pytest.raises(ValueError, match="level_interval"):
        SessionConfig(url="ws://127.0.0.1:1/v1/stream", level_interval=-0.1)
