"""The cork on uvloop (the `fast` extra's loop): its transports hand out a stand-in socket,
and the cork sets TCP_CORK through a duplicate of its descriptor. A file waiting on a small
window through backend restarts, on uvloop: every frame once, every duplicate closed, no
descriptor left behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest
import uvloop

from backend.asr import NullRecognizer
from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import free_port, start_backend
from backend.store import SessionStore
from pipeline import connection
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.integration.test_demand_outages import WINDOW_S, _CountingCork
from tests.integration.test_session import chirp, fast

RESTARTS = 3
SECONDS = 6.0  # 300 frames: more than are confirmed before the last restart


async def restarts_under_a_waiting_file(
    record_dir: Path, seconds: float = SECONDS, restarts: int = RESTARTS
) -> tuple[Session, SessionReport]:
    store = SessionStore(BackendConfig(record_dir=record_dir), NullRecognizer)
    port = free_port()
    backend = await start_backend(store.config, port=port, store=store)
    session = Session(
        fast(f"ws://127.0.0.1:{port}", flow_window=WINDOW_S),
        from_samples(chirp(seconds), realtime=False),
    )
    outbox = session._outbox
    reached = asyncio.Event()
    mark = [0]

    def confirmed() -> None:  # past the next mark of confirmed frames: time to restart
        if outbox.counts()["system"].acked >= mark[0]:
            reached.set()

    outbox.listen(confirmed)
    run = asyncio.create_task(session.run())
    try:
        for restart in range(restarts):
            mark[0] = 60 * (restart + 1)
            reached.clear()
            await asyncio.wait_for(reached.wait(), 30)
            await backend.runner.cleanup()  # mid-stream, mid-backlog
            backend = await start_backend(store.config, port=port, store=store)
        report = await asyncio.wait_for(run, 60)
    finally:
        await backend.runner.cleanup()
        await store.close()
    return session, report


def test_on_uvloop_a_waiting_file_survives_restarts_and_every_duplicate_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "Cork", _CountingCork)
    _CountingCork.made = _CountingCork.closed = 0
    process = psutil.Process()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        # a first short session: what the loop and the libraries open once (uvloop opens
        # /dev/null on its first session), before counting
        runner.run(restarts_under_a_waiting_file(tmp_path / "warm-up", seconds=0.5, restarts=0))
        before = process.num_fds()
        session, report = runner.run(restarts_under_a_waiting_file(tmp_path / "restarts"))
        after = process.num_fds()
    assert after <= before  # no duplicate, socket or recording left open
    assert report.outcome == "completed", report.reason
    assert report.reconnects == report.resumes == RESTARTS and report.frames_lost == 0
    counts = report.audio["system"]
    assert counts.captured == counts.acked == round(SECONDS * 50)
    assert recorded_pcm(tmp_path / "restarts", session.ids.session_id) == chirp(SECONDS).tobytes()
    assert _CountingCork.made >= RESTARTS and _CountingCork.closed == _CountingCork.made
