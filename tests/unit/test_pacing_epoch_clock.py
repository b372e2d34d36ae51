"""Pacing on a clock that reads seconds since the epoch, as a session's does.

A session's `AsyncIOScheduler` keeps reactivex's own `now`, so the ticker and `pace` read
`time.time()`: about 1.8e9 s, where a float's step is about 2.4e-7 s. Due times compared
with a 1e-9 s tolerance after subtracting two such clocks are off by that step about half
the time; an exact scheduler then finds the item it fired for not yet due, and re-arms
for the same instant forever, and a loop that fires early (uvloop) re-arms until its
clock has passed the due time: the spin the ticker's `tick_at` is there to prevent.
Here the clock is virtual (a `HistoricalScheduler` at a date of today), so the facts are
exact: one timer per item, never early, at most one grid step late, every stream
complete and in order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.disposable import Disposable
from reactivex.scheduler import HistoricalScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from operators.pace import pace
from operators.ticker import Ticker

ITEMS = 200
FRAME_S = 0.02


class EpochScheduler(HistoricalScheduler):
    """Virtual time at a date of today; counts its timers and refuses to spin."""

    def __init__(self, microsecond: int = 123457, early: float = 0.0) -> None:
        super().__init__(datetime(2026, 11, 27, 22, 0, 0, microsecond, tzinfo=UTC))
        self.early = early  # fires every timer this early, as uvloop does (whole ms)
        self.timers = 0
        self.at_once = (self.now, 0)  # timers armed at the current instant

    def seconds(self) -> float:
        return self.to_seconds(self.now)

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        self.timers += 1
        instant, count = self.at_once
        self.at_once = (self.now, count + 1 if instant == self.now else 1)
        if self.at_once[1] > 10:  # re-armed for the same instant, over and over
            raise RuntimeError("the ticker spins on one instant")
        seconds = max(0.0, self.to_seconds(duetime) - self.early)
        return super().schedule_relative(seconds, action, state)


# 35000 µs: the 8th item's due time (x.195035 s) divided by the 5 ms grid is a float
# step below its true quotient, so the grid rounds it a float step before the due time
# 0.0007 s early: the loop of the `fast` extra (uvloop) keeps its timers in whole ms
@pytest.mark.parametrize(
    ("grid", "microsecond", "early"),
    [
        (0.0, 123457, 0.0),
        (0.005, 123457, 0.0),
        (0.005, 35000, 0.0),
        (0.0, 123457, 0.0007),
        (0.005, 35000, 0.0007),
    ],
)
def test_on_an_epoch_clock_every_item_leaves_once_on_time_without_a_spin(
    grid: float, microsecond: int, early: float
) -> None:
    scheduler = EpochScheduler(microsecond, early)
    begun = scheduler.seconds()
    dues = [FRAME_S * k for k in range(1, ITEMS + 1)]
    left: list[tuple[float, float]] = []
    done: list[float] = []
    reactivex.from_iterable(dues).pipe(pace(lambda d: d, scheduler, granularity=grid)).subscribe(
        lambda d: left.append((scheduler.seconds() - begun, d)),
        on_completed=lambda: done.append(scheduler.seconds() - begun),
    )
    scheduler.start()
    assert [d for _, d in left] == dues
    for at, due in left:
        # never early (but as early as the loop fires), at most a grid step late
        assert due - early - 1e-6 <= at <= due + grid + 1e-6
    assert done == [left[-1][0]]  # completed with the last item, not after
    assert scheduler.timers <= ITEMS


def test_on_the_grid_an_action_never_runs_before_its_due_time() -> None:
    scheduler = EpochScheduler(35000)
    due = scheduler.seconds() + 8 * FRAME_S  # its grid step computes a float step early
    ticker = Ticker(scheduler, 0.005)
    ran: list[float] = []
    ticker.call_at(due, lambda: ran.append(ticker.tick_at))  # the time the firing stands for
    scheduler.start()
    assert len(ran) == 1 and ran[0] >= due


@st.composite
def paced_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Streams on one virtual clock: each starts at its own moment, on one of several
    grids (so several tickers share the scheduler), gets items late or early, in bursts,
    and may be cancelled mid-flight (at moments off the millisecond, so never a tie)."""
    streams = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 500)) / 1000
        gaps = draw(st.lists(st.integers(0, 60), max_size=12))
        arrivals = [start + sum(gaps[: i + 1]) / 1000 for i in range(len(gaps))]
        dues = [draw(st.integers(0, 800)) / 1000 for _ in gaps]
        streams.append(
            {
                "start": start,
                "grid": draw(st.sampled_from([0.0, 0.005, 0.01])),
                "items": list(zip(arrivals, dues, strict=True)),
                "ends": (arrivals[-1] if arrivals else start) + draw(st.integers(0, 50)) / 1000,
                "cancel": draw(st.none() | st.integers(0, 1500).map(lambda m: m / 1000 + 0.0003)),
            }
        )
    return streams


@given(paced_streams())
@settings(max_examples=150, deadline=None)
def test_many_streams_keep_order_and_time_and_stop_when_cancelled(
    streams: list[dict[str, Any]],
) -> None:
    scheduler = TestScheduler()
    out: list[list[tuple[float, int]]] = [[] for _ in streams]
    completed: list[list[float]] = [[] for _ in streams]

    def begin(n: int, spec: dict[str, Any]) -> None:
        items: Subject[tuple[int, float]] = Subject()

        def due(item: tuple[int, float]) -> float:
            return item[1]

        paced = items.pipe(pace(due, scheduler, granularity=spec["grid"]))

        def note(item: tuple[int, float]) -> None:
            out[n].append((scheduler.clock, item[0]))

        subscription = paced.subscribe(
            note,
            on_completed=lambda: completed[n].append(scheduler.clock),
        )
        for index, (arrival, due) in enumerate(spec["items"]):
            scheduler.schedule_absolute(arrival, lambda *_, i=index, d=due: items.on_next((i, d)))
        scheduler.schedule_absolute(spec["ends"], lambda *_: items.on_completed())
        if spec["cancel"] is not None:
            scheduler.schedule_absolute(spec["cancel"], lambda *_: subscription.dispose())

    for n, spec in enumerate(streams):
        scheduler.schedule_absolute(spec["start"], lambda *_, n=n, s=spec: begin(n, s))
    scheduler.start()

    for n, spec in enumerate(streams):
        left, items, cancel = out[n], spec["items"], spec["cancel"]
        assert [index for _, index in left] == list(range(len(left)))  # in order, none twice
        previous = spec["start"]
        for at, index in left:
            arrival, due = items[index]
            earliest = max(arrival, spec["start"] + due, previous)
            assert earliest - 1e-9 <= at <= earliest + spec["grid"] + 1e-9
            previous = at
        if cancel is None:
            assert len(left) == len(items)  # every item
            assert completed[n] == [pytest.approx(max(spec["ends"], previous), abs=1e-9)]
        else:
            assert all(at < cancel for at, _ in left)  # nothing after the cancel
            if len(left) < len(items):
                assert completed[n] == []


class BestEffortScheduler(TestScheduler):
    """Virtual time whose timers still fire after they were cancelled: cancelling is
    "best effort" on reactivex's `TimeoutScheduler`, whose timer may already be running
    on its thread (waiting for the ticker's lock) when a new timer replaces it."""

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        super().schedule_relative(duetime, action, state)
        return Disposable()  # a cancel that comes too late


def test_a_replaced_timer_that_still_fires_runs_nothing_before_its_time() -> None:
    scheduler = BestEffortScheduler()
    ticker = Ticker(scheduler)
    ran: list[tuple[str, float, float]] = []

    def note(name: str) -> None:
        ran.append((name, scheduler.clock, ticker.tick_at))

    def early() -> None:
        note("early")
        ticker.call_at(2.0, lambda: note("late"))  # armed for 2.0 once this firing ends

    cancel = ticker.call_at(1.0, lambda: note("cancelled"))  # a timer for 1.0...
    ticker.call_at(0.5, early)  # ...replaced by one for 0.5: the 1.0 one fires anyway
    cancel()
    scheduler.start()
    assert ran == [("early", 0.5, 0.5), ("late", 2.0, 2.0)]
