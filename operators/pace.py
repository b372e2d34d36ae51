"""Release items at the pace of their own timeline (a recording played back in real time)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar, overload

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import TimeoutScheduler

from operators.clock import seconds_of
from operators.ticker import shared_ticker

_T = TypeVar("_T")
_R = TypeVar("_R")
_END = object()


def pace(
    due: Callable[[_T], float],
    scheduler: abc.SchedulerBase | None = None,
    *,
    granularity: float = 0.0,
    stamp: Callable[[_T, float], _T] | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Emit each item `due(item)` seconds after subscription, in arrival order.

    .. marble::
        :alt: pace

        (abc)-----|               (`due`: a=2, b=4, c=6)
        [ pace(due) ]
        --a-b-c---|

    For audio frames `due` is the frame's end time, so frame `n` leaves when a live
    microphone would have finished capturing it. Items already late go at once.
    Time comes from `scheduler`, so tests run in virtual time. Every paced stream on a
    scheduler's clock shares one timer (`operators.ticker`); with `granularity` > 0 items
    leave at most that late, so streams started at different moments share wake-ups.
    With `stamp`, what leaves is `stamp(item, t)`, `t` the time it left (items released
    together share it): a frame's capture time, without an operator of its own per frame.
    """

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = scheduler or subscribe_scheduler or TimeoutScheduler.singleton()
            on_next, end, dispose = _pacing(observer, clock, due, granularity, stamp)
            upstream = source.subscribe(
                on_next, observer.on_error, end, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(upstream, Disposable(dispose))

        return reactivex.create(subscribe)

    return operator


@overload
def paced(
    items: Iterable[_T],
    due: Callable[[_T], float],
    scheduler: abc.SchedulerBase | None = None,
    *,
    granularity: float = 0.0,
) -> Observable[_T]: ...


@overload
def paced(
    items: Iterable[_T],
    due: Callable[[_T], float],
    scheduler: abc.SchedulerBase | None = None,
    *,
    granularity: float = 0.0,
    stamp: Callable[[_T, float], _R],
) -> Observable[_R]: ...


def paced(
    items: Iterable[_T],
    due: Callable[[_T], float],
    scheduler: abc.SchedulerBase | None = None,
    *,
    granularity: float = 0.0,
    stamp: Callable[[_T, float], _R] | None = None,
) -> Observable[_T] | Observable[_R]:
    """`reactivex.from_iterable(items).pipe(pace(due, ...))`, taking each item when due.

    .. marble::
        :alt: paced

        [ paced(abc, due) ]       (`due`: a=2, b=4, c=6)
        --a-b-c|

    The item after the one leaving is taken from `items` as it leaves, and nothing else
    is held: a recording's frames are cut one at a time, so an hour of audio played in
    real time keeps the frame leaving alive, not 180,000 for every collection to walk.
    Each subscription iterates `items` afresh; an error raised by the iteration ends the
    stream, after the items taken before it. Here `stamp` may make something else of an
    item as it leaves: a recording's frame from its number (`pipeline.sources`), built
    once, when it is sent.
    """

    def subscribe(
        observer: abc.ObserverBase[Any], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        clock = scheduler or subscribe_scheduler or TimeoutScheduler.singleton()
        taken: Iterator[_T] = iter(items)

        def take() -> None:
            try:
                item = next(taken, _END)
            except Exception as exc:  # the items before it leave first, then the error
                end(partial(observer.on_error, exc))
                return
            if item is _END:
                end()
            else:
                on_next(item)  # type: ignore[arg-type]

        on_next, end, dispose = _pacing(observer, clock, due, granularity, stamp, take)
        take()
        return Disposable(dispose)

    return reactivex.create(subscribe)


def _pacing(
    observer: abc.ObserverBase[Any],
    clock: abc.SchedulerBase,
    due: Callable[[_T], float],
    granularity: float,
    stamp: Callable[[_T, float], Any] | None,
    take: Callable[[], None] | None = None,
) -> tuple[Callable[[_T], None], Callable[..., None], Callable[[], None]]:
    """One subscription's queue and releases: its `on_next`, `end`, `dispose`.

    `end(finish)` runs `finish` (by default the completion) after the last item queued
    has left. With `take`, the queue is refilled by calling it as its last item leaves
    (`paced`).
    """
    ticker = shared_ticker(clock, granularity)
    start = seconds_of(clock)()
    # (when, item): the due time on the clock, computed once, compared with the ticker's
    # time as is: `tick_at - start` on an epoch clock (a session's reads `time.time()`)
    # is off by a float step, and the item fired for not yet due
    queue: deque[tuple[float, _T]] = deque()
    cancel: list[Callable[[], None]] = []
    pending = False
    finished: list[Callable[[], None]] = []  # the completion, once the source has ended

    def release() -> None:
        nonlocal pending
        cancel.clear()
        now = ticker.tick_at  # called by the ticker: its time
        # `pending` holds while items leave: an item or the completion the consumer feeds
        # back meanwhile is this release's to arm or end (armed then, for the head that
        # was about to leave, it would hold the completion a step back)
        while queue and queue[0][0] <= now + 1e-9:
            item = queue.popleft()[1]
            if take is not None and not queue:
                take()  # the next one, before this one leaves: a disposal stops with it
            observer.on_next(item if stamp is None else stamp(item, now))
        if queue:  # `arm`, inline
            cancel.append(ticker.call_at(queue[0][0], release))
            return
        pending = False
        if finished:
            finished[0]()

    def arm() -> None:
        nonlocal pending
        if pending:
            return
        pending = True
        cancel.append(ticker.call_at(queue[0][0], release))

    def on_next(item: _T) -> None:
        queue.append((start + due(item), item))
        arm()

    def end(finish: Callable[[], None] = observer.on_completed) -> None:
        finished.append(finish)
        if not queue and not pending:
            finish()

    def dispose() -> None:
        # disposed while items leave (the consumer took enough): `release` stops with
        # them, rather than re-arm for each item left behind
        queue.clear()
        for undo in cancel:
            undo()
        cancel.clear()

    return on_next, end, dispose
