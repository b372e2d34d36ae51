"""`Demand`: a waiting source re-checks the gate on each change, and only while it waits."""

from __future__ import annotations

import asyncio

from reactivex.subject import Subject

from pipeline.flow import Demand


class _Changes(Subject[object]):
    """A subject that counts its subscriptions and its live observers."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions = 0

    def _subscribe_core(self, observer, scheduler=None):  # type: ignore[no-untyped-def]
        self.subscriptions += 1
        return super()._subscribe_core(observer, scheduler)


async def test_a_ready_gate_never_subscribes_to_the_changes() -> None:
    changes = _Changes()
    demand = Demand(lambda: True, changes)
    for _ in range(100):
        await demand.wait()
    assert changes.subscriptions == 0


async def test_a_waiting_source_goes_on_at_the_change_that_opens_the_gate() -> None:
    changes = _Changes()
    held = [5]
    demand = Demand(lambda: held[0] < 3, changes)
    waiting = asyncio.ensure_future(demand.wait())
    await asyncio.sleep(0)
    assert changes.subscriptions == 1 and len(changes.observers) == 1
    for left in (4, 3):  # changes that leave the gate shut
        held[0] = left
        changes.on_next(None)
        await asyncio.sleep(0)
        assert not waiting.done()
    held[0] = 2
    changes.on_next(None)
    await asyncio.wait_for(waiting, 1)
    assert changes.observers == []  # unsubscribed once it went on


async def test_a_gate_that_opened_before_the_subscription_does_not_wait() -> None:
    opened = [False]

    def ready() -> bool:  # shut at the first look, open at the second
        was = opened[0]
        opened[0] = True
        return was

    demand = Demand(ready, _Changes())
    await asyncio.wait_for(demand.wait(), 1)


async def test_a_cancelled_wait_unsubscribes() -> None:
    changes = _Changes()
    demand = Demand(lambda: False, changes)
    waiting = asyncio.ensure_future(demand.wait())
    await asyncio.sleep(0)
    assert len(changes.observers) == 1
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert changes.observers == []
