"""A file read at full speed in a session leaves in bursts: the loop gets a turn every
`_YIELD_EVERY` frames, no more often (each turn costs a writer wake-up and a corked
transmission) and no less (the writer and the acks' reader must run meanwhile)."""

from __future__ import annotations

import asyncio

import numpy as np

from pipeline import sources
from pipeline.audio import FRAME_SAMPLES, AudioFrame
from pipeline.flow import Demand, demand_scope
from pipeline.sources import from_samples


async def test_a_file_gives_the_loop_a_turn_every_burst() -> None:
    burst = sources._YIELD_EVERY
    frames = 5 * burst + 17
    received: list[AudioFrame] = []
    done = asyncio.Event()
    per_turn: list[int] = []  # frames that came between two turns of another task

    async def other_task() -> None:
        seen = 0
        while not done.is_set():
            await asyncio.sleep(0)
            if len(received) != seen:
                per_turn.append(len(received) - seen)
                seen = len(received)

    watcher = asyncio.create_task(other_task())
    with demand_scope(Demand()):  # always ready: the file never waits
        from_samples(np.zeros(frames * FRAME_SAMPLES, np.int16), realtime=False).subscribe(
            received.append, on_completed=done.set
        )
    await done.wait()
    await watcher

    assert [f.seq for f in received] == list(range(frames))
    # the first turn comes before the first frame (the source is a task); then one per burst
    assert per_turn == [burst] * 5 + [17]
    # the frames of one burst share their loop turn's time
    assert len({f.captured_at for f in received[:burst]}) == 1
