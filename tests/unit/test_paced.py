"""`paced(items, due)` in virtual time: what `from_iterable(items).pipe(pace(due))` emits,
when it emits it, but each item taken from `items` only as the one before it leaves."""

from __future__ import annotations

from collections.abc import Iterator

import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from operators.pace import pace, paced
from tests.unit.test_ticker import CountingScheduler
from tests.unit.vtime import completion, failure, kinds, timed

MS = 0.001


class Counted:
    """An iterable of due times (ms) that records, at each take, how many items it gave."""

    def __init__(self, dues_ms: list[int]) -> None:
        self.dues_ms = dues_ms
        self.taken = 0

    def __iter__(self) -> Iterator[float]:
        for due_ms in self.dues_ms:
            self.taken += 1
            yield due_ms * MS


def own_time(item: float) -> float:
    return item


@settings(max_examples=150, deadline=None)
@given(
    dues_ms=st.lists(st.integers(0, 200), max_size=30),
    grid_ms=st.sampled_from([0, 5]),
    take=st.none() | st.integers(1, 10),
)
def test_the_same_items_at_the_same_times_as_pace_over_the_whole_list(
    dues_ms: list[int], grid_ms: int, take: int | None
) -> None:
    def run(build: type[object] | None) -> tuple[list[tuple[float, float]], float | None]:
        scheduler = TestScheduler()

        def create() -> Observable[float]:
            dues = [due_ms * MS for due_ms in dues_ms]
            stream = (
                paced(dues, own_time, scheduler, granularity=grid_ms * MS, stamp=stamp)
                if build is None
                else reactivex.from_iterable(dues).pipe(
                    pace(own_time, scheduler, granularity=grid_ms * MS, stamp=stamp)
                )
            )
            return stream if take is None else stream.pipe(ops.take(take))

        observer = scheduler.start(create)
        return timed(observer.messages), completion(observer.messages)

    def stamp(item: float, at: float) -> float:
        return item + at  # what left, and when it was stamped

    assert run(None) == run(list)


@settings(max_examples=100, deadline=None)
@given(dues_ms=st.lists(st.integers(0, 200), min_size=1, max_size=30))
def test_an_item_is_taken_only_as_the_one_before_it_leaves(dues_ms: list[int]) -> None:
    scheduler = TestScheduler()
    items = Counted(sorted(dues_ms))
    taken_when_left: list[int] = []
    paced(items, own_time, scheduler).subscribe(lambda _: taken_when_left.append(items.taken))
    assert items.taken == 1  # subscribed: the first item only, to know when it is due
    scheduler.start()
    # each item leaves having taken at most the next one: one item ahead, never the list
    assert taken_when_left == [min(n + 2, len(dues_ms)) for n in range(len(dues_ms))]


def test_a_consumer_that_disposes_stops_the_taking_and_the_clock() -> None:
    scheduler = CountingScheduler()
    items = Counted(list(range(20, 2_020, 20)))
    left: list[float] = []
    paced(items, own_time, scheduler).pipe(ops.take(3)).subscribe(left.append)
    scheduler.start()
    assert left == [0.02, 0.04, 0.06]
    assert items.taken == 4  # the fourth, taken as the third left; none of the 96 after
    assert scheduler.timers == 3


def test_each_subscription_iterates_afresh() -> None:
    scheduler = TestScheduler()
    stream = paced(Counted([10, 20, 30]), own_time, scheduler)
    first = scheduler.start(lambda: stream)
    second = scheduler.start(lambda: stream, created=1_000, subscribed=1_100, disposed=2_000)
    assert [value for _, value in timed(first.messages)] == [0.01, 0.02, 0.03]
    # the second subscription's clock starts at its own subscription, 1100
    assert [(round(at - 1_100, 6), value) for at, value in timed(second.messages)] == [
        (0.01, 0.01),
        (0.02, 0.02),
        (0.03, 0.03),
    ]


def test_an_iteration_that_fails_ends_the_stream_when_it_fails() -> None:
    broken = RuntimeError("the recording could not be read")

    def items() -> Iterator[float]:
        yield 1.0
        yield 2.0
        raise broken

    scheduler = TestScheduler()
    observer = scheduler.start(lambda: paced(items(), own_time, scheduler))
    # 2.0 is taken as 1.0 leaves; the failure, as 2.0 leaves: after it, at its time
    assert timed(observer.messages) == [(201.0, 1.0), (202.0, 2.0)]
    assert failure(observer.messages) == (202.0, broken)


def test_nothing_to_play_completes_at_once() -> None:
    scheduler = TestScheduler()
    nothing: list[float] = []
    observer = scheduler.start(lambda: paced(nothing, own_time, scheduler))
    assert kinds(observer.messages) == [(200.0, "C")]


def test_stamp_may_make_something_else_of_an_item_as_it_leaves() -> None:
    scheduler = TestScheduler()

    def frame_of(seq: int, at: float) -> str:  # as a recording's frame is cut from its number
        return f"frame {seq} at {at:g}"

    def due(seq: int) -> float:
        return seq + 1.0

    observer = scheduler.start(lambda: paced(range(3), due, scheduler, stamp=frame_of))
    assert timed(observer.messages) == [
        (201.0, "frame 0 at 201"),
        (202.0, "frame 1 at 202"),
        (203.0, "frame 2 at 203"),
    ]
    assert completion(observer.messages) == 203.0
