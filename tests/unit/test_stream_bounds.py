"""The backend's queue per source: bounded in frames and in bytes; full, it never drops
(the connection waits for room) — except in the legacy v0.2 mode, which drops and counts."""

from __future__ import annotations

import asyncio
import threading

from backend.asr import Hypothesis
from backend.stream import SourceStream

FRAME_100MS = b"\x01\x00" * 1600  # 3200 bytes
BATCH = 5  # frames of 100 ms in one 0.5 s batch


class Gated:
    """A recogniser that is stuck in its call until the test opens the gate: a stand-in
    for a slow one, so that the queue fills deterministically."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()  # a call is in progress
        self.fed = 0

    def process(self, pcm: bytes) -> list[Hypothesis]:
        self.entered.set()
        self.gate.wait()
        self.fed += len(pcm)
        return []

    def finish(self) -> list[Hypothesis]:
        return []

    def close(self) -> None:
        return None


async def stuck_stream(recognizer: Gated, *, drop_when_full: bool) -> SourceStream:
    """A stream whose recogniser holds its first batch (seq 0-4) and recognises nothing more."""
    stream = SourceStream(
        "system",
        recognizer,
        lambda _: None,
        recording=None,
        executor=None,
        queue_seconds=1.0,  # 50 frames of 20 ms, or 32,000 bytes
        unique_ids=True,
        drop_when_full=drop_when_full,
    ).start()
    for seq in range(BATCH):
        stream.accept(FRAME_100MS, seq)
    assert await asyncio.to_thread(recognizer.entered.wait, 5)  # the worker took the batch
    assert stream.queue_depth == 0
    return stream


async def test_large_frames_fill_the_queue_by_bytes_and_nothing_is_dropped() -> None:
    recognizer = Gated()
    stream = await stuck_stream(recognizer, drop_when_full=False)
    try:
        assert stream.ackable_seq == BATCH - 1  # handed to the recogniser: ackable
        for seq in range(BATCH, BATCH + 10):  # 10 x 100 ms = 32,000 bytes, not 50 frames
            stream.accept(FRAME_100MS, seq)
        assert stream.queue_depth == 10 < stream.queue_max and stream.full
        assert stream.ackable_seq == BATCH - 1  # queued is not acked
        stream.accept(FRAME_100MS, BATCH + 10)  # a client past the bound: queued, not dropped
        assert stream.dropped_total == 0 and stream.queue_depth == 11

        waiting = asyncio.ensure_future(stream.wait_for_room())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the connection reads nothing more meanwhile
        recognizer.gate.set()
        await asyncio.wait_for(waiting, 5)
        assert not stream.full
        await stream.finish()
        assert recognizer.fed == 16 * len(FRAME_100MS) and stream.ackable_seq == 15
    finally:
        recognizer.gate.set()
        await stream.close()


async def test_the_legacy_v02_mode_drops_over_the_bound_and_counts() -> None:
    recognizer = Gated()
    stream = await stuck_stream(recognizer, drop_when_full=True)
    try:
        for _ in range(12):
            stream.accept(FRAME_100MS, None)  # v0.2: no seq
        assert stream.queue_depth == 10 and stream.dropped_total == 2
        assert stream.metrics()["dropped_total"] == 2
        recognizer.gate.set()
        await stream.finish()
        assert recognizer.fed == 15 * len(FRAME_100MS)
    finally:
        recognizer.gate.set()
        await stream.close()
