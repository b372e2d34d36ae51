"""The shared pacing clock in virtual time: one timer for many paced streams, never early."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex.testing import TestScheduler

from operators.pace import pace
from operators.ticker import Ticker, shared_ticker


class CountingScheduler(TestScheduler):
    """A TestScheduler that counts the timers armed on it."""

    def __init__(self) -> None:
        super().__init__()
        self.timers = 0

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        self.timers += 1
        return super().schedule_relative(duetime, action, state)


def test_streams_on_one_scheduler_share_one_ticker() -> None:
    scheduler = TestScheduler()
    assert shared_ticker(scheduler, 0.01) is shared_ticker(scheduler, 0.01)
    assert shared_ticker(scheduler, 0.01) is not shared_ticker(TestScheduler(), 0.01)
    with pytest.raises(ValueError, match="granularity"):
        Ticker(scheduler, -1.0)


def test_staggered_streams_leave_on_the_grid_never_early_and_share_wake_ups() -> None:
    scheduler = CountingScheduler()
    grid = 0.01
    arrivals: dict[int, list[tuple[float, float]]] = {}

    def start_stream(index: int) -> None:  # stream `index` starts 3 ms after the previous
        def own_time(item: float) -> float:
            return item

        began = scheduler.clock

        def record(item: float) -> None:
            arrivals.setdefault(index, []).append((scheduler.clock, began + item))

        reactivex.from_iterable([0.02 * k for k in range(1, 11)]).pipe(
            pace(own_time, scheduler, granularity=grid)
        ).subscribe(record)

    for index in range(5):
        scheduler.schedule_absolute(1.0 + 0.003 * index, lambda *_, i=index: start_stream(i))
    scheduler.start()
    assert sorted(arrivals) == [0, 1, 2, 3, 4]
    for stream in arrivals.values():
        assert len(stream) == 10
        for left, due in stream:
            assert due - 1e-9 <= left < due + grid  # at most one grid step late
            assert abs(left / grid - round(left / grid)) < 1e-6  # on the grid
    # 50 items, but wake-ups only on the grid steps they fall in (plus the 5 starts)
    assert scheduler.timers <= 5 + len(
        {round(left / grid) for s in arrivals.values() for left, _ in s}
    )


def test_an_earlier_action_rearms_the_timer_and_cancel_removes_one() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    ran: list[tuple[str, float]] = []

    def note(name: str) -> None:
        ran.append((name, scheduler.clock))

    def first(_: abc.SchedulerBase, __: object = None) -> None:
        ticker.call_at(5.0, lambda: note("late"))
        ticker.call_at(3.0, lambda: note("early"))  # before the armed timer: re-armed
        cancel = ticker.call_at(4.0, lambda: note("cancelled"))
        cancel()

        def chain() -> None:  # an action that registers another due time
            note("chain")
            ticker.call_at(6.0, lambda: note("last"))

        ticker.call_at(2.0, chain)

    scheduler.schedule_absolute(1.0, first)
    scheduler.start()
    assert ran == [("chain", 2.0), ("early", 3.0), ("late", 5.0), ("last", 6.0)]


def test_a_failing_action_neither_stops_the_others_nor_the_clock() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler)
    ran: list[tuple[str, float]] = []

    def broken() -> None:
        raise RuntimeError("a subscriber failed")

    ticker.call_at(1.0, broken)
    ticker.call_at(1.0, lambda: ran.append(("same tick", scheduler.clock)))
    ticker.call_at(2.0, lambda: ran.append(("later", scheduler.clock)))
    with pytest.raises(RuntimeError, match="subscriber failed"):
        scheduler.advance_to(1.5)
    scheduler.stop()  # the virtual clock stays "running" after an action raised
    scheduler.advance_to(3.0)
    assert ran == [("same tick", 1.0), ("later", 2.0)]


class EarlyScheduler(CountingScheduler):
    """Fires every timer `early` seconds before its due time, as uvloop does when it keeps
    timers in whole milliseconds."""

    early = 0.0007

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        seconds = max(0.0, self.to_seconds(duetime) - self.early)
        return super().schedule_relative(seconds, action, state)


def test_a_loop_that_fires_early_gets_one_wake_up_per_due_time_not_a_spin() -> None:
    scheduler = EarlyScheduler()
    released: list[tuple[float, float]] = []
    dues = [0.02 * k for k in range(1, 51)]
    began = scheduler.clock
    reactivex.from_iterable(dues).pipe(pace(lambda item: item, scheduler)).subscribe(
        lambda item: released.append((scheduler.clock - began, item))
    )
    scheduler.start()
    assert [item for _, item in released] == dues  # every item, in order
    # one timer per item: the firing stands for the time it was armed for
    assert scheduler.timers == len(dues)
    for left, due in released:  # early by no more than the loop fired early
        assert due - EarlyScheduler.early - 1e-9 <= left <= due


def test_actions_due_in_one_grid_step_share_a_slot_and_a_cancelled_step_wakes_nobody() -> None:
    scheduler = CountingScheduler()
    ticker = Ticker(scheduler, granularity=1.0)
    ran: list[tuple[str, float]] = []

    def note(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, scheduler.clock))

    for name, due in (("a", 1.2), ("b", 1.9), ("c", 1.5)):  # one step: leave at 2, in call order
        ticker.call_at(due, note(name))
    cancel_b2 = ticker.call_at(2.5, lambda: ran.append(("cancelled", scheduler.clock)))
    ticker.call_at(4.0, lambda: ran.append(("d", scheduler.clock)))
    cancel_b2()  # the step at 3 holds only a cancelled action
    scheduler.start()
    assert ran == [("a", 2.0), ("b", 2.0), ("c", 2.0), ("d", 4.0)]
    # one timer for the step at 2 and one for 4: none for the cancelled step at 3
    assert scheduler.timers == 2
