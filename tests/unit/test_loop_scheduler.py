"""LoopScheduler on a real asyncio loop, beside reactivex's AsyncIOScheduler (which the
session used before), fact for fact: order, cancellation and disposal; an action that
disposes its own timer or fails; the time operators (timer, interval, delay, debounce,
retry with backoff) giving the same items in the same order; no reference cycles."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from operators.backoff import BackoffPolicy, Retry, retry_with_backoff
from operators.coalesce import coalesce
from pipeline.loop_scheduler import LoopScheduler
from tests.collector import collector_paused

KINDS = [LoopScheduler, AsyncIOScheduler]


def settle(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("kind", KINDS)
def test_actions_run_in_due_order_and_a_disposed_one_never_runs(
    kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop
) -> None:
    scheduler = kind(loop)
    ran: list[str] = []

    def note(name: str) -> abc.ScheduledAction[Any]:
        def action(_: abc.SchedulerBase, state: Any = None) -> None:
            ran.append(f"{name}:{state}")

        return action

    scheduler.schedule_relative(0.02, note("later"), 2)
    scheduler.schedule_relative(timedelta(seconds=0.01), note("sooner"), 1)
    scheduler.schedule(note("now"), 0)
    scheduler.schedule_relative(-1.0, note("overdue"), 0)  # at once, after `now`
    scheduler.schedule_relative(0.015, note("cancelled")).dispose()
    scheduler.schedule(note("cancelled too")).dispose()
    scheduler.schedule_absolute(scheduler.now + timedelta(seconds=0.03), note("absolute"), 3)
    settle(loop, 0.06)
    assert ran == ["now:0", "overdue:0", "sooner:1", "later:2", "absolute:3"]


@pytest.mark.parametrize("kind", KINDS)
def test_what_an_action_returns_is_disposed_with_the_timer(
    kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop
) -> None:
    scheduler = kind(loop)
    disposed: list[str] = []

    def returning(name: str) -> abc.ScheduledAction[Any]:
        def action(_: abc.SchedulerBase, __: Any = None) -> abc.DisposableBase:
            return Disposable(lambda: disposed.append(name))

        return action

    kept = scheduler.schedule(returning("kept"))
    settle(loop, 0.01)
    assert disposed == []
    kept.dispose()
    assert disposed == ["kept"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_periodic_action_runs_once_per_period_until_disposed(
    kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop
) -> None:
    scheduler = kind(loop)
    ticks: list[int] = []
    stopped = loop.create_future()

    def tick(count: Any) -> int:
        ticks.append(count)
        if count == 2:
            periodic.dispose()
            loop.call_later(0.05, stopped.set_result, None)  # five periods more
        return int(count) + 1

    periodic = scheduler.schedule_periodic(0.01, tick, 0)
    loop.run_until_complete(stopped)
    assert ticks == [0, 1, 2]


@pytest.mark.parametrize("kind", KINDS)
def test_coalesce_runs_on_it(kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop) -> None:
    scheduler = kind(loop)
    out: list[int] = []
    reactivex.from_iterable([1, 2, 3]).pipe(coalesce(0.05, scheduler), ops.to_list()).subscribe(
        out.extend, scheduler=scheduler
    )
    settle(loop, 0.01)
    assert out == [3]  # a burst: its latest, flushed at the end


def collect(
    loop: asyncio.AbstractEventLoop, source: Observable[Any], scheduler: abc.SchedulerBase
) -> list[Any]:
    """Every notification of `source`, until it ends (at most 5 s)."""
    out: list[Any] = []
    ended = loop.create_future()

    def end(kind: str) -> Callable[..., None]:
        def finish(*args: Any) -> None:
            out.append((kind, *(type(a).__name__ for a in args)))
            if not ended.done():
                ended.set_result(None)

        return finish

    source.subscribe(out.append, end("error"), end("completed"), scheduler=scheduler)
    loop.run_until_complete(asyncio.wait_for(ended, 5.0))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_an_action_that_disposes_its_own_timer_has_what_it_returns_disposed(
    kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop
) -> None:
    scheduler = kind(loop)
    events: list[str] = []
    timer = SerialDisposable()

    def action(_: abc.SchedulerBase, __: Any = None) -> abc.DisposableBase:
        events.append("ran")
        timer.dispose()  # the action cancels itself before it returns
        return Disposable(lambda: events.append("returned disposed"))

    for delay in (None, 0.005, timedelta(milliseconds=5), -1, 0):
        events.clear()
        timer = SerialDisposable()
        if delay is None:
            timer.disposable = scheduler.schedule(action)
        else:
            timer.disposable = scheduler.schedule_relative(delay, action)
        loop.run_until_complete(asyncio.sleep(0.02))
        assert events == ["ran", "returned disposed"], delay


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_action_reaches_the_loop_and_later_timers_still_run(
    kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop
) -> None:
    scheduler = kind(loop)
    failures: list[str] = []
    loop.set_exception_handler(lambda _, context: failures.append(str(context["exception"])))
    ran: list[str] = []

    def broken(_: abc.SchedulerBase, __: Any = None) -> None:
        raise RuntimeError("action failed")

    scheduler.schedule_relative(0.001, broken)
    scheduler.schedule_relative(0.003, lambda *_: ran.append("after"))
    loop.run_until_complete(asyncio.sleep(0.02))
    assert failures == ["action failed"]
    assert ran == ["after"]


def scenarios() -> dict[str, Callable[[abc.SchedulerBase], Observable[Any]]]:
    def flaky() -> Observable[int]:
        calls = [0]

        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
            calls[0] += 1
            observer.on_next(calls[0])
            if calls[0] < 3:
                observer.on_error(OSError("refused"))
            else:
                observer.on_completed()
            return Disposable()

        return reactivex.create(subscribe)

    policy = BackoffPolicy(initial=0.002, jitter="none", max_attempts=5, reset_after=1)
    return {
        "timer": lambda s: reactivex.timer(0.002, scheduler=s),
        "timer at a date": lambda s: reactivex.timer(s.now + timedelta(milliseconds=2), None, s),
        "interval": lambda s: reactivex.interval(0.002, s).pipe(ops.take(4)),
        "periodic timer": lambda s: reactivex.timer(0.001, 0.002, s).pipe(ops.take(3)),
        "delay": lambda s: reactivex.from_iterable([1, 2, 3]).pipe(ops.delay(0.003, s)),
        "debounce": lambda s: reactivex.from_iterable([1, 2, 3]).pipe(ops.debounce(0.003, s)),
        "retry with backoff": lambda s: flaky().pipe(
            retry_with_backoff(policy, scheduler=s),
            ops.map(lambda i: type(i).__name__ if isinstance(i, Retry) else i),
        ),
        "negative delay": lambda s: reactivex.from_iterable([1, 2]).pipe(
            ops.delay(timedelta(seconds=-1), s)
        ),
    }


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_time_operators_give_the_same_items_on_both(
    name: str, loop: asyncio.AbstractEventLoop
) -> None:
    results = [collect(loop, scenarios()[name](kind(loop)), kind(loop)) for kind in KINDS]
    assert results[0] == results[1]
    assert results[0][-1][0] in ("completed", "error")


@pytest.mark.parametrize("kind", KINDS)
def test_a_timer_that_ran_frees_its_state_without_the_garbage_collector(
    kind: type[AsyncIOScheduler], loop: asyncio.AbstractEventLoop
) -> None:
    """A timer and its loop handle must not hold each other: the session arms several a
    second per stream, and each cycle would wait for (and feed) the cyclic collector."""

    class State:
        pass

    scheduler = kind(loop)
    state = State()
    alive = weakref.ref(state)
    with collector_paused():
        timers = [scheduler.schedule_relative(0.001, lambda *_: None, state)]
        timers.append(scheduler.schedule(lambda *_: None, state))
        del state
        loop.run_until_complete(asyncio.sleep(0.01))
        timers.clear()
        assert alive() is None
