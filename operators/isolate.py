"""Keep a subscriber's exception from reaching the producer.

A hot stream shared by many subscribers — a session's status, state and events — must
not stop for everyone because one callback raised: Rx would propagate the exception into
whatever emitted the item (here, the connection) and detach every observer on the way.
Behind `isolate`, the raising subscriber alone is detached and the error is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import reactivex
from reactivex import Observable, abc

_T = TypeVar("_T")


def isolate(
    report: Callable[[Exception], None],
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Pass items through; an exception raised downstream goes to `report`, not upstream.

    .. marble::
        :alt: isolate

        -a-b-c-|                  (the subscriber raises on `b`)
        [ isolate(report) ]
        -a-b                      (`report` is told; the source goes on, unsubscribed)
    """

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(item: _T) -> None:
                try:
                    observer.on_next(item)
                except Exception as exc:  # the subscriber's bug, not the stream's
                    report(exc)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator
