"""Coalesce a burst of changes into at most one value per interval, the latest.

A real-time stream changes the outbox several times per frame; a state update per change
would cost more than sending the frame. Unlike `throttle_first` nothing is lost (the
latest value of a burst always comes out) and unlike `debounce` a steady stream is not
held back forever: a value comes out at once after a quiet spell, and otherwise as soon
as `interval` has passed since the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

T = TypeVar("T")


def coalesce(
    interval: float, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[T]], Observable[T]]:
    """The latest value of each burst, at most once per `interval` seconds.

    .. marble::
        :alt: coalesce

        -a-b-c-----------d--e-|
        [    coalesce(6)      ]
        -a-----c---------d----(e,|)

    A value that finds the last emission `interval` or more ago is scheduled at once
    (`scheduler.schedule`: after the current work, not inside the producer's call);
    otherwise the latest value of the burst comes out `interval` after the last emission.
    On completion a held value comes out first.
    """

    def operator(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], sub_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = scheduler or sub_scheduler or TimeoutScheduler.singleton()
            timer = SerialDisposable()
            held: list[T] = []  # the latest value waiting to come out (0 or 1 of them)
            last_at = float("-inf")  # when a value last came out

            def now() -> float:
                return clock.to_seconds(clock.now)

            def flush(_: abc.SchedulerBase | None = None, __: object = None) -> None:
                nonlocal last_at
                if held:
                    last_at = now()
                    observer.on_next(held.pop())

            def on_next(value: T) -> None:
                pending = bool(held)
                held[:] = [value]
                if pending:
                    return
                wait = last_at + interval - now()
                if wait > 0:
                    timer.disposable = clock.schedule_relative(wait, flush)
                else:
                    timer.disposable = clock.schedule(flush)

            def on_completed() -> None:
                flush()
                observer.on_completed()

            upstream = source.subscribe(
                on_next, observer.on_error, on_completed, scheduler=sub_scheduler
            )
            return CompositeDisposable(upstream, timer)

        return reactivex.create(subscribe)

    return operator
