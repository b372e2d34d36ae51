"""The front door's queue: bounded, never blocking the producer; what a slow consumer
misses is said (`Missed`), the end always arrives, and the public package lists it all."""

from __future__ import annotations

import pytest

import pipeline
from pipeline import Ended, EventQueue, Missed, Phase, PhaseChanged, SessionEvent
from pipeline.report import SessionReport


def phase(at: float) -> PhaseChanged:
    return PhaseChanged(at=at, phase=Phase.STREAMING)


def report() -> SessionReport:
    return SessionReport(
        session_id="s",
        outcome="completed",
        reason=None,
        failure_kind=None,
        duration=1.0,
        connected_time=1.0,
        downtime=0.0,
        reconnects=0,
        resumes=0,
        resets=0,
        protocol="0.3",
        audio={},
    )


async def drain(queue: EventQueue) -> list[SessionEvent]:
    out: list[SessionEvent] = []
    while True:
        try:
            out.append(await queue.get())
        except StopAsyncIteration:
            return out


async def test_a_full_queue_drops_the_oldest_and_says_how_many() -> None:
    queue = EventQueue(maxsize=3)
    for i in range(10):
        queue.put(phase(i))  # never blocks
    end = Ended(report())
    queue.close(end)
    queue.put(phase(99))  # after the end: ignored

    out = await drain(queue)

    assert out == [Missed(7), phase(7), phase(8), phase(9), end]
    assert queue.missed_total == 7


async def test_the_end_arrives_even_when_the_queue_is_full() -> None:
    queue = EventQueue(maxsize=1)
    queue.put(phase(1))
    queue.close(Ended(report()))
    out = await drain(queue)
    assert out == [phase(1), Ended(report())]


async def test_a_failed_run_raises_in_the_consumer() -> None:
    queue = EventQueue()
    queue.close(RuntimeError("bug"))
    with pytest.raises(RuntimeError, match="bug"):
        await queue.get()


def test_the_public_package_lists_every_name_it_exports() -> None:
    assert pipeline.__dir__() == sorted(pipeline.__all__)
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None
    for name in ("AsrFinal", "Reconnecting", "Unauthorized", "GaveUp", "PhaseChanged", "Ended"):
        assert name in pipeline.__all__
    assert pipeline.__version__.count(".") >= 2
