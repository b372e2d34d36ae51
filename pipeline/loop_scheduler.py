"""The session's scheduler: reactivex's `AsyncIOScheduler` with timers that cost less.

reactivex wraps each scheduled action in a single-assignment, a composite and a plain
disposable, each with its own lock, and invokes it through a fourth; a session arms a
few timers a second per stream (the pacing clock, the coalesced counts, the level
windows), and those objects were a visible share of a real-time session's CPU. Here a
timer is the loop's handle and one small object that cancels it and, as reactivex does,
disposes whatever the action returned. Same clock, same semantics, same loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from reactivex import abc, typing
from reactivex.scheduler.eventloop import AsyncIOScheduler

_TState = TypeVar("_TState")

# Every timer a session arms per frame or per window (the real-time pacing, the level
# windows, the coalesced counts) goes through the loop's shared ticker on this grid
# (operators.ticker): a timer may fire up to this late, and N sessions' timers share
# loop wake-ups — at most one per grid step, where timers armed at each session's own
# moments cost a sleep and a wake of the process each.
TIMER_GRID_S = 0.005


class _Timer(abc.DisposableBase):
    """A scheduled action: disposing it cancels the call, or disposes what it returned."""

    __slots__ = ("disposed", "handle", "returned")

    def __init__(self) -> None:
        self.disposed = False
        self.handle: asyncio.Handle | None = None
        self.returned: abc.DisposableBase | None = None

    def dispose(self) -> None:
        self.disposed = True
        if self.handle is not None:
            self.handle.cancel()
        if self.returned is not None:
            self.returned.dispose()


class LoopScheduler(AsyncIOScheduler):
    """An `AsyncIOScheduler` (not thread-safe, like it) whose timers are lean."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.loop = loop

    def schedule(
        self, action: typing.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        timer = _Timer()
        timer.handle = self.loop.call_soon(self._run, timer, action, state)
        return timer

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: typing.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        seconds = duetime if isinstance(duetime, float) else self.to_seconds(duetime)
        if seconds <= 0:
            return self.schedule(action, state)
        timer = _Timer()
        timer.handle = self.loop.call_later(seconds, self._run, timer, action, state)
        return timer

    def _run(self, timer: _Timer, action: Any, state: Any) -> None:
        # the handle holds the timer (its arguments): dropped, the two are no reference
        # cycle, and the action's state goes with the last reference, not a GC pass
        timer.handle = None
        returned = action(self, state)
        if isinstance(returned, abc.DisposableBase):
            if timer.disposed:
                returned.dispose()
            else:
                timer.returned = returned
