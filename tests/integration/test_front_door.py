"""The front door: `async with Session(...)` / `async for event in session`, typed failures
from `report.raise_for_failure()`, leaving early and cancelling (stop sent, summary awaited),
`retry_now()`, and the blocking front door from a thread — against real loopback backends."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops

from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import free_port, running_backend
from operators.backoff import BackoffPolicy, GaveUp
from pipeline import (
    AsrFinal,
    AudioCounts,
    AudioDeviceError,
    BadConfig,
    BlockingSession,
    Ended,
    LiveListenerError,
    Missed,
    Phase,
    PhaseChanged,
    Session,
    SessionEvent,
    StatusEvent,
    TlsError,
    Unauthorized,
)
from pipeline.audio import AudioFrame
from pipeline.events import EventFeed, session_events
from pipeline.sources import from_samples
from tests.asr.speech import speech_pcm
from tests.conftest import BackendFactory
from tests.integration import rogue
from tests.integration.interrupt import interrupt_when_acked
from tests.integration.test_session import chirp, fast
from tests.tokens import TOKEN, WRONG_TOKEN


def speech(seconds: float) -> Observable[AudioFrame]:
    return from_samples(np.frombuffer(speech_pcm(seconds), np.int16), realtime=False)


async def collect(session: Session) -> list[SessionEvent]:
    events: list[SessionEvent] = []
    async with session:
        async for event in session:
            events.append(event)
    return events


async def test_async_for_yields_phases_transcripts_and_the_end(
    make_backend: BackendFactory,
) -> None:
    async with make_backend(asr="pocketsphinx") as backend:
        session = Session(fast(backend.url), speech(8.0))
        events = await asyncio.wait_for(collect(session), 60)

    phases = [e.phase for e in events if isinstance(e, PhaseChanged)]
    # the audio (not paced) has ended before the connection is up: no plain streaming phase
    assert phases == [Phase.CONNECTING, Phase.FINALIZING, Phase.STOPPED]
    finals = [e for e in events if isinstance(e, AsrFinal)]
    assert finals and [f.text for f in finals] == [s.text for s in session.report.transcript]
    assert isinstance(events[-1], Ended) and events[-1].report is session.report
    assert sum(isinstance(e, Ended) for e in events) == 1
    assert session.report.outcome == "completed"
    session.report.raise_for_failure()  # completed: nothing raised


async def test_wrong_token_raises_unauthorized(make_backend: BackendFactory) -> None:
    async with make_backend(token=TOKEN) as backend:
        session = Session(fast(backend.url, token=WRONG_TOKEN), from_samples(chirp(1.0)))
        await collect(session)
    with pytest.raises(Unauthorized):
        session.report.raise_for_failure()


async def test_refused_format_raises_bad_config() -> None:
    async with rogue.serving(rogue.rejects_format) as url:
        session = Session(fast(url), from_samples(chirp(0.5)))
        await collect(session)
    with pytest.raises(BadConfig, match="Unsupported audio format"):
        session.report.raise_for_failure()


async def test_tls_to_a_plain_server_raises_tls_error(backend: Any) -> None:
    url = backend.url.replace("ws://", "wss://")
    session = Session(fast(url), from_samples(chirp(0.5)))
    await collect(session)
    with pytest.raises(TlsError):
        session.report.raise_for_failure()


async def test_a_backend_that_stays_down_raises_gave_up() -> None:
    config = fast(
        f"ws://127.0.0.1:{free_port()}",
        backoff=BackoffPolicy(initial=0.05, max_delay=0.1, max_attempts=2),
    )
    session = Session(config, from_samples(chirp(0.5)))
    events = await collect(session)
    with pytest.raises(GaveUp) as caught:
        session.report.raise_for_failure()
    assert caught.value.attempts == 2
    retries = [e for e in events if isinstance(e, PhaseChanged) and e.phase is Phase.RECONNECTING]
    assert [e.attempt for e in retries] == [1, 2]
    assert all(e.delay is not None and e.cause for e in retries)


async def test_a_failed_audio_source_raises_its_error(backend: Any) -> None:
    broken = from_samples(chirp(0.5), realtime=False).pipe(
        ops.concat(reactivex.throw(AudioDeviceError("unplugged")))
    )
    session = Session(fast(backend.url), broken)
    await collect(session)
    assert session.report.failure_kind == "audio"
    with pytest.raises(AudioDeviceError, match="unplugged"):
        session.report.raise_for_failure()


def test_every_failure_kind_has_a_typed_exception_without_the_original() -> None:
    from pipeline.report import failure_error

    kinds = {"unauthorized": Unauthorized, "bad_config": BadConfig, "tls": TlsError}
    for kind, error in kinds.items():
        assert type(failure_error(kind, "why")) is error
    assert isinstance(failure_error("gave_up", "down"), GaveUp)
    assert type(failure_error("error", "bug")) is LiveListenerError


def acked_frames(session: Session, frames: int) -> asyncio.Event:
    """Set once the backend has confirmed `frames` frames."""
    done = asyncio.Event()

    def on_status(event: StatusEvent) -> None:
        if isinstance(event, AudioCounts) and sum(c.acked for c in event.counts.values()) >= frames:
            done.set()

    session.status.subscribe(on_status)
    return done


async def test_leaving_the_block_early_sends_stop_and_awaits_the_summary(
    backend: Any, record_dir: Path
) -> None:
    session = Session(fast(backend.url), from_samples(chirp(30.0)))  # real time: 30 s
    acked = acked_frames(session, 10)
    async with session:
        async for event in session:
            if isinstance(event, PhaseChanged) and event.phase is Phase.STREAMING:
                break
        await asyncio.wait_for(acked.wait(), 10)
    report = session.report
    assert report.outcome == "stopped" and report.summary is not None
    counts = report.audio["system"]
    assert 10 <= counts.captured < 1500 and counts.acked == counts.captured
    assert report.frames_lost == 0
    recorded = len(recorded_pcm(record_dir, session.ids.session_id)) // 640
    assert recorded == counts.captured


async def test_cancelling_the_task_stops_cleanly(backend: Any) -> None:
    session = Session(fast(backend.url), from_samples(chirp(30.0)))
    acked = acked_frames(session, 10)

    async def consume() -> None:
        async with session:
            async for _ in session:
                pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(acked.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    report = session.report
    assert report.outcome == "stopped" and report.summary is not None
    assert report.frames_lost == 0 and report.audio["system"].acked >= 10


async def test_retry_now_skips_a_long_backoff_delay() -> None:
    port = free_port()
    delay = 600.0  # without retry_now the test would time out long before
    config = fast(
        f"ws://127.0.0.1:{port}",
        backoff=BackoffPolicy(initial=delay, max_delay=delay, jitter="none"),
    )
    session = Session(config, from_samples(chirp(0.5), realtime=False))
    async with session:
        async for event in session:
            if isinstance(event, PhaseChanged) and event.phase is Phase.RECONNECTING:
                assert event.attempt == 1 and event.delay == delay
                remaining = session.retry_in()
                assert remaining is not None and 0 < remaining <= delay
                break
        async with running_backend(BackendConfig(), port=port):
            assert session.retry_now() is True
            async for event in session:
                if isinstance(event, Ended):
                    break
            assert session.retry_now() is False  # nothing pending any more
    assert session.report.outcome == "completed", session.report.reason
    assert session.report.reconnects == 0 and session.report.frames_lost == 0


def _blocking_run(url: str, stop_after_streaming: bool) -> tuple[list[SessionEvent], Any]:
    events: list[SessionEvent] = []
    seconds = 30.0 if stop_after_streaming else 1.0
    with BlockingSession(fast(url), from_samples(chirp(seconds))) as session:
        assert threading.current_thread() is not None
        for event in session:
            events.append(event)
            if stop_after_streaming and getattr(event, "phase", None) is Phase.STREAMING:
                break
    return events, session.report


async def test_the_blocking_front_door_runs_to_the_end_in_a_thread(backend: Any) -> None:
    events, report = await asyncio.to_thread(_blocking_run, backend.url, False)
    assert report.outcome == "completed" and report.audio["system"].acked == 50
    assert isinstance(events[-1], Ended) and events[-1].report is report
    report.raise_for_failure()


async def test_leaving_the_blocking_block_early_stops_cleanly(backend: Any) -> None:
    events, report = await asyncio.to_thread(_blocking_run, backend.url, True)
    assert not any(isinstance(e, Ended) for e in events)
    assert report.outcome == "stopped" and report.summary is not None
    assert report.frames_lost == 0


CTRL_C_SCRIPT = """
import asyncio, sys
from pipeline import AudioCounts, Session, SessionConfig, tone

async def main() -> None:
    session = Session(SessionConfig(url=sys.argv[1]), tone(440.0, 60.0))
    said = []

    def on_status(event) -> None:
        acked = isinstance(event, AudioCounts) and event.counts["system"].acked >= 10
        if acked and not said:
            said.append(print("acked", flush=True))

    session.status.subscribe(on_status)
    try:
        async with session:
            async for _ in session:
                pass
    finally:
        report = session.report
        counts = report.audio["system"]
        print("report", report.outcome, report.summary is not None, counts.captured,
              counts.acked, report.frames_lost, flush=True)

asyncio.run(main())
"""


async def test_ctrl_c_under_asyncio_run_stops_cleanly(backend: Any) -> None:
    ran = await interrupt_when_acked(CTRL_C_SCRIPT, backend.url)
    # the session stopped cleanly (stop sent, summary awaited, nothing lost), then
    # asyncio.run raised KeyboardInterrupt, which ends Python by SIGINT
    fields = ran.out.split()
    assert fields[:3] == ["report", "stopped", "True"], ran.err
    captured, acked, lost = map(int, fields[3:])
    assert captured >= 10 and captured == acked and lost == 0
    assert ran.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in ran.err


async def test_a_consumer_that_reads_nothing_never_stalls_the_session(backend: Any) -> None:
    """The session runs to its end with nobody reading; what the queue could not hold is
    counted exactly and said first, then the newest events and the end."""
    session = Session(fast(backend.url), from_samples(chirp(2.0), realtime=False))
    everything: list[SessionEvent] = []
    session_events(session).subscribe(everything.append)
    feed = EventFeed(session, maxsize=2)
    report = await asyncio.wait_for(feed.task, 30)  # nobody has read a single event

    read = [event async for event in feed.events()]

    assert report.outcome == "completed" and report.frames_lost == 0
    dropped = len(everything) - 2
    assert dropped > 0
    assert read == [Missed(dropped), *everything[-2:], Ended(report)]
