"""The backend goes away for 5 s mid-stream and comes back on the same port: the
recording then holds every frame the client captured, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reactivex import operators as ops

from backend.asr import recognizer_factory
from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import free_port
from backend.store import SessionStore
from operators.backoff import BackoffPolicy
from pipeline import AudioFrame, Session, SessionConfig, wav_file
from pipeline.state import Phase
from pipeline.status import Reconnecting, StatusEvent, Streaming
from tests.audio.signals import noise_wav
from tests.conftest import BackendFactory

SECONDS = 8.0


async def test_backend_down_for_five_seconds_loses_nothing(
    make_backend: BackendFactory, record_dir: Path, tmp_path: Path
) -> None:
    path = noise_wav(tmp_path / "noise.wav", SECONDS)
    store = SessionStore(BackendConfig(record_dir=record_dir), recognizer_factory("none"))
    port = free_port()
    captured: list[AudioFrame] = []
    events: list[StatusEvent] = []
    audio = wav_file(path, realtime=True).pipe(ops.do_action(captured.append))
    config = SessionConfig(
        url=f"ws://127.0.0.1:{port}/ws/live-listener",
        heartbeat=1.0,
        backoff=BackoffPolicy(initial=0.2, max_delay=1.0, reset_after=1.0),
    )
    session = Session(config, audio)
    session.status.subscribe(events.append)
    try:
        async with make_backend(port=port, store=store):
            running = asyncio.create_task(session.run())
            await asyncio.sleep(1.5)
        # the backend is gone: its runner stopped, the port closed
        down_at = len(captured)
        await asyncio.sleep(5.0)
        held_during_outage = session.outbox.counts()["system"].buffered
        async with make_backend(port=port, store=store):
            report = await asyncio.wait_for(running, SECONDS + 20)
    finally:
        await store.close()

    assert report.outcome == "completed", report.lines()
    assert session.current.phase is Phase.STOPPED
    assert any(isinstance(e, Reconnecting) for e in events)
    resumed = [e for e in events if isinstance(e, Streaming) and e.resumed is not None]
    assert resumed
    assert resumed[0].resumed
    assert held_during_outage >= 200  # 5 s of frames waited in the outbox

    counts = report.audio["system"]
    assert counts.captured == len(captured) == round(SECONDS * 50)
    assert counts.dropped == counts.unconfirmed == 0
    assert 0 < down_at < len(captured)
    assert [f.seq for f in captured] == list(range(len(captured)))
    recorded = recorded_pcm(record_dir, session.ids.session_id, "system")
    assert recorded == b"".join(frame.pcm for frame in captured)
