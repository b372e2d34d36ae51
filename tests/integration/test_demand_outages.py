"""A file read as fast as the session delivers, through repeated outages: the source waits
on the demand again and again (a small flow window, resets that refuse reconnection for a
while), and every outage's connections corked their backlog through a duplicate
descriptor. Nothing may be lost, repeated or held: every frame once, in order; every
duplicate descriptor closed; no descriptor, socket or task left behind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from backend.chaos import ChaosProxy, Fault
from backend.recording import recorded_pcm
from backend.server import free_port
from pipeline import connection, flow
from pipeline.audio import FRAME_SAMPLES
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.conftest import BackendFactory
from tests.integration.resources import leaks_after, snapshot
from tests.integration.test_chaos import through
from tests.integration.test_session import chirp, fast

OUTAGES = 6
SECONDS = 8.0  # 400 frames of 20 ms
WINDOW_S = 0.2  # a flow window of 10 frames: the file waits on the demand all the time
WINDOW_FRAMES = 10


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often a source waited on the demand (a spy around the real `Demand.wait`)."""
    count = [0]
    real = flow.Demand.wait

    async def wait(demand: flow.Demand) -> None:
        count[0] += 1
        await real(demand)

    monkeypatch.setattr(flow.Demand, "wait", wait)
    return count


class _CountingCork(connection.Cork):
    """The real cork, counting the duplicate descriptors it makes and closes (a spy)."""

    made = 0
    closed = 0

    def _set(self, on: int) -> None:
        had = self._own is not None
        super()._set(on)
        if not had and self._own is not None:
            _CountingCork.made += 1

    def close(self) -> None:
        had = self._own is not None
        super().close()
        if had and self._own is None:
            _CountingCork.closed += 1


async def test_a_waiting_file_resumes_after_every_outage_and_leaves_no_descriptor(
    make_backend: BackendFactory,
    record_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    waits: list[int],
) -> None:
    monkeypatch.setattr(connection, "Cork", _CountingCork)
    _CountingCork.made = _CountingCork.closed = 0
    samples = chirp(SECONDS)
    frames = len(samples) // FRAME_SAMPLES
    faults = [Fault(at=50 * (n + 1), kind="reset", duration=0.3) for n in range(OUTAGES)]
    before = snapshot()
    async with make_backend() as backend:
        backend_up = snapshot()
        async with ChaosProxy(backend.port, faults, clock="frames") as proxy:
            serving = snapshot()
            config = through(proxy, flow_window=WINDOW_S)
            session = Session(config, from_samples(samples, realtime=False))
            report = await asyncio.wait_for(session.run(), 60)
            assert await leaks_after(serving, threads=False) == {}
        assert await leaks_after(backend_up, threads=False) == {}
    assert await leaks_after(before) == {}

    assert proxy.stats.faults_applied == faults
    assert report.outcome == "completed", report.reason
    assert report.reconnects == report.resumes == OUTAGES and report.resets == 0
    counts: Any = report.audio["system"]
    assert counts.captured == counts.sent == counts.acked == frames
    assert counts.dropped == counts.unconfirmed == counts.buffered == 0
    assert report.frames_lost == 0
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()
    assert waits[0] >= frames // (2 * WINDOW_FRAMES)  # the file waited, again and again
    # every connection after an outage resent a backlog, corked: each duplicate closed
    assert _CountingCork.made >= OUTAGES
    assert _CountingCork.closed == _CountingCork.made


async def test_a_file_stopped_while_it_waits_on_the_demand_leaves_no_watcher() -> None:
    """The backend never answers: the file fills its window and waits, watching the
    outbox; `stop` must end the wait and take the watch away with it."""
    before = snapshot()
    samples = chirp(SECONDS)
    config = fast(f"ws://127.0.0.1:{free_port()}", flow_window=WINDOW_S)  # nothing listens
    session = Session(config, from_samples(samples, realtime=False))
    run = asyncio.create_task(session.run())
    listeners = session._outbox._listeners
    for _ in range(1000):  # until the file waits: its demand watches beside the counts
        if session._outbox.held >= WINDOW_FRAMES and len(listeners) == 2:
            break
        await asyncio.sleep(0.01)
    assert session._outbox.held >= WINDOW_FRAMES and len(listeners) == 2
    held = session._outbox.held
    await asyncio.sleep(3 * config.backoff.initial)  # retries come and go; the file waits on
    assert session._outbox.held == held < len(samples) // FRAME_SAMPLES
    await session.stop(timeout=0.5)
    report = await asyncio.wait_for(run, 10)
    assert report.outcome == "stopped", report.reason
    assert listeners == []  # the waiting source's watch went with it, as did the counts'
    assert report.audio["system"].captured == held  # nothing read after the stop
    assert await leaks_after(before) == {}


async def test_a_v02_backend_confirms_a_waiting_file_by_barriers_frame_for_frame(
    make_backend: BackendFactory, record_dir: Path, waits: list[int]
) -> None:
    """Confirmation by ping barriers: the writer runs dry after every window, sends a
    barrier, and only its answer wakes the file again."""
    samples = chirp(SECONDS)
    frames = len(samples) // FRAME_SAMPLES
    async with make_backend(protocol="0.2") as backend:
        config = fast(backend.url, flow_window=WINDOW_S)
        session = Session(config, from_samples(samples, realtime=False))
        report = await asyncio.wait_for(session.run(), 60)
    assert report.outcome == "completed", report.reason
    assert report.protocol == "0.2" and report.reconnects == 0
    counts: Any = report.audio["system"]
    assert counts.captured == counts.sent == counts.acked == frames
    assert counts.unconfirmed == counts.dropped == 0
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()
    assert waits[0] >= frames // (2 * WINDOW_FRAMES)  # the file waited, again and again
