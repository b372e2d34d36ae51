"""LoopScheduler on a real asyncio loop: the same order, cancellation and disposal as
reactivex's AsyncIOScheduler, which the session used before (each fact checked on both)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from operators.coalesce import coalesce
from pipeline.loop_scheduler import LoopScheduler

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
