"""Timeline: recogniser time back to stream time across skipped audio (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.timeline import MAX_MARKS, Timeline


def test_no_skips_is_the_identity() -> None:
    timeline = Timeline()
    assert timeline.to_stream(3.25) == 3.25
    assert timeline.skipped == 0.0


def test_a_skip_moves_later_times_only() -> None:
    timeline = Timeline()
    timeline.skip(2.0, 0.5)  # half a second of stream audio missing at recogniser time 2.0
    assert timeline.to_stream(1.0) == 1.0
    assert timeline.to_stream(2.0) == 2.5
    assert timeline.to_stream(3.0) == 3.5


def test_frames_dropped_in_a_row_are_one_gap() -> None:
    timeline = Timeline()
    for _ in range(10):
        timeline.skip(4.0, 0.02)
    assert timeline.to_stream(4.0) == pytest.approx(4.2)
    assert timeline.skipped == pytest.approx(0.2)


def test_forgetting_folds_old_skips_without_moving_anything() -> None:
    timeline = Timeline()
    timeline.skip(1.0, 1.0)
    timeline.skip(5.0, 2.0)
    timeline.forget_before(3.0)
    assert timeline.to_stream(4.0) == 5.0
    assert timeline.to_stream(6.0) == 9.0
    assert timeline.skipped == 3.0


skips = st.lists(
    st.tuples(st.floats(0, 5, allow_nan=False), st.floats(0, 2, allow_nan=False)),
    max_size=40,
)


@given(skips, st.lists(st.floats(0, 300, allow_nan=False), min_size=2, max_size=10))
def test_mapping_is_monotone_and_adds_exactly_the_skipped_audio(
    steps: list[tuple[float, float]], probes: list[float]
) -> None:
    timeline = Timeline()
    at = 0.0
    for advance, seconds in steps:
        at += advance
        timeline.skip(at, seconds)
    total = sum(seconds for _, seconds in steps if seconds > 0)
    assert timeline.skipped == pytest.approx(total)
    assert timeline.to_stream(at + 1) == pytest.approx(at + 1 + total)
    ordered = sorted(probes)
    mapped = [timeline.to_stream(t) for t in ordered]
    assert mapped == sorted(mapped)
    assert all(m >= t for m, t in zip(mapped, ordered, strict=True))


def test_memory_is_bounded() -> None:
    timeline = Timeline()
    for step in range(10 * MAX_MARKS):
        timeline.skip(float(step), 0.02)
    assert len(timeline._at) <= MAX_MARKS
    assert timeline.to_stream(1e6) == pytest.approx(1e6 + 10 * MAX_MARKS * 0.02)
