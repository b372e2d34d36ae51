"""display_rate in virtual time: headline changes pass at once, ticking numbers at most
every interval (the latest one), repeats of what is shown never, the held one at the end."""

from __future__ import annotations

from typing import Any

from reactivex import Observable
from reactivex.testing import TestScheduler

from operators.display_rate import display_rate
from tests.unit.vtime import completed_at, next_at, timed

on_next, on_completed = next_at, completed_at
Shown = tuple[str, int]


def urgent(before: Shown, after: Shown) -> bool:
    return before[0] != after[0]


def same(before: Shown, after: Shown) -> bool:
    return before[1] == after[1]


def paced(scheduler: TestScheduler, *messages: Any) -> list[tuple[float, Shown]]:
    source: Observable[Shown] = scheduler.create_hot_observable(*messages)

    def create() -> Observable[Shown]:
        return source.pipe(
            display_rate(0.25, urgent=urgent, same=same, scheduler=lambda: scheduler)
        )

    return timed(scheduler.start(create, created=0.1, subscribed=0.5, disposed=100).messages)


def test_counts_every_10_ms_come_out_four_times_a_second_and_phases_at_once() -> None:
    scheduler = TestScheduler()
    streaming = [on_next(1.0 + i / 100, ("streaming", i)) for i in range(50)]  # 0.5 s
    reconnecting = [on_next(1.5 + i / 100, ("reconnecting", 50 + i)) for i in range(50)]
    out = paced(scheduler, *streaming, *reconnecting, on_completed(2.5))

    assert out == [
        (1.0, ("streaming", 0)),  # the first passes at once
        (1.25, ("streaming", 25)),  # then the latest, at most every 0.25 s
        (1.5, ("reconnecting", 50)),  # a phase change at once
        (1.75, ("reconnecting", 75)),
        (2.0, ("reconnecting", 99)),  # the last one held, when its turn comes
    ]


def test_nothing_new_to_show_is_not_emitted() -> None:
    scheduler = TestScheduler()
    out = paced(
        scheduler,
        on_next(1.0, ("streaming", 1)),
        on_next(1.1, ("streaming", 1)),
        on_next(2.0, ("streaming", 1)),
        on_completed(3.0),
    )
    assert out == [(1.0, ("streaming", 1))]


def test_the_held_value_comes_out_before_completion() -> None:
    scheduler = TestScheduler()
    out = paced(
        scheduler,
        on_next(1.0, ("streaming", 1)),
        on_next(1.1, ("streaming", 2)),
        on_completed(1.2),
    )
    assert out == [(1.0, ("streaming", 1)), (1.2, ("streaming", 2))]
