"""Coalesce a burst of changes into at most one value per interval, the latest.

A real-time stream changes the outbox several times per frame; a state update per change
would cost more than sending the frame. Unlike `throttle_first` nothing is lost (the
latest value of a burst always comes out) and unlike `debounce` a steady stream is not
held back forever: a value comes out at once after a quiet spell, and otherwise as soon
as `interval` has passed since the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import TimeoutScheduler

from operators.ticker import shared_ticker

T = TypeVar("T")


class Coalescer(Generic[T]):
    """The state of one coalesced stream (one subscription of `coalesce`): `push` values
    in, `emit` gets the latest of each burst.

    Its timer is the clock's shared ticker (`operators.ticker`): with `granularity` > 0
    a flush may come that much late, and the coalescers of many sessions share wake-ups.
    `aligned`: a value held in a burst comes out at the first of the ticker's aligned
    instants (`Ticker.aligned_after`: its origin plus multiples of `interval`) an
    `interval` or more after the last one — once after a quiet spell up to twice
    `interval`, then every `interval`, in the same step as every other aligned coalescer
    and meter of that interval, after the step's other actions
    (`Ticker.call_at(..., deferred=True)`).
    """

    def __init__(
        self,
        interval: float,
        clock: abc.SchedulerBase,
        emit: Callable[[T], None],
        granularity: float = 0.0,
        *,
        aligned: bool = False,
    ) -> None:
        self.interval, self.emit, self.aligned = interval, emit, aligned
        self.ticker = shared_ticker(clock, granularity)
        self.now = self.ticker.now
        self.held: list[T] = []  # the latest value waiting to come out (0 or 1 of them)
        self.last_at = float("-inf")  # when a value last came out
        self._due = float("-inf")  # when the held value is due out
        self._cancel: Callable[[], None] = _nothing

    def flush(self) -> None:
        if self.held:
            # aligned, a flush stands for the instant it was due: a loop's timer fires a
            # little late, and counted from then the next due time would round up to the
            # aligned instant after next — every other instant, not every one
            self.last_at = self._due if self.aligned else self.now()
            self.emit(self.held.pop())

    def push(self, value: T) -> None:
        held = self.held
        if held:  # a flush is due already: it will carry this value
            held[0] = value
            return
        held.append(value)
        # due now after a quiet spell: on the next timer, not inside this call
        due, now = self.last_at + self.interval, self.now()
        if due > now and self.aligned:
            due = self.ticker.aligned_after(due, self.interval)
        self._due = max(due, now)
        self._cancel = self.ticker.call_at(self._due, self.flush, deferred=self.aligned)

    def dispose(self) -> None:
        self._cancel()


def _nothing() -> None:
    pass


def coalesce(
    interval: float, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[T]], Observable[T]]:
    """The latest value of each burst, at most once per `interval` seconds.

    .. marble::
        :alt: coalesce

        -a-b-c-----------d--e-|
        [    coalesce(6)      ]
        -a-----c---------d----(e,|)

    A value that finds the last emission `interval` or more ago comes out at once (on
    the scheduler's next timer: after the current work, not inside the producer's call);
    otherwise the latest value of the burst comes out `interval` after the last emission.
    On completion a held value comes out first.
    """

    def operator(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], sub_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = scheduler or sub_scheduler or TimeoutScheduler.singleton()
            state = Coalescer(interval, clock, observer.on_next)

            def on_completed() -> None:
                state.flush()
                observer.on_completed()

            upstream = source.subscribe(
                state.push, observer.on_error, on_completed, scheduler=sub_scheduler
            )
            return CompositeDisposable(upstream, Disposable(state.dispose))

        return reactivex.create(subscribe)

    return operator
