"""Typed helpers around `reactivex.testing` records (virtual-time tests read them a lot).

Times are virtual seconds; the library types them as int, the scheduler takes floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from reactivex import Observable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing.marbles import MarblesContext, marbles_testing
from reactivex.testing.recorded import Recorded

T = TypeVar("T")


def next_at(time: float, value: T) -> Recorded[T]:
    return Recorded(cast(int, time), OnNext(value))


def completed_at(time: float) -> Recorded[Any]:
    return Recorded(cast(int, time), OnCompleted())


def error_at(time: float, error: Exception) -> Recorded[Any]:
    return Recorded(cast(int, time), OnError(error))


def timed(messages: Sequence[Recorded[T]]) -> list[tuple[float, T]]:
    """(time, value) of every on_next."""
    return [(m.time, m.value.value) for m in messages if isinstance(m.value, OnNext)]


def values(messages: Sequence[Recorded[T]]) -> list[T]:
    return [value for _, value in timed(messages)]


def kinds(messages: Sequence[Recorded[T]]) -> list[tuple[float, str]]:
    """(time, "N" | "C" | "E") of every notification, in order."""
    return [(m.time, getattr(m.value, "kind", "?")) for m in messages]


def completion(messages: Sequence[Recorded[T]]) -> float | None:
    """When the sequence completed, or None."""
    return next((m.time for m in messages if isinstance(m.value, OnCompleted)), None)


def failure(messages: Sequence[Recorded[T]]) -> tuple[float, Exception] | None:
    for m in messages:
        if isinstance(m.value, OnError):
            return m.time, m.value.exception
    return None


class Marbles:
    """`reactivex.testing.marbles_testing`, typed for diagrams without lookups or errors."""

    def __init__(self, context: MarblesContext) -> None:
        self._context = context

    def cold(self, diagram: str) -> Observable[Any]:
        return self._context.cold(diagram, None, None)

    def exp(self, diagram: str) -> list[Recorded[Any]]:
        return self._context.exp(diagram, None, None)

    def start(self, observable: Observable[Any]) -> list[Recorded[Any]]:
        return self._context.start(observable)


@contextmanager
def marbles(timespan: float = 1.0) -> Iterator[Marbles]:
    """One character of a diagram is `timespan` virtual seconds; subscribed at 200."""
    with marbles_testing(timespan) as context:
        yield Marbles(context)
