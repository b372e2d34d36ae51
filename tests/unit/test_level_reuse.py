"""A level window's containers are emptied and used again: made anew, a dict and a list
per session per window would live a quarter of a second, long enough to be promoted to
the garbage collector's oldest generation, whose full collections stop the process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from reactivex.testing import TestScheduler

import operators.level
from operators.level import Level, LevelMeter, window_level
from pipeline.audio import AudioFrame, Samples

WINDOWS = 50


def feed(meter: LevelMeter, frame: AudioFrame) -> Callable[..., None]:
    def action(*_: object) -> None:
        meter.add(frame)

    return action


def test_each_source_fills_one_list_window_after_window_with_the_same_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lists: dict[str, set[int]] = {"mic": set(), "system": set()}
    expected: list[Level] = []

    def measured(source: str, at: float, chunks: Sequence[Samples]) -> Level:
        lists[source].add(id(chunks))
        level = window_level(source, at, chunks)
        expected.append(level)
        return level

    monkeypatch.setattr(operators.level, "window_level", measured)
    scheduler = TestScheduler()
    emitted: list[Level] = []
    meter = LevelMeter(1.0, emitted.append, scheduler)
    meter.start()
    rng = np.random.default_rng(3)
    order: list[list[str]] = []
    for window in range(WINDOWS):
        # sources arrive in either order; in odd windows "system" is silent
        sources = ["system", "mic"] if window % 3 == 0 else ["mic", "system"]
        if window % 2:
            sources = ["mic"]
        order.append(sources)
        for seq, source in enumerate(sources * 5):
            samples = rng.integers(-3000, 3000, 320, dtype=np.int16)
            at = window + 0.1 + seq * 0.02
            scheduler.schedule_absolute(at, feed(meter, AudioFrame(samples, source, seq)))
    scheduler.advance_to(WINDOWS + 0.5)
    assert [level.source for level in emitted] == [s for sources in order for s in sources]
    assert emitted == expected  # each the level of its own window's frames
    # one list per source for the whole run: none made per window
    assert {source: len(ids) for source, ids in lists.items()} == {"mic": 1, "system": 1}
