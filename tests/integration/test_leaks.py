"""After a session with 20 reconnects and `stop`, nothing is left behind: no asyncio task,
thread, OS thread, file descriptor or socket of the client, the backend or the proxy; and
a session stopped while it waits to reconnect never connects again."""

from __future__ import annotations

import asyncio

from aiohttp import web

from backend.chaos import ChaosProxy, Fault
from operators.backoff import BackoffPolicy
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.conftest import BackendFactory
from tests.integration import rogue
from tests.integration.resources import Snapshot, leaks_after, snapshot
from tests.integration.test_chaos import through
from tests.integration.test_session import chirp, fast
from tests.integration.tracebacks import tracebacks

RECONNECTS = 20


async def test_twenty_reconnects_and_stop_leave_nothing_behind(
    make_backend: BackendFactory,
) -> None:
    with tracebacks() as crashes:  # a task dropped while pending is a leak too
        before_all, report, resets = await twenty_reconnects_and_stop(make_backend)
        assert await leaks_after(before_all) == {}  # nor the backend, threads included
    assert crashes == []
    assert report.outcome == "stopped", report.reason
    assert report.reconnects == RECONNECTS == resets
    assert report.resumes == RECONNECTS and report.frames_lost == 0


async def twenty_reconnects_and_stop(
    make_backend: BackendFactory,
) -> tuple[Snapshot, SessionReport, int]:
    before_all = snapshot()
    faults = [Fault(at=25 * (n + 1), kind="reset", duration=0.05) for n in range(RECONNECTS)]
    async with make_backend() as backend:
        backend_up = snapshot()
        async with ChaosProxy(backend.port, faults, clock="frames") as proxy:
            serving = snapshot()  # the listening sockets and the proxy's schedule
            session = Session(through(proxy), from_samples(chirp(120.0), realtime=4.0))
            reconnected = asyncio.Event()
            session.state.subscribe(
                lambda state: reconnected.set() if state.reconnects >= RECONNECTS else None
            )
            run = asyncio.create_task(session.run())
            await asyncio.wait_for(reconnected.wait(), 60)
            await session.stop()
            report = await asyncio.wait_for(run, 20)

            # the client and the backend's connections hold nothing any more
            assert await leaks_after(serving, threads=False) == {}
            assert backend.store.connections == 0 and backend.store.sessions == {}
        assert await leaks_after(backend_up, threads=False) == {}  # nor the proxy
    return before_all, report, proxy.stats.resets


async def test_stop_while_reconnecting_cancels_the_retry() -> None:
    attempts: list[float] = []
    retried = asyncio.Event()

    async def refuses(request: web.Request) -> web.StreamResponse:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) >= 2:
            retried.set()
        raise web.HTTPServiceUnavailable()  # busy: retried after the busy floor

    before = snapshot()
    with tracebacks() as crashes:
        async with rogue.serving(refuses) as url:
            config = fast(url, busy_floor=0.3, backoff=BackoffPolicy(initial=0.3, max_delay=0.3))
            session = Session(config, from_samples(chirp(5.0), realtime=True))
            run = asyncio.create_task(session.run())
            await asyncio.wait_for(retried.wait(), 5)
            await session.stop(timeout=0.1)  # nothing can be delivered: end anyway
            report = await asyncio.wait_for(run, 5)
            stopped_at = len(attempts)
            await asyncio.sleep(1.0)  # three retry delays: a live timer would have fired
        assert await leaks_after(before) == {}
    assert crashes == []
    assert len(attempts) == stopped_at  # no attempt after the session ended
    assert report.outcome == "stopped" and report.frames_lost > 0  # and says what was lost
