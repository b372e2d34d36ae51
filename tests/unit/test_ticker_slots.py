"""The ticker's slots against a plain model, in virtual time: whatever the order of
registrations and cancels, from outside or from inside a firing, every action that is not
cancelled runs exactly once, at its due time rounded up to the grid (or at once if
overdue), never inside `call_at`, and actions that leave together leave in call order."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex.scheduler import TimeoutScheduler
from reactivex.testing import TestScheduler

from operators.ticker import Ticker

MS = 0.001
CANCELLED_DUE_S = 0.2


@dataclass
class Plan:
    """One action: registered at `at_ms` (virtual), due at `due_ms`; when it runs it may
    register a child (`child_ms` after its own due time, possibly in the past) and cancel
    another action (by index); `cancel_ms` cancels it from outside (at a half step, so
    never at the same instant as a firing)."""

    at_ms: int
    due_ms: int
    child_ms: int | None = None
    cancels: int | None = None
    cancel_ms: int | None = None


@dataclass
class Run:
    ran: list[tuple[int, float]] = field(default_factory=list)  # (action id, clock)
    expected_at: dict[int, float] = field(default_factory=dict)
    registered_order: list[int] = field(default_factory=list)
    overdue: set[int] = field(default_factory=set)  # clamped to the clock when registered
    cancelled: set[int] = field(default_factory=set)
    cancels: dict[int, Callable[[], None]] = field(default_factory=dict)
    inside_call: bool = False


plans = st.lists(
    st.builds(
        Plan,
        at_ms=st.integers(0, 30),
        due_ms=st.integers(-5, 40),
        child_ms=st.none() | st.integers(-10, 10),
        cancels=st.none() | st.integers(0, 11),
        cancel_ms=st.none() | st.integers(0, 40),
    ),
    min_size=1,
    max_size=12,
)


def expected_ms(due_ms: int, now_ms: int, grid_ms: int) -> int:
    rounded = due_ms if not grid_ms else math.ceil(due_ms / grid_ms) * grid_ms
    return max(rounded, now_ms)


@settings(max_examples=300, deadline=None)
@given(plans, st.sampled_from([0, 1, 5]))
def test_every_live_action_runs_once_on_time_in_call_order(plan: list[Plan], grid_ms: int) -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler, granularity=grid_ms * MS)
    run = Run()
    next_id = [0]

    def register(due_ms: int, now_ms: int, child: Plan | None, own: Plan | None) -> None:
        ident = next_id[0]
        next_id[0] += 1

        def action() -> None:
            assert not run.inside_call, "an action ran inside call_at"
            run.ran.append((ident, scheduler.clock))
            if own is not None and own.cancels is not None and own.cancels in run.cancels:
                if own.cancels not in {i for i, _ in run.ran}:
                    run.cancelled.add(own.cancels)
                run.cancels[own.cancels]()
            if child is not None and own is not None and own.child_ms is not None:
                fire_ms = round(scheduler.clock / MS)
                register(fire_ms + own.child_ms, fire_ms, None, None)

        run.inside_call = True
        cancel = ticker.call_at(due_ms * MS, action)
        run.inside_call = False
        run.cancels[ident] = cancel
        run.expected_at[ident] = expected_ms(due_ms, now_ms, grid_ms) * MS
        if expected_ms(due_ms, now_ms, grid_ms) == now_ms:
            run.overdue.add(ident)  # keyed by the clock's reading: float noise may reorder
        run.registered_order.append(ident)

    for step in plan:

        def add(_: abc.SchedulerBase, __: object = None, step: Plan = step) -> None:
            register(step.due_ms, step.at_ms, step, step)

        scheduler.schedule_absolute(step.at_ms * MS, add)
    for index, step in enumerate(plan):
        if step.cancel_ms is None:
            continue

        def cancel_outside(_: abc.SchedulerBase, __: object = None, index: int = index) -> None:
            if index in run.cancels:
                if index not in {i for i, _ in run.ran}:
                    run.cancelled.add(index)
                run.cancels[index]()

        scheduler.schedule_absolute((step.cancel_ms + 0.5) * MS, cancel_outside)
    scheduler.start()

    ids = [ident for ident, _ in run.ran]
    assert len(ids) == len(set(ids)), "an action ran twice"
    assert set(ids) == set(run.registered_order) - run.cancelled
    for ident, at in run.ran:
        assert abs(at - run.expected_at[ident]) < 1e-9, (ident, at, run.expected_at[ident])
    # leaving together: in the order they were registered
    timely = [r for r in run.ran if r[0] not in run.overdue]
    order = sorted(timely, key=lambda r: (round(r[1] / MS), run.registered_order.index(r[0])))
    assert timely == order


def test_a_cancel_inside_the_firing_slot_stops_a_later_entry_of_that_slot() -> None:
    scheduler = TestScheduler()
    ticker = Ticker(scheduler, granularity=1.0)
    ran: list[str] = []
    cancels: dict[str, Callable[[], None]] = {}

    def first() -> None:
        ran.append("first")
        cancels["second"]()

    cancels["first"] = ticker.call_at(0.5, first)
    cancels["second"] = ticker.call_at(0.7, lambda: ran.append("second"))
    ticker.call_at(0.9, lambda: ran.append("third"))
    scheduler.start()
    assert ran == ["first", "third"]


def test_actions_registered_from_threads_while_it_fires_each_run_once() -> None:
    """On a scheduler of threads (TimeoutScheduler) registrations, cancels and firings
    overlap: every action not cancelled runs exactly once, each cancelled one never."""
    ticker = Ticker(TimeoutScheduler(), granularity=0.002)
    lock = threading.Lock()
    ran: list[int] = []
    threads_n, per_thread = 4, 60
    expected = threads_n * per_thread - threads_n * (per_thread // 3)
    done = threading.Event()

    def make(ident: int) -> Callable[[], None]:
        def action() -> None:
            with lock:
                ran.append(ident)
                if len(ran) == expected:
                    done.set()

        return action

    def worker(base: int) -> None:
        for k in range(per_thread):
            ident = base * per_thread + k
            if k % 3 == 0:  # cancelled long before it is due (a thread may lag for ms)
                ticker.call_at(ticker.now() + CANCELLED_DUE_S, make(ident))()
            else:
                ticker.call_at(ticker.now() + (k % 5) * 0.001, make(ident))

    threads = [threading.Thread(target=worker, args=(b,)) for b in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done.wait(10.0)
    # the ones due latest have had their timers: nothing further may run
    settle = threading.Event()
    ticker.call_at(ticker.now() + CANCELLED_DUE_S + 0.01, settle.set)
    assert settle.wait(10.0)
    with lock:
        assert sorted(ran) == sorted(
            b * per_thread + k for b in range(threads_n) for k in range(per_thread) if k % 3
        )
