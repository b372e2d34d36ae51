"""Frames waiting in the outbox are invisible to the garbage collector: a frame waits
about a second for its ack (minutes in an outage), long enough to be promoted to the
oldest generation, whose full collections would walk every one of them; and holding one
allocates nothing the collector counts towards its next collection."""

from __future__ import annotations

import gc

import numpy as np

from pipeline.audio import AudioFrame, Samples
from pipeline.outbox import Outbox
from tests.collector import collector_paused

FRAMES = 1_000


def test_a_frame_comes_out_as_it_went_in() -> None:
    outbox = Outbox()
    pushed = [
        AudioFrame(np.full(320, seq, dtype=np.int16), source, seq, captured_at=seq * 0.02 + bias)
        for seq in range(5)
        for source, bias in (("mic", 0.001), ("system", 0.0))
    ]
    for frame in pushed:
        outbox.push(frame)
    taken = [outbox.take() for _ in pushed]
    assert outbox.take() is None
    # oldest capture first; each one the same audio, source, seq and capture time
    oldest_first = sorted(pushed, key=lambda f: f.captured_at)
    assert [(f.source, f.seq) for f in taken if f] == [(f.source, f.seq) for f in oldest_first]
    by_key = {(f.source, f.seq): f for f in pushed}
    for out in taken:
        assert out is not None
        original = by_key[(out.source, out.seq)]
        assert out.samples is original.samples
        assert out.captured_at == original.captured_at


def holding(recording: Samples) -> list[object]:
    """The objects the collector tracks that hold a frame of `recording` themselves."""

    def holds(held: object) -> bool:
        if isinstance(held, AudioFrame):
            return held.samples.base is recording
        return isinstance(held, tuple) and any(
            isinstance(part, np.ndarray) and part.base is recording for part in held
        )

    return [held for held in gc.get_objects() if holds(held)]


def test_held_frames_add_no_object_the_collector_tracks() -> None:
    outbox = Outbox(max_frames=10 * FRAMES)
    recording = np.arange(FRAMES * 320, dtype=np.int16)
    for seq in range(FRAMES):
        outbox.push(AudioFrame(recording[seq * 320 : seq * 320 + 320], "mic", seq))
    gc.collect()
    # held, every one of them, and none as a frame or an entry the collector walks
    assert outbox.held == FRAMES
    assert holding(recording) == []
    taken = [outbox.take() for _ in range(FRAMES)]
    assert [f.seq for f in taken if f] == list(range(FRAMES))


def test_holding_and_releasing_frames_brings_the_next_collection_no_closer() -> None:
    """The collector runs when the objects it tracks grow by its threshold (700): born one
    per frame and freed a second's worth at a time by each ack, a tracked entry per held
    frame brought a young collection every ~1,000 frames at N=200 real-time sessions."""
    outbox = Outbox(max_frames=10 * FRAMES)
    recording = np.arange(FRAMES * 320, dtype=np.int16)
    frames = [
        AudioFrame(recording[seq * 320 : seq * 320 + 320], source, seq)
        for seq in range(FRAMES)
        for source in ("mic", "system")
    ]
    outbox.push(frames[0])
    outbox.push(frames[1])  # the lanes: one object each, once per source
    with collector_paused():
        before = gc.get_count()[0]
        for frame in frames[2:]:
            outbox.push(frame)
        while outbox.take() is not None:  # written (each taken frame dies at once)
            pass
        for seq in range(49, FRAMES, 50):  # and confirmed 50 at a time, as acks do
            outbox.confirm("mic", seq)
            outbox.confirm("system", seq)
        grown = gc.get_count()[0] - before
    counts = outbox.counts()
    assert counts["mic"].acked == counts["system"].acked == FRAMES
    assert outbox.held == 0
    # 2,000 frames held, written and released: the collector's count where it was (the
    # frames `take` builds are tracked, and freed before the next one is)
    assert grown == 0
