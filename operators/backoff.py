"""Reconnection as an operator: resubscribe to a failed observable after a jittered backoff.

The attempt counter and the delay reset only after the source has been *stable* (for a
connection: streaming) for `reset_after` seconds — not when a socket merely opens, which
would keep the backoff from ever growing and the attempt cap from ever firing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from operators.clock import seconds_of

_T = TypeVar("_T")

Jitter = Literal["full", "equal", "none"] | float


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with jitter and limits.

    - `jitter`: "full" draws the delay from [0, d]; "equal" from [d/2, d]; "none" uses d;
      a float f draws from [d(1-f), d(1+f)] (capped at `max_delay`).
    - `max_attempts`: retries per outage before giving up (None: no cap).
    - `max_elapsed`: seconds since the outage began after which no retry is scheduled.
    - `reset_after`: seconds of stability after which the next outage starts afresh.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 10.0
    jitter: Jitter = "full"
    max_attempts: int | None = None
    max_elapsed: float | None = None
    reset_after: float = 10.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("need initial >= 0, max_delay >= 0 and multiplier >= 1")
        if isinstance(self.jitter, float) and not 0 <= self.jitter <= 1:
            raise ValueError("a jitter fraction must lie in [0, 1]")
        if isinstance(self.jitter, str) and self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"unknown jitter mode {self.jitter!r}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay before retry number `attempt` (1-based)."""
        exponent = min(attempt - 1, 64)  # the cap is reached long before; avoid overflow
        return float(min(self.max_delay, self.initial * self.multiplier**exponent))

    def delay(self, attempt: int, rng: random.Random, floor: float = 0.0) -> float:
        """The jittered delay before retry `attempt`, on top of `floor`.

        The floor is added rather than taken as a minimum: clamping every short draw up to
        the floor would send all the clients a busy server turned away back at once.
        """
        ceiling = self.ceiling(attempt)
        if self.jitter == "full":
            value = rng.uniform(0.0, ceiling)
        elif self.jitter == "equal":
            value = ceiling / 2 + rng.uniform(0.0, ceiling / 2)
        elif self.jitter == "none":
            value = ceiling
        else:
            spread = ceiling * float(self.jitter)
            value = min(self.max_delay, rng.uniform(ceiling - spread, ceiling + spread))
        return floor + value


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about a failure: give up, or retry no sooner than `floor` seconds.

    `immediate` retries at once, outside the backoff (e.g. after a token refresh).
    """

    retry: bool
    floor: float = 0.0
    immediate: bool = False


RETRY = Decision(retry=True)
FATAL = Decision(retry=False)


@dataclass(frozen=True, slots=True)
class Retry:
    """Announced before each scheduled resubscription: "attempt 3 in 2.4 s, because ..."."""

    attempt: int
    delay: float
    cause: Exception


class GaveUp(Exception):
    """The policy's limits were reached; `cause` is the last failure."""

    def __init__(self, cause: Exception, attempts: int, elapsed: float) -> None:
        super().__init__(f"gave up after {attempts} attempts in {elapsed:.1f} s: {cause}")
        self.cause = cause
        self.attempts = attempts
        self.elapsed = elapsed


@dataclass
class _Outage:
    """The failed attempts of one outage and when it began: what the limits are counted on."""

    policy: BackoffPolicy
    rng: random.Random
    attempts: int = 0
    began: float | None = None

    def reset(self) -> None:
        self.attempts, self.began = 0, None

    def next(self, error: Exception, floor: float, now: float) -> Retry | GaveUp:
        """The retry after one more failure, or `GaveUp` when it would pass a limit."""
        self.attempts += 1
        self.began = now if self.began is None else self.began
        elapsed = now - self.began
        policy = self.policy
        if policy.max_attempts is not None and self.attempts > policy.max_attempts:
            return GaveUp(error, self.attempts - 1, elapsed)
        delay = policy.delay(self.attempts, self.rng, floor)
        if policy.max_elapsed is not None and elapsed + delay > policy.max_elapsed:
            return GaveUp(error, self.attempts - 1, elapsed)
        return Retry(attempt=self.attempts, delay=delay, cause=error)


def retry_with_backoff(
    policy: BackoffPolicy,
    classify: Callable[[Exception], Decision] = lambda _: RETRY,
    *,
    is_stable: Callable[[_T], bool] = lambda _: True,
    scheduler: abc.SchedulerBase | None = None,
    rng: random.Random | None = None,
    skip_delay: Observable[Any] | None = None,
) -> Callable[[Observable[_T]], Observable[_T | Retry]]:
    """Resubscribe to the source when it errors and `classify` says retry.

    .. marble::
        :alt: retry_with_backoff

        -a-#                      (each subscription: `a`, then a transient error)
        [ retry_with_backoff(BackoffPolicy(initial=2, jitter="none", max_attempts=2)) ]
        -a-r--a-r----a-#          (`r`: a `Retry`; `#`: `GaveUp`)

    Emits the source's items and, before each resubscription, a `Retry` announcement.
    Errors with the original exception when it is fatal, or with `GaveUp` at the limits.
    An item for which `is_stable` holds starts the `reset_after` clock; if the source is
    still alive when it runs out, the next failure counts from attempt 1 again.
    An item of `skip_delay` while a delay is pending resubscribes at once ("retry now");
    the attempt counts as usual. At any other time it is ignored.
    Long for a function in the RxPY shape (`operator` → `subscribe` → closures that share
    one subscription's state); each closure is short.
    """
    draw = rng or random.Random()

    def operator(source: Observable[_T]) -> Observable[_T | Retry]:
        def subscribe(
            observer: abc.ObserverBase[_T | Retry],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            clock = scheduler or subscribe_scheduler or TimeoutScheduler.singleton()
            current = SerialDisposable()
            timer = SerialDisposable()
            outage = _Outage(policy, draw)
            stability_armed = False
            waiting = False  # a resubscription is scheduled after a delay

            def on_next(item: _T) -> None:
                nonlocal stability_armed
                if not stability_armed and is_stable(item):
                    stability_armed = True
                    timer.disposable = clock.schedule_relative(
                        policy.reset_after, lambda *_: outage.reset()
                    )
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                nonlocal stability_armed, waiting
                stability_armed = False
                timer.disposable = None  # a failure before `reset_after` cancels the reset
                decision = classify(error)
                if not decision.retry:
                    observer.on_error(error)
                    return
                if decision.immediate:
                    observer.on_next(Retry(attempt=outage.attempts, delay=0.0, cause=error))
                    timer.disposable = clock.schedule(resubscribe)
                    return
                step = outage.next(error, decision.floor, seconds_of(clock)())
                if isinstance(step, GaveUp):
                    observer.on_error(step)
                    return
                observer.on_next(step)
                waiting = True
                timer.disposable = clock.schedule_relative(step.delay, resubscribe)

            def resubscribe(_: abc.SchedulerBase, __: object = None) -> None:
                nonlocal waiting
                waiting = False
                current.disposable = source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=subscribe_scheduler
                )

            def skip(_: object) -> None:
                if waiting:
                    timer.disposable = clock.schedule(resubscribe)

            skipping = skip_delay.subscribe(skip) if skip_delay is not None else None
            resubscribe(clock)
            return CompositeDisposable(current, timer, *([skipping] if skipping else []))

        return reactivex.create(subscribe)

    return operator
