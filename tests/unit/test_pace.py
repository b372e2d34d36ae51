"""pace in virtual time: due times after subscription, late items at once, completion last."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from reactivex import Observable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler
from reactivex.testing.marbles import marbles_testing

from operators.pace import pace
from operators.ticker import shared_ticker
from pipeline.audio import SAMPLE_RATE
from pipeline.sources import tone
from tests.unit.vtime import completed_at, completion, error_at, failure, kinds, next_at, timed


def own_time(item: float) -> float:
    return item


def test_items_leave_at_their_due_time_after_subscription() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        due: dict[str | float, float] = {"a": 1.0, "b": 3.0, "c": 5.0}  # seconds after subscription
        items = cold("(a,b,c,|)", due, None)  # all at once, completed at once
        expected = exp("-a-b-(c,|)", due, None)  # each at its time, completed with the last
        assert start(items.pipe(pace(own_time))) == expected


def test_late_items_go_at_once_and_order_is_kept() -> None:
    scheduler = TestScheduler()
    # subscribed at 200: 1.0 (due 201) arrives late at 205 and goes at once; 8.5 is due
    # before 9.0 but arrived after it, so it waits behind it: arrival order is kept.
    items = scheduler.create_hot_observable(
        next_at(205, 1.0), next_at(206, 9.0), next_at(206.5, 8.5), completed_at(207)
    )
    observer = scheduler.start(lambda: items.pipe(pace(own_time)))
    assert timed(observer.messages) == [(205, 1.0), (209, 9.0), (209, 8.5)]
    assert completion(observer.messages) == 209


def test_completion_waits_for_the_last_item_and_empty_completes_at_once() -> None:
    scheduler = TestScheduler()
    items = scheduler.create_hot_observable(next_at(201, 5.0), completed_at(202))
    observer = scheduler.start(lambda: items.pipe(pace(own_time)))
    assert kinds(observer.messages) == [(205, "N"), (205, "C")]

    scheduler = TestScheduler()
    nothing: Observable[float] = scheduler.create_hot_observable(completed_at(230))
    observer = scheduler.start(lambda: nothing.pipe(pace(own_time)))
    assert kinds(observer.messages) == [(230, "C")]


def test_errors_are_not_delayed() -> None:
    scheduler = TestScheduler()
    broken = RuntimeError("source failed")
    items = scheduler.create_hot_observable(next_at(201, 5.0), error_at(202, broken))
    observer = scheduler.start(lambda: items.pipe(pace(own_time)))
    assert failure(observer.messages) == (202, broken)


def test_disposal_cancels_what_is_not_due_yet() -> None:
    scheduler = TestScheduler()
    items = scheduler.create_hot_observable(
        next_at(201, 1.0), next_at(201, 2.0), next_at(201, 30.0), completed_at(202)
    )
    observer = scheduler.start(lambda: items.pipe(pace(own_time)), disposed=210)
    assert kinds(observer.messages) == [(201, "N"), (202, "N")]  # 30.0 never left


def test_a_paced_tone_plays_in_real_time_on_the_scheduler() -> None:
    """The real-time source: frame n leaves when a microphone would have finished it."""
    scheduler = TestScheduler()
    observer = scheduler.start(lambda: tone(440.0, 1.0, scheduler=scheduler, realtime=True))
    frames = timed(observer.messages)
    assert len(frames) == 50
    for time, frame in frames:
        assert time == pytest.approx(200 + (frame.seq + 1) * 320 / SAMPLE_RATE)
        assert frame.captured_at == pytest.approx(time)
    assert completion(observer.messages) == pytest.approx(201.0)


def test_stamp_gets_the_time_each_item_leaves_and_items_leaving_together_share_it() -> None:
    scheduler = TestScheduler()
    # items are (due, time left): due 1.2 and 1.5 fall in one 1-second grid step (both
    # leave at 202), 9.0 leaves at 209
    items = scheduler.create_hot_observable(
        next_at(200.5, (1.2, 0.0)),
        next_at(200.5, (1.5, 0.0)),
        next_at(200.5, (9.0, 0.0)),
        completed_at(201),
    )

    def due(item: tuple[float, float]) -> float:
        return item[0]

    def stamped(item: tuple[float, float], left: float) -> tuple[float, float]:
        return (item[0], left)

    observer = scheduler.start(lambda: items.pipe(pace(due, granularity=1.0, stamp=stamped)))
    assert timed(observer.messages) == [(202, (1.2, 202)), (202, (1.5, 202)), (209, (9.0, 209))]


def test_an_item_that_arrives_while_items_leave_is_armed_once() -> None:
    scheduler = TestScheduler()
    ticker = shared_ticker(scheduler)
    armed: list[float] = []
    call_at = ticker.call_at

    def counting(
        due: float, action: Callable[[], None], *, deferred: bool = False
    ) -> Callable[[], None]:
        armed.append(due)
        return call_at(due, action, deferred=deferred)

    ticker.call_at = counting  # type: ignore[method-assign]
    source: Subject[float] = Subject()
    left: list[tuple[float, float]] = []

    def on_left(item: float) -> None:
        left.append((scheduler.clock, item))
        if item == 1.0:  # the consumer feeds the source while pace is releasing
            source.on_next(3.0)
            source.on_next(5.0)

    scheduler.schedule_absolute(
        200, lambda *_: source.pipe(pace(own_time, scheduler)).subscribe(on_left)
    )
    scheduler.schedule_absolute(200.5, lambda *_: source.on_next(1.0))
    scheduler.start()
    assert left == [(201, 1.0), (203, 3.0), (205, 5.0)]
    assert armed == [201, 203, 205]  # one arming per item, none twice
