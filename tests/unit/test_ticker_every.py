"""`Ticker.every` in virtual time, and the timers built on it: level windows and coalesced
values of many streams land on one grid and share the scheduler's timers."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from operators.coalesce import Coalescer
from operators.level import LevelMeter
from operators.ticker import DEFERRED_PER_TURN, Ticker, shared_ticker
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


def test_aligned_runs_count_from_the_tickers_origin_whenever_a_stream_starts() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(2.0)
    ticker = Ticker(scheduler)  # its origin: 2.0
    runs: dict[str, list[float]] = {"early": [], "late": [], "own": []}
    scheduler.advance_to(3.0021)
    ticker.every(0.25, lambda: runs["early"].append(scheduler.clock), aligned=True)
    scheduler.advance_to(4.6)
    ticker.every(0.25, lambda: runs["late"].append(scheduler.clock), aligned=True)
    ticker.every(0.25, lambda: runs["own"].append(scheduler.clock))
    scheduler.advance_to(7.0)

    assert ticker.origin == 2.0
    # the first run at the next multiple of the interval past the origin, sooner than
    # an interval after the start; then every interval, the two streams at the same times
    assert runs["early"] == pytest.approx([3.25 + k * 0.25 for k in range(16)], abs=1e-9)
    assert runs["late"] == pytest.approx([4.75 + k * 0.25 for k in range(10)], abs=1e-9)
    # not aligned: from the stream's own start, as before
    assert runs["own"] == pytest.approx([4.85 + k * 0.25 for k in range(9)], abs=1e-9)


def test_aligned_runs_skip_what_a_stall_missed_and_keep_their_times() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    scheduler.advance_to(0.03)
    runs: list[float] = []
    ticker.every(0.1, lambda: runs.append(scheduler.clock), aligned=True)
    scheduler.schedule_absolute(0.15, lambda *_: scheduler.sleep(0.35))  # busy until 0.5
    scheduler.advance_to(0.8)
    assert runs == pytest.approx([0.1, 0.5, 0.6, 0.7, 0.8], abs=1e-9)


def noting(times: list[float], scheduler: TestScheduler) -> Callable[[object], None]:
    return lambda _: times.append(scheduler.clock)


def aligned_meter_closes(
    aligned: bool, streams: int = 30
) -> tuple[list[list[float]], int, list[float]]:
    """Level meters (0.25 s windows) started at random moments over 3 s on a 5 ms grid,
    fed a frame every 20 ms until 6 s: each meter's window ends, the scheduler's timers
    armed for them, and the starts (the first is the shared ticker's origin)."""
    rng = np.random.default_rng(7)
    scheduler = CountingScheduler()
    grid, interval = 0.005, 0.25
    starts = sorted(rng.uniform(0.0, 3.0, streams))
    closes: list[list[float]] = [[] for _ in range(streams)]
    meters: list[LevelMeter] = []
    for index, start in enumerate(starts):
        scheduler.advance_to(float(start))
        meter = LevelMeter(
            interval, noting(closes[index], scheduler), scheduler, grid, aligned=aligned
        )
        meter.start()
        meters.append(meter)
    for seq in range(150, 300):
        scheduler.advance_to(seq * 0.02)
        for meter in meters:
            meter.add(silence(seq))
    return closes, scheduler.timers, [float(start) for start in starts]


def test_aligned_meters_close_their_windows_in_one_step_however_they_started() -> None:
    closes, timers, starts = aligned_meter_closes(aligned=True)
    spread, spread_timers, _ = aligned_meter_closes(aligned=False)
    origin, grid = starts[0], 0.005

    # from 3 s every meter has frames in every window: each window ends at the same
    # instant for all of them, the first grid step at or after the origin (the first
    # meter's start) plus a multiple of 0.25 s
    ends = {tuple(round(t, 9) for t in mine if t > 3.0) for mine in closes}
    assert len(ends) == 1
    (shared,) = ends
    assert len(shared) == 12  # from 3 s to the last frame at 5.98 s
    for end in shared:
        due = origin + math.ceil((end - origin) / 0.25 - 0.5) * 0.25
        assert due - 1e-9 <= end < due + grid
    # not aligned, each meter's windows end at its own phase: the grid step of its start
    phases = {math.ceil(start / grid - 1e-9) % round(0.25 / grid) for start in starts}
    assert len({tuple(round(t, 9) for t in mine if t > 3.0) for mine in spread}) == len(phases)
    assert len(phases) > 1
    # and the aligned ones need one timer per window for all, not one per phase
    assert timers < spread_timers


def aligned_coalescer(
    pushes: list[float], interval: float
) -> tuple[Ticker, list[tuple[float, int]]]:
    """An aligned coalescer fed value i at `pushes[i]` (sorted), on a ticker made at 0.0:
    what came out, when."""
    scheduler = TestScheduler()
    ticker = shared_ticker(scheduler, 0.0)  # the origin: 0.0
    out: list[tuple[float, int]] = []
    coalescer: Coalescer[int] = Coalescer(
        interval, scheduler, lambda value: out.append((scheduler.clock, value)), aligned=True
    )
    for index, at in enumerate(pushes):
        scheduler.schedule_absolute(at, lambda *_, value=index: coalescer.push(value))
    scheduler.advance_to(max(pushes, default=0.0) + 3 * interval)
    return ticker, out


def test_an_aligned_coalescer_comes_out_on_the_shared_instants() -> None:
    steady = [1.013 + k * 0.02 for k in range(100)]  # 1.013 to 2.993
    _, out = aligned_coalescer([*steady, 4.0, 4.1], 0.25)

    # at once for the first; then the first aligned instant 0.25 s or more after the
    # last one (1.263 -> 1.5), every 0.25 s; at once again after the quiet spell
    times = [1.013, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 4.0, 4.25]
    assert [t for t, _ in out] == pytest.approx(times, abs=1e-9)
    # each time the latest value pushed by then: nothing held back, the last one out
    latest = [max(i for i, at in enumerate([*steady, 4.0, 4.1]) if at <= t + 1e-9) for t in times]
    assert [value for _, value in out] == latest


@given(
    # in whole microseconds: the test scheduler's clock keeps no finer time
    st.lists(st.integers(0, 5_000_000).map(lambda us: us / 1e6), max_size=60),
    st.sampled_from([0.1, 0.25, 0.5]),
)
def test_an_aligned_coalescer_keeps_every_promise_of_a_coalescer(
    pushes: list[float], interval: float
) -> None:
    pushes = sorted(pushes)
    ticker, out = aligned_coalescer(pushes, interval)
    times = [t for t, _ in out]
    # at most once per interval
    assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(times))
    # each value out is the latest pushed by then, and the last one pushed comes out
    for at, value in out:
        assert value == max(i for i, p in enumerate(pushes) if p <= at + 1e-9)
    if pushes:
        assert out[-1][1] == len(pushes) - 1
    # each comes out at once (at a push) or at one of the shared aligned instants
    for at in times:
        periods = (at - ticker.origin) / interval
        assert any(abs(at - p) < 1e-9 for p in pushes) or abs(periods - round(periods)) < 1e-6


def test_deferred_actions_run_after_the_step_and_what_it_scheduled() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler, 0.005)
    order: list[str] = []

    def frame(name: str) -> Callable[[], None]:
        # a paced frame: released by the ticker, written by what it wakes (the writer)
        def release() -> None:
            order.append(f"release {name}")
            scheduler.schedule(lambda *_: order.append(f"write {name}"))

        return release

    ticker.call_at(1.0, lambda: order.append("window a"), deferred=True)
    ticker.call_at(1.0, frame("1"))
    ticker.call_at(0.999, lambda: order.append("window b"), deferred=True)  # same step
    ticker.call_at(1.0, frame("2"))
    scheduler.advance_to(1.0)
    # the step's frames are released and written first, then its deferred actions in
    # one batch, in the order they were due and registered
    assert order == [
        "release 1",
        "release 2",
        "write 1",
        "write 2",
        "window a",
        "window b",
    ]
    assert scheduler.clock == 1.0


def test_a_deferred_action_cancelled_before_its_batch_runs_does_not_run() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    ran: list[str] = []
    cancel_b: list[Callable[[], None]] = []
    ticker.call_at(1.0, lambda: cancel_b[0]())  # runs at the firing, before the batch
    ticker.call_at(1.0, lambda: ran.append("a"), deferred=True)
    cancel_b.append(ticker.call_at(1.0, lambda: ran.append("b"), deferred=True))
    scheduler.advance_to(2.0)
    assert ran == ["a"]


def test_a_failing_deferred_action_is_raised_after_the_others_of_its_batch() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("a broken meter")

    ticker.call_at(1.0, fail, deferred=True)
    ticker.call_at(1.0, lambda: ran.append("after"), deferred=True)
    ticker.call_at(2.0, lambda: ran.append("next step"))
    with pytest.raises(RuntimeError, match="a broken meter"):
        scheduler.advance_to(1.5)
    assert ran == ["after"]
    scheduler.stop()  # the test scheduler stops where the error left it; restart it
    scheduler.advance_to(2.5)
    assert ran == ["after", "next step"]


def test_a_large_batch_of_deferred_actions_runs_a_turn_at_a_time() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    order: list[str] = []
    count = 2 * DEFERRED_PER_TURN + 5  # the windows and counts of many sessions

    def window(index: int) -> Callable[[], None]:
        def close() -> None:
            order.append(f"window {index}")
            if index % DEFERRED_PER_TURN == 0:  # what it schedules (say, a write)
                scheduler.schedule(lambda *_: order.append(f"scheduled by {index}"))

        return close

    for index in range(count):
        ticker.call_at(1.0, window(index), deferred=True)
    scheduler.advance_to(1.0)

    # every one ran once, in order; between turns, what the turn before scheduled
    windows = [entry for entry in order if entry.startswith("window")]
    assert windows == [f"window {index}" for index in range(count)]
    turns = [0, DEFERRED_PER_TURN, 2 * DEFERRED_PER_TURN]
    for turn in turns:
        position = order.index(f"scheduled by {turn}")
        assert order[position - 1] == f"window {min(turn + DEFERRED_PER_TURN, count) - 1}"


class LateScheduler(TestScheduler):
    """Virtual time whose timers fire `LATE` after they are due, as a busy event loop's do
    (a test double for the loop's lateness: the actions, the ticker and the clock are real)."""

    LATE = 0.003

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> Any:
        return super().schedule_absolute(self.to_seconds(duetime) + self.LATE, action, state)


def test_an_aligned_coalescer_on_late_timers_still_comes_out_every_interval() -> None:
    """Its flushes fire a few ms past their instants; counted from then, the next due time
    rounded up to the instant after next: every 0.5 s where 0.25 s was asked."""
    scheduler = LateScheduler()
    shared_ticker(scheduler, 0.005)
    out: list[float] = []
    coalescer: Coalescer[int] = Coalescer(
        0.25, scheduler, lambda _: out.append(scheduler.clock), 0.005, aligned=True
    )
    for k in range(100):  # a frame every 20 ms, 1.0 to 2.98 s
        scheduler.schedule_absolute(1.0 + k * 0.02, lambda *_, k=k: coalescer.push(k))
    scheduler.advance_to(4.0)

    # the first at once; the next on the first aligned instant 0.25 s or more after it
    # (1.003 -> 1.5), then on every one, each a little late (the timer, then the batch)
    instants = [1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0]
    assert len(out) == 1 + len(instants)
    late = [t - at for t, at in zip(out[1:], instants, strict=True)]
    assert all(0 < d <= 2 * LateScheduler.LATE + 1e-9 for d in late)
