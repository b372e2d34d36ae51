"""`Wakeup`, the writer's wake-up call, behaves as the `asyncio.Event` it replaced for
one waiter: over any sequence of sets, clears, waits and cancellations, a wait ends
exactly when the event's would, and a cancelled wait leaves nothing behind."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.connection import Wakeup

STEPS = st.lists(st.sampled_from(["set", "clear", "wait", "cancel", "turn"]), max_size=40)


async def replay(steps: list[str]) -> None:
    wakeup, event = Wakeup(), asyncio.Event()
    waits: tuple[asyncio.Task[None], asyncio.Task[bool]] | None = None
    for step in steps:
        if step == "set":
            wakeup.set()
            event.set()
        elif step == "clear":
            wakeup.clear()
            event.clear()
        elif step == "wait" and waits is None:  # one waiter at a time, as the writer
            waits = (asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(event.wait()))
        elif step == "cancel" and waits is not None:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            assert wakeup._waiter is None  # the cancelled wait took its future away
            waits = None
        for _ in range(3):  # let both waiters run to their next suspension
            await asyncio.sleep(0)
        if waits is not None:
            assert waits[0].done() == waits[1].done(), steps
            if waits[0].done():
                assert wakeup._waiter is None
                waits = None
    if waits is not None:
        wakeup.set()
        event.set()
        await asyncio.wait_for(asyncio.gather(*waits), 1)


@given(STEPS)
@settings(max_examples=200, deadline=None)
def test_a_wakeup_ends_a_wait_exactly_when_an_event_would(steps: list[str]) -> None:
    asyncio.run(replay(steps))
