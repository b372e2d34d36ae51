"""A paced stream that its consumer disposes, or that completes, while items leave: it
arms no further timer and stamps nothing more (a recording's frames are all queued at
subscription: otherwise each one still wakes the clock at its due time, for nothing)."""

from __future__ import annotations

import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject

from operators.pace import pace
from tests.unit.test_ticker import CountingScheduler

ITEMS = 100


def own_time(item: int) -> float:
    return item * 0.02


def test_a_consumer_that_disposes_while_items_leave_stops_the_clock() -> None:
    scheduler = CountingScheduler()
    left: list[int] = []
    stamped: list[int] = []

    def stamp(item: int, _: float) -> int:
        stamped.append(item)
        return item

    reactivex.from_iterable(range(1, ITEMS + 1)).pipe(
        pace(own_time, scheduler, stamp=stamp), ops.take(3)
    ).subscribe(left.append)
    scheduler.start()
    assert left == [1, 2, 3]
    assert stamped == [1, 2, 3]  # nothing stamped for a consumer that is gone
    assert scheduler.timers == 3  # one per item that left: none for the 97 left behind


def test_a_stream_completed_while_its_last_item_leaves_ends_once_and_arms_nothing_more() -> None:
    scheduler = CountingScheduler()
    source: Subject[int] = Subject()
    seen: list[object] = []

    def on_next(item: int) -> None:
        seen.append(item)
        if item == 1:  # the consumer feeds the source while pace is releasing
            source.on_next(1)  # already due: leaves in this release
            source.on_completed()

    completions: list[float] = []
    source.pipe(pace(lambda _: 0.0, scheduler)).subscribe(
        on_next, on_completed=lambda: completions.append(scheduler.clock)
    )
    scheduler.schedule_absolute(1.0, lambda *_: source.on_next(1))
    scheduler.start()
    assert seen == [1, 1]
    assert len(completions) == 1
    assert scheduler.timers == 1  # the one release: the item it let in re-arms nothing
