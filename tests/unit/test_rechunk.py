"""rechunk in virtual time: blocks of any size become exact frames, numbered and stamped."""

from __future__ import annotations

import numpy as np
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import TestScheduler
from reactivex.testing.marbles import marbles_testing

from operators.rechunk import rechunk
from pipeline.audio import SAMPLE_RATE, AudioBlock, AudioFrame, Samples, frame_samples
from tests.unit.vtime import completed_at, completion, error_at, failure, kinds, next_at, timed


def ramp(start: int, count: int) -> Samples:
    """Distinct, recognisable samples: their own index (mod int16 range), never zero."""
    return ((np.arange(start, start + count) % 30_000) + 1).astype(np.int16)


def capture(sizes: list[int]) -> list[AudioBlock]:
    """Blocks of one continuous capture, each stamped with the time its last sample was
    captured (as a device callback would)."""
    blocks, position = [], 0
    for size in sizes:
        blocks.append(AudioBlock(ramp(position, size), (position + size) / SAMPLE_RATE))
        position += size
    return blocks


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=2_500), max_size=25),
    frame_ms=st.sampled_from([10, 20, 30]),
)
def test_any_block_sizes_become_exact_frames(sizes: list[int], frame_ms: int) -> None:
    size, total, start = frame_samples(frame_ms), sum(sizes), 300.0
    scheduler = TestScheduler()
    blocks = scheduler.create_hot_observable(
        [next_at(start + block.captured_at, block) for block in capture(sizes)]
        + [completed_at(start + total / SAMPLE_RATE + 1)]
    )
    observer = scheduler.start(lambda: blocks.pipe(rechunk(frame_ms, "mic")))
    frames = timed(observer.messages)
    block_ends = np.cumsum(sizes) if sizes else np.zeros(0, dtype=int)

    assert completion(observer.messages) is not None
    assert len(frames) == -(-total // size)  # ceil: the tail is padded, not lost
    for seq, (time, frame) in enumerate(frames):
        assert (frame.seq, frame.source, len(frame.samples)) == (seq, "mic", size)
        end = (seq + 1) * size
        if end <= total:  # a whole frame: stamped with its last sample's capture time,
            assert frame.captured_at == pytest.approx(end / SAMPLE_RATE)
            # and emitted when the block that completed it arrived
            completing = block_ends[np.searchsorted(block_ends, end)]
            assert time == pytest.approx(start + completing / SAMPLE_RATE)
    sent = np.concatenate([f.samples for _, f in frames]) if frames else ramp(0, 0)
    assert np.array_equal(sent[:total], ramp(0, total))
    assert not sent[total:].any()


def test_tail_is_padded_with_silence_and_stamped_with_the_last_block() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, _exp):
        blocks = cold(
            "-a-b|",
            {"a": AudioBlock(ramp(0, 500), 1.5), "b": AudioBlock(ramp(500, 200), 2.5)},
            None,
        )
        messages = start(blocks.pipe(rechunk(20, "system")))
    # frame 0 when a arrives (500 = 320 + 180), frame 1 when b does (380 = 320 + 60),
    # and the padded tail at completion, just before it
    assert kinds(messages) == [(201, "N"), (203, "N"), (204, "N"), (204, "C")]
    frames: list[AudioFrame] = [frame for _, frame in timed(messages)]
    assert [f.seq for f in frames] == [0, 1, 2]
    assert frames[1].captured_at == pytest.approx(2.5 - 60 / SAMPLE_RATE)
    tail = frames[2]
    assert np.array_equal(tail.samples[:60], ramp(640, 60))
    assert not tail.samples[60:].any()
    assert tail.captured_at == 2.5


def test_no_padding_when_asked() -> None:
    frames: list[AudioFrame] = []
    reactivex.of(AudioBlock(ramp(0, 700))).pipe(rechunk(20, pad_last=False)).subscribe(
        frames.append
    )
    assert [len(f.samples) for f in frames] == [320, 320]


def test_errors_pass_through() -> None:
    scheduler = TestScheduler()
    broken = RuntimeError("device gone")
    blocks = scheduler.create_hot_observable(
        next_at(210, AudioBlock(ramp(0, 400), 1.0)), error_at(220, broken)
    )
    observer = scheduler.start(lambda: blocks.pipe(rechunk(20)))
    assert kinds(observer.messages) == [(210, "N"), (220, "E")]
    assert failure(observer.messages) == (220, broken)


def test_each_subscription_counts_from_zero() -> None:
    source: Observable[AudioBlock] = reactivex.of(AudioBlock(ramp(0, 640)))
    framed = source.pipe(rechunk(20))
    runs: list[list[int]] = []
    for _ in range(2):
        frames: list[AudioFrame] = []
        framed.subscribe(frames.append)
        runs.append([f.seq for f in frames])
    assert runs == [[0, 1], [0, 1]]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="source"):
        rechunk(20, "speaker")
    with pytest.raises(ValueError, match="whole number"):
        rechunk(0)
