"""A stream paced for a display: what matters passes at once, the rest at most every `interval`.

A session's state changes several times per audio frame (counts, levels); a UI redrawn on
each change burns CPU to show numbers nobody can read. `display_rate` passes an item at once
when `urgent(previous, item)` (e.g. the phase changed), drops it when `same(previous, item)`
(nothing shown changed), and otherwise keeps only the latest, emitted at most once per
`interval` seconds on the scheduler. What is held is emitted before completion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from operators.clock import seconds_of

_T = TypeVar("_T")


def display_rate(
    interval: float,
    *,
    urgent: Callable[[_T, _T], bool],
    same: Callable[[_T, _T], bool],
    scheduler: Callable[[], abc.SchedulerBase],
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Headline changes at once, ticking changes at most every `interval`, repeats never.

    .. marble::
        :alt: display_rate

        -a-b-c-d-E-f-f-|          (`E`: `urgent` against what is shown; the second `f`:
        [ display_rate(4) ]        `same` as the first)
        -a---c---E---f-|

    `scheduler` is asked when a first item must wait (a session makes its own at `run`).
    Long for a function in the RxPY shape (`operator` → `subscribe` → closures that share
    one subscription's state); each closure is short.
    """

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            timer = SerialDisposable()
            shown: list[_T] = []  # the last item emitted
            held: list[_T] = []  # the latest item waiting for its turn
            emitted_at = float("-inf")

            def now() -> float:
                return seconds_of(scheduler())()

            def emit(item: _T) -> None:
                nonlocal emitted_at
                timer.disposable = None
                held.clear()
                shown[:] = [item]
                emitted_at = now()
                observer.on_next(item)

            def release(*_: object) -> None:
                if held:
                    emit(held[0])

            def on_next(item: _T) -> None:
                if not shown or urgent(shown[0], item):
                    emit(item)
                elif same(shown[0], item):
                    held.clear()
                    timer.disposable = None
                elif held:
                    held[0] = item  # its turn is already scheduled
                elif (wait := emitted_at + interval - now()) <= 0:
                    emit(item)
                else:
                    held.append(item)
                    timer.disposable = scheduler().schedule_relative(wait, release)

            def on_completed() -> None:
                release()
                observer.on_completed()

            inner = source.subscribe(on_next, observer.on_error, on_completed)
            return CompositeDisposable(inner, timer)

        return reactivex.create(subscribe)

    return operator
