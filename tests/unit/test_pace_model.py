"""`pace` against a plain model, in virtual time: items arriving at any moments, with any
due times, some fed back while items leave, the consumer taking only the first few or
all: each item leaves once, in arrival order: with the item before it if it had arrived
and was due by then, else at its due time rounded up to the grid (at once if it arrives
late); completion follows the last item."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from operators.pace import pace

MS = 0.001

arrivals = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40)), min_size=1, max_size=10)


@settings(max_examples=200, deadline=None)
# fed back while the head leaves, and the head was not due yet on the grid: the stale
# arm for it held the completion back to the next grid step
@example(items=[(1, 0), (1, 1)], grid_ms=5, take=None, fed_back=1, complete_ms=0)
@given(
    arrivals,
    st.sampled_from([0, 5]),
    st.none() | st.integers(1, 10),
    st.integers(0, 3),
    st.integers(0, 60),
)
def test_items_leave_once_in_order_at_the_model_times(
    items: list[tuple[int, int]],
    grid_ms: int,
    take: int | None,
    fed_back: int,
    complete_ms: int,
) -> None:
    scheduler = TestScheduler()
    source: Subject[int] = Subject()
    items = sorted(items)  # (arrival ms, due ms), in arrival order
    dues = [due for _, due in items] + [0] * fed_back  # fed-back items: due at once
    left: list[tuple[int, float]] = []
    ended: list[float] = []

    def on_left(index: int) -> None:
        left.append((index, scheduler.clock))
        if index == 0:  # fed back while the first item leaves
            for extra in range(fed_back):
                source.on_next(len(items) + extra)

    def due(index: int) -> float:
        return dues[index] * MS

    paced = source.pipe(pace(due, scheduler, granularity=grid_ms * MS))
    if take is not None:
        paced = paced.pipe(ops.take(take))
    paced.subscribe(on_left, on_completed=lambda: ended.append(scheduler.clock))
    for index, (at_ms, _) in enumerate(items):

        def arrive(_: abc.SchedulerBase, __: object = None, index: int = index) -> None:
            source.on_next(index)

        scheduler.schedule_absolute(at_ms * MS, arrive)
    last_ms = items[-1][0]
    scheduler.schedule_absolute(
        max(complete_ms, last_ms) * MS + MS / 2, lambda *_: source.on_completed()
    )
    scheduler.start()

    # the model, in whole ms: the first item's feed-backs arrive when it leaves; at one
    # virtual instant the arrivals (scheduled first) come before the ticker's timer
    def rounded(due_ms: int) -> int:
        return math.ceil(due_ms / grid_ms) * grid_ms if grid_ms else due_ms

    source_end = max(complete_ms, last_ms) + 0.5  # fed back after it: ignored
    expected: list[tuple[int, int]] = []
    queue = [(index, at_ms, due_ms) for index, (at_ms, due_ms) in enumerate(items)]
    previous = 0
    while queue:
        index, at_ms, due_ms = queue.pop(0)
        if not (at_ms <= previous and due_ms <= previous):  # else it leaves with the one before
            previous = max(previous, rounded(due_ms), at_ms)
        expected.append((index, previous))
        if index == 0 and previous < source_end:  # behind what arrived by then
            cut = sum(1 for _, at, _ in queue if at <= previous)
            extra = [(len(items) + k, previous, 0) for k in range(fed_back)]
            queue = queue[:cut] + extra + queue[cut:]
    complete_at = max(source_end, float(expected[-1][1]))
    if take is not None and take <= len(expected):
        expected = expected[:take]
        complete_at = expected[-1][1]  # the consumer has what it asked for
    assert [(i, round(t / MS, 6)) for i, t in left] == [(i, float(t)) for i, t in expected]
    assert [round(t / MS, 6) for t in ended] == [complete_at]
