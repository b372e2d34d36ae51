"""Typed helpers around `reactivex.testing` records (virtual-time tests read them a lot).

Times are virtual seconds; the library types them as int, the scheduler takes floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from reactivex.notification import OnCompleted, OnError, OnNext
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
