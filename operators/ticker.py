"""One timer for every paced stream on a scheduler: a shared pacing clock.

Each real-time source used to arm its own timer per frame: N sessions in one process
paid N timer wake-ups every 20 ms, each through the scheduler's machinery. A `Ticker`
keeps the due actions of every stream in one heap and arms a single timer for the
earliest. With a `granularity` > 0 a due time is rounded up to the next multiple of it
(on the scheduler's own clock), so streams that started at different moments share
wake-ups: at most one timer per `granularity`, whatever N — each action runs at most
`granularity` late, and early only as much as the loop fires its timers early (uvloop
keeps whole milliseconds): what a timer was armed for is due when it fires, or a loop
that fires early would find nothing due and spin re-arming until it was.

    ticker = shared_ticker(scheduler, granularity=0.002)
    cancel = ticker.call_at(due_seconds, action)
    stop = ticker.every(interval_seconds, action)

A session's other timers (level windows, coalesced counts) go through the same ticker:
at N sessions, timers each session armed at its own moments cost N loop wake-ups per
period, each a sleep and a wake of the process. They are `aligned` and `deferred`
besides: the windows and counts of every session due in one period run in one batch,
back to back, after the frames of their step.
"""

from __future__ import annotations

import heapq
import math
import threading
import weakref
from collections.abc import Callable

from reactivex import abc
from reactivex.disposable import SerialDisposable

from operators.clock import seconds_of

_EPSILON = 1e-9  # float noise in due times (`200.02` is due at 200.02, not a tick later)
# Deferred actions run this many per turn of the scheduler (the windows and counts of 200
# sessions in one turn held the frames due meanwhile back by tens of milliseconds)
DEFERRED_PER_TURN = 32
_tickers: weakref.WeakValueDictionary[tuple[int, float], Ticker] = weakref.WeakValueDictionary()

# A due action is a one-item list: calling its `clear` (the cancel function `call_at`
# returns) empties it, and an empty entry is skipped — no object of ours per call. A
# deferred action's entry has `_deferred` as its second item.
_Entry = list[Callable[[], None]]


def _deferred() -> None:
    """The mark of a deferred entry (its second item); never called."""


def _run_each(entries: list[_Entry]) -> Exception | None:
    """Run the entries not cancelled by now, in order; the first failure is returned for
    the caller to raise: one stream's failure must not stop the others."""
    failure: Exception | None = None
    for entry in entries:
        if entry:
            try:
                entry[0]()
            except Exception as exc:
                failure = failure or exc
    return failure


class Ticker:
    """Due actions of many streams on one scheduler, released by one timer.

    Actions due at the same time share a slot (on a grid, every stream due in one step):
    registering one appends it to its slot, and only a new slot touches the heap of times.
    """

    def __init__(self, scheduler: abc.SchedulerBase, granularity: float = 0.0) -> None:
        if granularity < 0:
            raise ValueError("granularity must be >= 0")
        self.scheduler = scheduler
        self.now = seconds_of(scheduler)
        self.origin = self.now()  # where the runs of `every(..., aligned=True)` count from
        self.granularity = granularity
        self._slots: dict[float, list[_Entry]] = {}  # fire time -> entries, in call order
        self._times: list[float] = []  # heap of the slots' fire times
        self._timer = SerialDisposable()
        self._armed_at: float | None = None  # when the timer fires, if armed
        # the time the current (or last) firing stands for: the clock's, or the time the
        # timer was armed for if the loop fired it early
        self.tick_at = float("-inf")
        self._firing = False
        # a scheduler on threads (TimeoutScheduler) may fire and register concurrently
        self._lock = threading.RLock()

    def call_at(
        self, due: float, action: Callable[[], None], *, deferred: bool = False
    ) -> Callable[[], None]:
        """Run `action` at `due` (scheduler seconds), rounded up to the granularity; an
        action already due runs on the next timer, never inside this call. Returns a
        cancel function.

        `deferred`: the action runs after the firing's other actions and what they
        scheduled meanwhile (the writes of the frames they released), all of a firing's
        deferred actions in one batch scheduled on the scheduler — for the periodic work
        of many streams, which must not hold back the frames due in the same step."""
        entry = [action, _deferred] if deferred else [action]
        granularity = self.granularity
        if granularity:  # rounded up to the grid (inline: once per paced item)
            fire_at = math.ceil(due / granularity - _EPSILON) * granularity
            if fire_at < due:  # on an epoch clock the quotient can round a float step down
                fire_at = due
        else:
            fire_at = due
        with self._lock:
            now = self.now()
            if fire_at < now:
                fire_at = now
            slot = self._slots.get(fire_at)
            if slot is not None:
                slot.append(entry)
                return entry.clear
            self._slots[fire_at] = [entry]
            heapq.heappush(self._times, fire_at)
            if self._firing:
                return entry.clear  # `_fire` arms once for whatever its actions registered
            if self._armed_at is None or fire_at < self._armed_at - _EPSILON:
                self._arm(fire_at, now)
        return entry.clear

    def aligned_after(self, at: float, interval: float) -> float:
        """The first aligned instant of `interval` (`origin` plus a multiple of it) at or
        after `at` (a float step past one counts as on it)."""
        periods = math.ceil((at - self.origin) / interval - _EPSILON)
        return self.origin + periods * interval

    def every(
        self, interval: float, action: Callable[[], None], *, aligned: bool = False
    ) -> Callable[[], None]:
        """Run `action` every `interval` seconds from now: the k-th run is due at start +
        k * interval (rounded up to the grid, never drifting); after a stall longer than
        `interval` the missed runs are skipped, not run in a burst. Returns a cancel
        function (an action may call it).

        `aligned`: runs are due at the ticker's `origin` plus multiples of `interval`
        instead (the first one at most `interval` away), so every stream's runs of one
        interval fall in the same grid step and run back to back, their code and data
        warm — spread over the period, each ran cold between other streams' frames, at
        several times the cost. Aligned runs are `deferred` (see `call_at`): a step with
        the windows of hundreds of sessions writes its frames first."""
        if interval <= 0:
            raise ValueError("interval must be > 0")
        start = self.now()
        if aligned:
            periods = math.floor((start - self.origin) / interval + _EPSILON)
            start = self.origin + periods * interval
        runs = 1
        cancel: Callable[[], None]  # the pending run's

        def run() -> None:
            nonlocal runs, cancel
            # the next run is armed first: an action that cancels cancels that one
            runs = max(runs + 1, math.floor((self.tick_at - start) / interval + _EPSILON) + 1)
            cancel = self.call_at(start + runs * interval, run, deferred=aligned)
            action()

        cancel = self.call_at(start + interval, run, deferred=aligned)
        return lambda: cancel()

    def _arm(self, fire_at: float, now: float) -> None:
        self._armed_at = fire_at
        self._timer.disposable = self.scheduler.schedule_relative(
            max(0.0, fire_at - now), self._fire, float(fire_at)
        )

    def _fire(self, _: abc.SchedulerBase, armed_for: object = None) -> None:
        with self._lock:
            self._armed_at = None
            now = self.now()
            # the time this timer was armed for, not the latest arming: cancelling is best
            # effort on threads, and a replaced timer may still fire, before that one
            self.tick_at = max(now, armed_for) if isinstance(armed_for, float) else now
            times, slots = self._times, self._slots
            due: list[list[_Entry]] = []
            while times and times[0] <= self.tick_at + _EPSILON:
                due.append(slots.pop(heapq.heappop(times)))
            self._firing = True
        ready: list[_Entry] = []
        later: list[_Entry] = []
        for slot in due:  # in due order; an action may register its next due time
            for entry in slot:
                (later if len(entry) > 1 else ready).append(entry)
        failure = _run_each(ready)
        if later:
            self.scheduler.schedule(self._run_deferred, later)
        with self._lock:
            self._firing = False
            while times and not any(slots[times[0]]):  # only cancelled entries left
                del slots[heapq.heappop(times)]
            if times:
                self._arm(times[0], self.now())
            else:
                self._timer.disposable = None  # nothing due: hold no handle
        if failure is not None:
            raise failure  # where a stream's own timer would have raised it

    def _run_deferred(self, _: abc.SchedulerBase, entries: object) -> None:
        """A batch of deferred actions, `DEFERRED_PER_TURN` at a time: the rest is
        scheduled again, so the frames due meanwhile are not held back by hundreds."""
        assert isinstance(entries, list)
        failure = _run_each(entries[:DEFERRED_PER_TURN])
        if len(entries) > DEFERRED_PER_TURN:  # after what this turn's actions scheduled
            self.scheduler.schedule(self._run_deferred, entries[DEFERRED_PER_TURN:])
        if failure is not None:
            raise failure


def shared_ticker(scheduler: abc.SchedulerBase, granularity: float = 0.0) -> Ticker:
    """The ticker of `scheduler`'s clock at this granularity, shared by every caller.

    Schedulers on one asyncio loop (a session makes its own `AsyncIOScheduler`) share the
    loop's ticker. The ticker lives while some stream uses it; it holds its scheduler (and
    so the loop), so the identity in the key cannot be reused meanwhile.
    """
    owner = getattr(scheduler, "_loop", None) or scheduler
    key = (id(owner), granularity)
    ticker = _tickers.get(key)
    if ticker is None:
        ticker = _tickers[key] = Ticker(scheduler, granularity)
    return ticker
