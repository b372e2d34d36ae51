"""What the garbage collector walks: recordings played in real time, outage buffers.

    python benchmarks/heap.py          # ~10 s
    python benchmarks/heap.py --smoke  # a second or two (the test suite runs this)

A full collection walks every object the collector tracks, and the process stops while
it does: a pause that lands in some frame's capture-to-send lag. Two things a session
holds for long were once tracked per frame. Each is measured in the same process
against a baseline of nothing held, the collection timed after the heap settles:
- `recordings`: N real-time sources (`from_samples(..., realtime=True)`) of an hour of
  audio each, subscribed on a virtual clock (nothing plays): the time subscribing takes,
  the RSS beyond the recording itself, the tracked objects and a full collection;
- `outage`: N outboxes holding a two-minute outage each (`buffer_seconds` = 120 s, 6,000
  frames): the tracked objects and a full collection.
Figures: the medians of 5 collections; ratio = collection with / without.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import numpy as np
from reactivex.testing import TestScheduler

from benchmarks.measure import MB, machine, median, rss, summary
from pipeline.audio import FRAME_SAMPLES, FRAMES_PER_SECOND, SAMPLE_RATE, AudioFrame
from pipeline.config import SessionConfig
from pipeline.outbox import Outbox
from pipeline.sources import from_samples

COLLECTIONS = 5


def collection_ms() -> float:
    """A full collection's median time, once the heap has settled."""
    gc.collect()
    times = []
    for _ in range(COLLECTIONS):
        began = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - began) * 1000)
    return median(times)


def measured(hold: Callable[[], object]) -> tuple[float, int, float, float]:
    """(ms to build, tracked objects added, MB of RSS added, collection ms) for `hold()`."""
    gc.collect()
    objects, memory = len(gc.get_objects()), rss()
    began = time.perf_counter()
    held = hold()
    built_ms = (time.perf_counter() - began) * 1000
    figures = (built_ms, len(gc.get_objects()) - objects, (rss() - memory) / MB, collection_ms())
    del held
    return figures


def recordings(n: int, seconds: float) -> Callable[[], object]:
    audio = np.ones(round(seconds * SAMPLE_RATE), dtype=np.int16)  # pages touched up front
    clock = TestScheduler()

    def hold() -> object:
        sources = [from_samples(audio, realtime=True, scheduler=clock) for _ in range(n)]
        return [source.subscribe(lambda _: None) for source in sources]

    return hold


def outages(n: int) -> Callable[[], object]:
    bound = round(SessionConfig().buffer_seconds * FRAMES_PER_SECOND)
    audio = np.ones(bound * FRAME_SAMPLES, dtype=np.int16)

    def hold() -> object:
        boxes = []
        for _ in range(n):
            box = Outbox(max_frames=bound)
            for seq in range(bound):
                cut = audio[seq * FRAME_SAMPLES : (seq + 1) * FRAME_SAMPLES]
                box.push(AudioFrame(cut, "mic", seq, seq / FRAMES_PER_SECOND))
            boxes.append(box)
        return boxes

    return hold


def main(sessions: int, seconds: float, outboxes: int) -> None:
    print(f"machine: {machine()}")
    baseline = collection_ms()
    print(f"nothing held        a full collection {baseline:6.1f} ms")
    built, tracked, memory, played = measured(recordings(sessions, seconds))
    print(
        f"recordings  N={sessions:3d}  {seconds / 60:.0f} min each: subscribed in {built:7.1f} ms, "
        f"RSS {memory:+7.1f} MB, tracked {tracked:+9,d}, a full collection {played:6.1f} ms"
    )
    _, held, _, waiting = measured(outages(outboxes))
    print(
        f"outage      N={outboxes:3d}  {SessionConfig().buffer_seconds:.0f} s each: "
        f"tracked {held:+9,d}, a full collection {waiting:6.1f} ms"
    )
    summary(
        f"{sessions} real-time recordings of {seconds / 60:.0f} min: subscribed in "
        f"{built:.1f} ms, RSS {memory:+.1f} MB, {tracked:+d} tracked objects, a full "
        f"collection {played:.1f} ms = {played / baseline:.2f}x the empty heap's "
        f"{baseline:.1f} ms; {outboxes} outage buffers: {held:+d} tracked objects, "
        f"{waiting:.1f} ms = {waiting / baseline:.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a second or two, for the test suite")
    parser.add_argument("--sessions", type=int, default=10, help="real-time recordings held")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of each recording")
    parser.add_argument("--outboxes", type=int, default=50, help="outage buffers held")
    args = parser.parse_args()
    if args.smoke:
        main(2, 60.0, 2)
    else:
        main(args.sessions, args.minutes * 60, args.outboxes)
