"""retry_with_backoff in virtual time: delays, caps, jitter bounds, limits, reset, fatality."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable

from operators.backoff import FATAL, BackoffPolicy, Decision, GaveUp, Retry, retry_with_backoff
from pipeline.errors import ConnectionLost, ServerBusy, Unauthorized, decide
from tests.unit.vtime import next_at

on_next, on_error = ReactiveTest.on_next, ReactiveTest.on_error
T0 = 1.0  # subscription time (TestScheduler.start treats 0 as "use the default")


def lost() -> ConnectionLost:
    return ConnectionLost("connection lost")


def run(
    source: ColdObservable[Any],
    policy: BackoffPolicy,
    *,
    classify: Callable[[Exception], Decision] = decide,
    scheduler: TestScheduler,
    until: float = 200.0,
    skip_delay: Observable[Any] | None = None,
) -> list[Any]:
    def create() -> Observable[Any]:
        return source.pipe(
            retry_with_backoff(
                policy,
                classify,
                is_stable=lambda item: item == "streaming",
                scheduler=scheduler,
                rng=random.Random(7),
                skip_delay=skip_delay,
            )
        )

    observer = scheduler.start(create, created=0.5, subscribed=T0, disposed=T0 + until)
    return list(observer.messages)


def starts(source: ColdObservable[Any]) -> list[float]:
    """When each (re)subscription happened, relative to the first."""
    return [sub.subscribe - T0 for sub in source.subscriptions]


def retries(messages: list[Any]) -> list[tuple[float, Retry]]:
    return [
        (m.time - T0, m.value.value)
        for m in messages
        if m.value.kind == "N" and isinstance(m.value.value, Retry)
    ]


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(0, lost()))
    policy = BackoffPolicy(initial=1.0, multiplier=2.0, max_delay=10.0, jitter="none")

    announced = retries(run(source, policy, scheduler=scheduler, until=60.0))

    assert [r.delay for _, r in announced[:7]] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert [r.attempt for _, r in announced[:4]] == [1, 2, 3, 4]
    # each resubscription happens exactly when its delay has run out
    assert starts(source)[:6] == [0.0, 1.0, 3.0, 7.0, 15.0, 25.0]


def test_every_retry_is_announced_with_its_cause() -> None:
    scheduler = TestScheduler()
    cause = lost()
    source = scheduler.create_cold_observable(on_error(2, cause))
    announced = retries(run(source, BackoffPolicy(jitter="none"), scheduler=scheduler, until=3.0))
    assert announced[0] == (2.0, Retry(attempt=1, delay=1.0, cause=cause))


def test_gives_up_after_max_attempts() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(0, lost()))
    policy = BackoffPolicy(initial=1.0, jitter="none", max_attempts=3)

    messages = run(source, policy, scheduler=scheduler)

    assert len(source.subscriptions) == 4  # the first try and three retries
    error = messages[-1].value
    assert error.kind == "E"
    assert isinstance(error.exception, GaveUp)
    assert error.exception.attempts == 3
    assert isinstance(error.exception.cause, ConnectionLost)


def test_gives_up_when_the_outage_outlasts_max_elapsed() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(0, lost()))
    policy = BackoffPolicy(initial=1.0, jitter="none", max_elapsed=10.0)

    messages = run(source, policy, scheduler=scheduler)

    # retries at 1, 3, 7; the next (8 s more) would end past 10 s
    assert starts(source) == [0.0, 1.0, 3.0, 7.0]
    assert isinstance(messages[-1].value.exception, GaveUp)
    assert messages[-1].time - T0 == 7.0


def test_fatal_errors_are_not_retried() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Unauthorized()))

    messages = run(source, BackoffPolicy(), scheduler=scheduler)

    assert len(source.subscriptions) == 1
    assert retries(messages) == []
    assert isinstance(messages[-1].value.exception, Unauthorized)


def test_a_refreshed_token_earns_one_immediate_retry() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Unauthorized(refreshed=True)))
    messages = run(source, BackoffPolicy(max_attempts=0), scheduler=scheduler, until=1.5)
    assert starts(source)[:2] == [0.0, 1.0]
    assert retries(messages)[0][1].delay == 0.0


def test_busy_server_retries_never_sooner_than_the_floor() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(0, ServerBusy("at capacity")))
    policy = BackoffPolicy(initial=0.1, max_delay=1.0, jitter="full")

    announced = retries(run(source, policy, scheduler=scheduler, until=100.0))

    delays = [r.delay for _, r in announced]
    assert delays and all(d >= 5.0 for d in delays)
    assert len(set(delays)) == len(delays)  # still jittered: turned-away clients spread out


def test_attempts_reset_only_after_streaming_for_reset_after() -> None:
    scheduler = TestScheduler()
    # streams for 3 s then fails: shorter than reset_after, so the backoff keeps growing
    source = scheduler.create_cold_observable(on_next(0, "streaming"), on_error(3, lost()))
    policy = BackoffPolicy(initial=1.0, jitter="none", reset_after=5.0)

    announced = retries(run(source, policy, scheduler=scheduler, until=40.0))

    assert [r.attempt for _, r in announced[:4]] == [1, 2, 3, 4]
    assert [r.delay for _, r in announced[:4]] == [1.0, 2.0, 4.0, 8.0]


def test_a_stable_connection_starts_the_next_outage_afresh() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(0, "streaming"), on_error(6, lost()))
    policy = BackoffPolicy(initial=1.0, jitter="none", reset_after=5.0)

    announced = retries(run(source, policy, scheduler=scheduler, until=40.0))

    assert [r.attempt for _, r in announced[:3]] == [1, 1, 1]


def test_a_socket_that_opens_but_never_streams_does_not_reset() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(0, "connected"), on_error(30, lost()))
    policy = BackoffPolicy(initial=1.0, jitter="none", reset_after=5.0, max_attempts=2)

    messages = run(source, policy, scheduler=scheduler, until=200.0)

    assert [r.attempt for _, r in retries(messages)] == [1, 2]
    assert isinstance(messages[-1].value.exception, GaveUp)


def test_completion_passes_through() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, "streaming"), ReactiveTest.on_completed(2))
    messages = run(source, BackoffPolicy(), scheduler=scheduler)
    assert [m.value.kind for m in messages] == ["N", "C"]


@given(
    attempt=st.integers(min_value=1, max_value=80),
    seed=st.integers(min_value=0, max_value=2**32),
    initial=st.floats(min_value=0.01, max_value=5.0),
)
def test_jitter_stays_within_its_bounds(attempt: int, seed: int, initial: float) -> None:
    rng = random.Random(seed)
    for jitter, low, high in (("full", 0.0, 1.0), ("equal", 0.5, 1.0), ("none", 1.0, 1.0)):
        policy = BackoffPolicy(initial=initial, max_delay=30.0, jitter=jitter)  # type: ignore[arg-type]
        ceiling = policy.ceiling(attempt)
        delay = policy.delay(attempt, rng)
        assert ceiling * low - 1e-9 <= delay <= ceiling * high + 1e-9
    fraction = BackoffPolicy(initial=initial, max_delay=30.0, jitter=0.2)
    delay = fraction.delay(attempt, rng)
    assert fraction.ceiling(attempt) * 0.8 - 1e-9 <= delay <= 30.0


def test_full_jitter_spreads_delays() -> None:
    policy = BackoffPolicy(initial=1.0, max_delay=8.0, jitter="full")
    rng = random.Random(3)
    delays = [policy.delay(4, rng) for _ in range(2000)]
    assert min(delays) < 0.5 and max(delays) > 7.5
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="multiplier"):
        BackoffPolicy(multiplier=0.5)
    with pytest.raises(ValueError, match="jitter"):
        BackoffPolicy(jitter="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fraction"):
        BackoffPolicy(jitter=1.5)


def test_classification_is_fatal_for_unauthorized_and_retry_for_transients() -> None:
    assert decide(Unauthorized()) == FATAL
    assert decide(lost()).retry
    assert decide(ServerBusy("busy"), busy_floor=7.0).floor == 7.0
    assert decide(ValueError("a bug")) == FATAL


def test_skipping_a_pending_delay_resubscribes_at_once_and_counts_the_attempt() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, lost()))  # each attempt fails in 1 s
    policy = BackoffPolicy(initial=10.0, multiplier=2.0, max_delay=100.0, jitter="none")
    # "retry now" pressed 1 s into the first delay (10 s) and 4 s into the second (20 s);
    # the press at 0.5 s comes while the first attempt is in flight: there is no delay yet
    presses = scheduler.create_hot_observable(
        next_at(T0 + 0.5, "early"), next_at(T0 + 2.0, "now"), next_at(T0 + 7.0, "now")
    )

    announced = retries(run(source, policy, scheduler=scheduler, until=60.0, skip_delay=presses))

    assert starts(source)[:4] == [0.0, 2.0, 7.0, 48.0]
    assert [(r.attempt, r.delay) for _, r in announced[:3]] == [(1, 10.0), (2, 20.0), (3, 40.0)]


def test_skipping_with_no_pending_delay_changes_nothing() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, "streaming"))
    presses = scheduler.create_hot_observable(next_at(T0 + 3.0, "now"))

    messages = run(source, BackoffPolicy(), scheduler=scheduler, skip_delay=presses)

    assert len(source.subscriptions) == 1 and retries(messages) == []
