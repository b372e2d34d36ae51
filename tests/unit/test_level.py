"""The level meter: dBFS arithmetic, and throttled per-source events in virtual time."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reactivex.testing import TestScheduler

from operators.level import (
    SILENCE_DBFS,
    Level,
    dbfs,
    frame_level,
    level_meter,
    power,
    window_level,
)
from pipeline.audio import SAMPLE_RATE, AudioFrame, Samples
from tests.unit.vtime import completed_at, completion, next_at, timed

SINE_HALF = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * np.arange(320) / SAMPLE_RATE)).astype(np.int16)


def frame(samples: Samples, seq: int = 0, source: str = "mic", at: float = 0.0) -> AudioFrame:
    return AudioFrame(samples, source, seq, at)


def test_known_signals_read_their_textbook_levels() -> None:
    level = frame_level(frame(SINE_HALF, at=3.0))
    assert level.rms_dbfs == pytest.approx(-6.02 - 3.01, abs=0.05)  # half scale, sine: -3 dB
    assert level.peak_dbfs == pytest.approx(-6.02, abs=0.05)
    assert (level.at, level.source) == (3.0, "mic")

    square = np.where(np.arange(320) % 2, 32767, -32768).astype(np.int16)
    full = frame_level(frame(square))
    assert full.rms_dbfs == pytest.approx(0.0, abs=0.01)
    assert full.peak_dbfs == pytest.approx(0.0, abs=0.01)

    silence = frame_level(frame(np.zeros(320, dtype=np.int16)))
    assert (silence.rms_dbfs, silence.peak_dbfs) == (SILENCE_DBFS, SILENCE_DBFS)


@given(arrays(np.int16, st.integers(1, 640)))
def test_levels_are_bounded_and_rms_never_exceeds_peak(samples: Samples) -> None:
    level = frame_level(frame(samples))
    assert SILENCE_DBFS <= level.rms_dbfs <= level.peak_dbfs <= 0.0
    assert not math.isnan(level.rms_dbfs)


def test_a_window_is_the_power_mean_and_the_loudest_peak() -> None:
    quiet_samples = (SINE_HALF // 100).astype(np.int16)
    quiet, loud = power(quiet_samples), power(SINE_HALF)
    level = window_level("system", 1.0, [quiet_samples, quiet_samples, SINE_HALF])
    expected_rms = math.sqrt((2 * quiet[0] + loud[0]) / 3)
    assert level.rms_dbfs == pytest.approx(dbfs(expected_rms))
    assert level.peak_dbfs == pytest.approx(dbfs(loud[1]))


def test_meter_reports_each_source_at_most_once_per_interval() -> None:
    scheduler = TestScheduler()
    messages = []
    for seq in range(100):  # 2 s of 20 ms frames from two sources, the mic with one click
        at = 200 + (seq + 1) * 0.02
        click = seq == 57
        messages.append(next_at(at, frame(SINE_HALF // (1 if click else 10), seq, "mic", at)))
        messages.append(next_at(at, frame(SINE_HALF // 100, seq, "system", at)))
    messages.append(completed_at(203))
    frames = scheduler.create_hot_observable(messages)
    observer = scheduler.start(lambda: frames.pipe(level_meter(0.1)))
    levels: list[tuple[float, Level]] = timed(observer.messages)

    for source in ("mic", "system"):
        mine = [(t, level) for t, level in levels if level.source == source]
        assert 19 <= len(mine) <= 21  # 2 s at 10 per second, not 100
        times = [t for t, _ in mine]
        assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times))
        assert all(level.at == t for t, level in mine)  # stamped with the scheduler's time
    mic = [level for _, level in levels if level.source == "mic"]
    peaks = [level.peak_dbfs for level in mic]
    loudest = int(np.argmax(peaks))
    assert peaks[loudest] == pytest.approx(-6.02, abs=0.1)  # the click is not averaged away
    assert all(p < -20 for i, p in enumerate(peaks) if i != loudest)
    assert completion(observer.messages) == 203


def test_a_silent_gap_produces_no_events() -> None:
    scheduler = TestScheduler()
    frames = scheduler.create_hot_observable(
        next_at(200.05, frame(SINE_HALF, 0)), next_at(205.08, frame(SINE_HALF, 1))
    )
    observer = scheduler.start(lambda: frames.pipe(level_meter(0.1)), disposed=206)
    # windows tick from the subscription (200.0): one event per window with frames
    times = [t for t, _ in timed(observer.messages)]
    assert times == pytest.approx([200.1, 205.1], abs=1e-6)


def test_interval_zero_reports_every_frame_with_its_capture_time() -> None:
    scheduler = TestScheduler()
    frames = scheduler.create_hot_observable(
        next_at(201, frame(SINE_HALF, 0, at=1.0)), next_at(202, frame(SINE_HALF, 1, at=2.0))
    )
    observer = scheduler.start(lambda: frames.pipe(level_meter(0)))
    assert [(t, level.at) for t, level in timed(observer.messages)] == [(201, 1.0), (202, 2.0)]


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        level_meter(-1)
