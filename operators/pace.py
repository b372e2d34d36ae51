"""Release items at the pace of their own timeline (a recording played back in real time)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

_T = TypeVar("_T")


def pace(
    due: Callable[[_T], float], scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Emit each item `due(item)` seconds after subscription, in arrival order.

    .. marble::
        :alt: pace

        (abc)-----|               (`due`: a=2, b=4, c=6)
        [ pace(due) ]
        --a-b-c---|

    For audio frames `due` is the frame's end time, so frame `n` leaves when a live
    microphone would have finished capturing it. Items already late go at once.
    Time comes from `scheduler`, so tests run in virtual time.
    """

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = scheduler or subscribe_scheduler or TimeoutScheduler.singleton()
            start = clock.to_seconds(clock.now)
            queue: deque[_T] = deque()
            timer = SerialDisposable()
            pending = False
            completed = False

            def release(_: abc.SchedulerBase, __: object = None) -> None:
                nonlocal pending
                pending = False
                now = clock.to_seconds(clock.now) - start
                while queue and due(queue[0]) <= now + 1e-9:
                    observer.on_next(queue.popleft())
                if queue:
                    arm()
                elif completed:
                    observer.on_completed()

            def arm() -> None:
                nonlocal pending
                if pending:
                    return
                pending = True
                wait = max(0.0, start + due(queue[0]) - clock.to_seconds(clock.now))
                timer.disposable = clock.schedule_relative(wait, release)

            def on_next(item: _T) -> None:
                queue.append(item)
                arm()

            def on_completed() -> None:
                nonlocal completed
                completed = True
                if not queue and not pending:
                    observer.on_completed()

            upstream = source.subscribe(
                on_next, observer.on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(upstream, timer)

        return reactivex.create(subscribe)

    return operator
