"""A recording's frames are cut as they leave: `Frames` cuts what `rechunk` cuts, a
real-time `from_samples` plays what pacing the whole list played, at the same instants,
and a long recording keeps the frame leaving alive, not all of them."""

from __future__ import annotations

import gc
from dataclasses import fields

import numpy as np
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import TestScheduler

from operators.pace import pace
from operators.rechunk import Frames, rechunk
from pipeline.audio import (
    SAMPLE_RATE,
    AudioBlock,
    AudioFrame,
    Samples,
    frame_samples,
    new_frame,
)
from pipeline.loop_scheduler import TIMER_GRID_S
from pipeline.sources import from_samples
from tests.unit.vtime import completion, timed


def ramp(count: int) -> Samples:
    return ((np.arange(count) % 30_000) + 1).astype(np.int16)


def facts(frame: AudioFrame) -> tuple[bytes, str, int, float]:
    return frame.pcm, frame.source, frame.seq, frame.captured_at


@settings(max_examples=80, deadline=None)
@given(
    count=st.integers(0, 5_000),
    frame_ms=st.sampled_from([10, 20, 30]),
    source=st.sampled_from(["mic", "system"]),
)
def test_frames_are_what_rechunk_cuts_from_the_whole_recording(
    count: int, frame_ms: int, source: str
) -> None:
    samples = ramp(count)
    cut: list[AudioFrame] = []
    reactivex.of(AudioBlock(samples)).pipe(rechunk(frame_ms, source)).subscribe(cut.append)
    frames = Frames(samples, frame_ms, source)
    assert len(frames) == len(cut)
    assert [facts(f)[:3] for f in frames] == [facts(f)[:3] for f in cut]
    assert [f.captured_at for f in frames] == [0.0] * len(cut)  # stamped when played
    if cut:
        assert facts(frames[-1])[:3] == facts(cut[-1])[:3]
        assert [f.seq for f in frames[1::2]] == [f.seq for f in cut[1::2]]


def test_new_frame_sets_every_field_the_constructor_sets() -> None:
    samples = ramp(320)
    built, made = AudioFrame(samples, "mic", 7, 1.25), new_frame(samples, "mic", 7, 1.25)
    # a field added to AudioFrame and not to new_frame would be missing here
    for field in fields(AudioFrame):
        assert getattr(made, field.name) is getattr(built, field.name)
    assert made.stamped(2.5).captured_at == 2.5
    with pytest.raises(AttributeError):
        made.seq = 8  # type: ignore[misc]  # frozen, as the constructor's


def test_a_frame_out_of_range_or_a_bad_recording_is_a_clear_error() -> None:
    frames = Frames(ramp(3 * frame_samples(20) + 1))
    assert len(frames) == 4
    with pytest.raises(IndexError, match="frame 4 of 4"):
        frames[4]
    with pytest.raises(IndexError, match="frame -5 of 4"):
        frames[-5]
    with pytest.raises(ValueError, match="source must be one of"):
        Frames(ramp(10), 20, "speaker")
    with pytest.raises(ValueError, match="frame_ms"):
        Frames(ramp(10), 0)


def stamped_facts(frames: Observable[AudioFrame], scheduler: TestScheduler) -> tuple[object, ...]:
    observer = scheduler.start(lambda: frames)
    return [(at, facts(frame)) for at, frame in timed(observer.messages)], completion(
        observer.messages
    )


@pytest.mark.parametrize("speed", [1.0, 4.0])
@pytest.mark.parametrize("seconds", [0.0, 0.01, 0.5, 3.37])
def test_a_real_time_recording_plays_as_pacing_the_whole_list_did(
    speed: float, seconds: float
) -> None:
    samples = ramp(round(seconds * SAMPLE_RATE))
    cut: list[AudioFrame] = []
    reactivex.of(AudioBlock(samples)).pipe(rechunk(20, "mic")).subscribe(cut.append)

    def due(frame: AudioFrame) -> float:
        return frame.end / speed

    whole_list = TestScheduler()
    reference = reactivex.from_iterable(cut).pipe(
        pace(due, whole_list, granularity=TIMER_GRID_S, stamp=AudioFrame.stamped)
    )
    lazy = TestScheduler()
    played = from_samples(samples, source="mic", realtime=speed, scheduler=lazy)
    assert stamped_facts(played, lazy) == stamped_facts(reference, whole_list)


def frames_alive(recording: Samples) -> int:
    """Frames of `recording` alive now: those whose samples are a view of it."""
    return sum(isinstance(o, AudioFrame) and o.samples.base is recording for o in gc.get_objects())


def test_a_long_recording_keeps_one_frame_alive_while_it_plays() -> None:
    recording = np.zeros(20 * 60 * SAMPLE_RATE, dtype=np.int16)  # 60,000 frames of 20 ms
    scheduler = TestScheduler()
    alive: list[int] = []
    played: list[int] = []

    def on_next(frame: AudioFrame) -> None:
        played.append(frame.seq)
        if frame.seq % 15_000 == 0:  # every five minutes of audio
            alive.append(frames_alive(recording))

    from_samples(recording, realtime=True, scheduler=scheduler).subscribe(on_next)
    assert frames_alive(recording) == 0  # subscribed: nothing cut before it is due
    scheduler.start()
    assert played == list(range(60_000))
    # the one leaving, cut and stamped at once: never the recording (a list of the
    # whole recording held all 60,000 for as long as it played)
    assert alive == [1] * 4
