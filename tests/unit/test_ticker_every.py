"""`Ticker.every` in virtual time, and the timers built on it: level windows and coalesced
values of many streams land on one grid and share the scheduler's timers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reactivex.testing import TestScheduler

from operators.coalesce import Coalescer
from operators.level import LevelMeter
from operators.ticker import Ticker
from pipeline.audio import FRAME_SAMPLES, AudioFrame
from tests.unit.test_ticker import CountingScheduler


def silence(seq: int, source: str = "system") -> AudioFrame:
    return AudioFrame(np.zeros(FRAME_SAMPLES, dtype=np.int16), source, seq, 0.0)


def test_runs_are_due_at_start_plus_k_intervals() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    runs: list[float] = []
    scheduler.advance_to(7.0)
    ticker.every(0.1, lambda: runs.append(scheduler.clock))
    scheduler.advance_to(107.0)
    assert runs == pytest.approx([7.0 + k * 0.1 for k in range(1, 1001)], abs=1e-9)


def test_on_a_grid_each_run_is_the_first_grid_step_at_or_after_its_due_time() -> None:
    scheduler = TestScheduler()
    grid = 0.005
    ticker = Ticker(scheduler, grid)
    runs: list[float] = []
    scheduler.advance_to(3.0021)
    ticker.every(0.25, lambda: runs.append(scheduler.clock))
    scheduler.advance_to(13.0)
    due = [3.0021 + k * 0.25 for k in range(1, 40)]
    # up to a grid step late each time, and the lateness never adds up (a timer re-armed
    # `interval` after each late run would be a window behind after a minute)
    assert runs == pytest.approx([math.ceil(d / grid - 1e-9) * grid for d in due], abs=1e-9)
    assert all(-1e-9 <= r - d < grid for r, d in zip(runs, due, strict=True))


def test_after_a_stall_the_missed_runs_are_skipped_not_run_in_a_burst() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    runs: list[float] = []
    ticker.every(0.1, lambda: runs.append(scheduler.clock))
    # the loop is blocked from 0.15 to 0.5 by someone else's work
    scheduler.schedule_absolute(0.15, lambda *_: scheduler.sleep(0.35))
    scheduler.advance_to(1.0)
    # the run due at 0.2 comes late, once; 0.3 and 0.4 are skipped; then on time again
    assert runs == pytest.approx([0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], abs=1e-9)


def test_a_cancel_from_inside_the_action_or_outside_stops_the_runs() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    inside: list[float] = []
    outside: list[float] = []

    def stop_after_three() -> None:
        inside.append(scheduler.clock)
        if len(inside) == 3:
            cancel_inside()

    cancel_inside = ticker.every(1.0, stop_after_three)
    cancel_outside = ticker.every(1.0, lambda: outside.append(scheduler.clock))
    scheduler.advance_to(5.5)
    cancel_outside()
    scheduler.advance_to(20.0)
    assert inside == [1.0, 2.0, 3.0]
    assert outside == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_failing_run_is_raised_and_the_next_ones_still_come() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    runs: list[float] = []

    def action() -> None:
        runs.append(scheduler.clock)
        if len(runs) == 1:
            raise RuntimeError("a consumer failed")

    ticker.every(1.0, action)
    with pytest.raises(RuntimeError, match="a consumer failed"):
        scheduler.advance_to(1.0)
    scheduler.stop()  # the test scheduler stops where the error left it; restart it
    scheduler.advance_to(3.0)
    assert runs == [1.0, 2.0, 3.0]


def test_a_non_positive_interval_is_refused() -> None:
    ticker = Ticker(TestScheduler())
    for interval in (0.0, -1.0):
        with pytest.raises(ValueError, match="interval"):
            ticker.every(interval, lambda: None)


def meters_and_coalescers(grid: float) -> tuple[list[float], int]:
    """Twenty streams started within 26 ms of each other (sessions started together),
    each with a level meter (0.25 s windows) and a coalescer (0.25 s) fed a frame every
    20 ms for 4 s: the times their windows closed and values came out, and the timers
    they armed on the scheduler."""
    scheduler = CountingScheduler()
    interval, streams, frames = 0.25, 20, 200
    fired: list[float] = []
    meters: list[LevelMeter] = []
    coalescers: list[Coalescer[int]] = []
    for index in range(streams):
        scheduler.advance_to(1.0 + index * 0.0013)  # each stream's own moment, off the grid
        meter = LevelMeter(interval, lambda _: fired.append(scheduler.clock), scheduler, grid)
        meter.start()
        meters.append(meter)
        coalescers.append(
            Coalescer(interval, scheduler, lambda _: fired.append(scheduler.clock), grid)
        )
    for seq in range(frames):
        scheduler.advance_to(1.5 + seq * 0.02)
        for meter, coalescer in zip(meters, coalescers, strict=True):
            meter.add(silence(seq))
            coalescer.push(seq)
    scheduler.advance_to(1.5 + frames * 0.02 + 2 * interval)  # the last ones are due
    return fired, scheduler.timers


def test_meters_and_coalescers_of_many_streams_share_the_grid_and_its_timers() -> None:
    grid = 0.005
    fired, timers = meters_and_coalescers(grid)
    own_fired, own_timers = meters_and_coalescers(0.0)

    assert len(fired) == len(own_fired)  # as many windows and values, each on the grid
    assert all(abs(t / grid - round(t / grid)) < 1e-6 for t in fired)
    assert all(0 <= t - o < grid for t, o in zip(sorted(fired), sorted(own_fired), strict=True))
    # each window and each value armed a timer of its own before the shared ticker; on
    # it, only exact coincidences share one (one stream's window and value due at once);
    # on the grid, the streams due in one step share one
    assert own_timers < len(own_fired)
    assert timers * 5 < len(fired)
    assert timers * 2 < own_timers
