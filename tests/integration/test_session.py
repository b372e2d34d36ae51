"""A real Session against real aiohttp servers on loopback: the foundation's fault matrix."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from backend.asr import NullRecognizer
from backend.config import BackendConfig
from backend.record_path import session_dir_name
from backend.recording import recorded_pcm
from backend.server import free_port, start_backend
from backend.store import SessionStore
from operators.backoff import BackoffPolicy
from pipeline.audio import Samples, to_int16
from pipeline.config import SessionConfig
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import Connecting, Reconnecting, StatusEvent, Streaming
from tests.conftest import BackendFactory
from tests.integration import rogue
from tests.tokens import FRESH_TOKEN, STALE_TOKEN, TOKEN, WRONG_TOKEN


def fast(url: str, **overrides: Any) -> SessionConfig:
    """Short delays so fault tests take well under a second per retry."""
    overrides.setdefault("backoff", BackoffPolicy(initial=0.05, max_delay=0.2, reset_after=0.5))
    overrides.setdefault("busy_floor", 0.1)
    overrides.setdefault("heartbeat", 1.0)
    return SessionConfig(url=url, **overrides)


def chirp(seconds: float) -> Samples:
    """A recognisable signal: every frame differs from every other."""
    t = np.arange(round(seconds * 16_000)) / 16_000
    return to_int16(0.4 * np.sin(2 * np.pi * (200 + 400 * t) * t))


async def run(session: Session) -> tuple[SessionReport, list[StatusEvent]]:
    events: list[StatusEvent] = []
    session.status.subscribe(events.append)
    report = await asyncio.wait_for(session.run(), 30)
    return report, events


def count(events: list[StatusEvent], kind: type[StatusEvent]) -> int:
    return sum(isinstance(e, kind) for e in events)


async def test_happy_path_delivers_every_frame(backend: Any, record_dir: Path) -> None:
    samples = chirp(2.0)
    session = Session(fast(backend.url), from_samples(samples, realtime=False))

    report, events = await run(session)

    assert report.outcome == "completed", report.reason
    counts = report.audio["system"]
    assert counts.captured == counts.sent == counts.acked == 100
    assert report.frames_lost == 0 and report.reconnects == 0
    assert report.protocol == "0.3"
    assert count(events, Connecting) == 1
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()
    assert report.summary is not None


async def test_v02_backend_streams_and_confirms_by_ping_barriers(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    samples = chirp(1.0)
    async with make_backend(protocol="0.2") as backend:
        session = Session(fast(backend.url), from_samples(samples, realtime=False))
        report, _ = await run(session)

    assert report.outcome == "completed" and report.protocol == "0.2"
    counts = report.audio["system"]
    assert counts.acked == counts.sent == 50 and counts.unconfirmed == 0
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()


async def restart_mid_stream(
    store: SessionStore, *, fresh_store: bool
) -> tuple[Session, SessionReport]:
    port = free_port()
    first = await start_backend(store.config, port=port, store=store)
    samples = chirp(3.0)
    session = Session(fast(f"ws://127.0.0.1:{port}"), from_samples(samples, realtime=True))
    task = asyncio.create_task(run(session))
    await asyncio.sleep(1.0)
    await first.runner.cleanup()  # the backend goes away mid-stream
    await asyncio.sleep(0.6)
    second_store = SessionStore(store.config, NullRecognizer) if fresh_store else store
    second = await start_backend(store.config, port=port, store=second_store)
    try:
        report, _ = await task
    finally:
        await second.runner.cleanup()
        await store.close()
        await second_store.close()
    return session, report


async def test_backend_restart_mid_stream_resumes_with_nothing_lost(record_dir: Path) -> None:
    store = SessionStore(BackendConfig(record_dir=record_dir), NullRecognizer)

    session, report = await restart_mid_stream(store, fresh_store=False)

    assert report.outcome == "completed", report.reason
    assert report.reconnects == 1 and report.resumes == 1 and report.resets == 0
    assert report.frames_lost == 0
    assert report.downtime > 0.5
    # one session id across both connections, and every frame exactly once, in order
    assert [p.name for p in record_dir.iterdir()] == [session_dir_name(session.ids.session_id)]
    assert recorded_pcm(record_dir, session.ids.session_id) == chirp(3.0).tobytes()


async def test_restart_without_the_session_is_a_reset_counted_honestly(record_dir: Path) -> None:
    store = SessionStore(BackendConfig(record_dir=record_dir), NullRecognizer)

    session, report = await restart_mid_stream(store, fresh_store=True)

    assert report.outcome == "completed", report.reason
    assert report.resets == 1 and report.resumes == 0
    counts = report.audio["system"]
    recorded = len(recorded_pcm(record_dir, session.ids.session_id)) // 640
    # frames the new backend never got are exactly those the client calls unconfirmed
    assert recorded == counts.captured - counts.unconfirmed
    assert counts.dropped == 0 and counts.buffered == 0


async def test_wrong_token_fails_after_exactly_one_attempt(make_backend: BackendFactory) -> None:
    async with make_backend(token=TOKEN) as backend:
        session = Session(fast(backend.url, token=WRONG_TOKEN), from_samples(chirp(1.0)))
        report, events = await run(session)

    assert report.outcome == "failed" and report.failure_kind == "unauthorized"
    assert "unauthorized" in (report.reason or "")
    assert count(events, Connecting) == 1 and count(events, Reconnecting) == 0


async def test_http_401_at_the_handshake_is_unauthorized() -> None:
    async with rogue.serving(rogue.http_401) as url:
        report, events = await run(Session(fast(url, token=TOKEN), from_samples(chirp(0.5))))
    assert report.failure_kind == "unauthorized"
    assert count(events, Connecting) == 1


async def test_a_token_provider_earns_one_retry_with_the_new_token(
    make_backend: BackendFactory,
) -> None:
    async def provider() -> str:
        return FRESH_TOKEN

    async with make_backend(token=FRESH_TOKEN) as backend:
        config = fast(backend.url, token=STALE_TOKEN, token_provider=provider)
        report, events = await run(Session(config, from_samples(chirp(0.5), realtime=False)))

    assert report.outcome == "completed", report.reason
    assert count(events, Connecting) == 2


async def test_unsupported_format_is_fatal() -> None:
    async with rogue.serving(rogue.rejects_format) as url:
        report, events = await run(Session(fast(url), from_samples(chirp(0.5))))
    assert report.outcome == "failed" and report.failure_kind == "bad_config"
    assert "Unsupported audio format" in (report.reason or "")
    assert count(events, Connecting) == 1


async def test_gives_up_when_the_backend_stays_down() -> None:
    config = fast(
        f"ws://127.0.0.1:{free_port()}",
        backoff=BackoffPolicy(initial=0.05, max_delay=0.1, max_attempts=2),
    )
    report, events = await run(Session(config, from_samples(chirp(0.5))))

    assert report.outcome == "failed" and report.failure_kind == "gave_up"
    assert "gave up reconnecting after 2 attempts" in (report.reason or "")
    assert "cannot connect" in (report.reason or "")
    assert count(events, Connecting) == 3


async def test_server_at_capacity_backs_off_and_recovers(make_backend: BackendFactory) -> None:
    async with make_backend(max_sessions=1) as backend:
        first = Session(fast(backend.url), from_samples(chirp(1.5), realtime=True))
        second = Session(fast(backend.url, busy_floor=0.3), from_samples(chirp(0.5)))
        first_task = asyncio.create_task(run(first))
        await asyncio.sleep(0.3)
        (second_report, second_events), (first_report, _) = await asyncio.gather(
            run(second), first_task
        )

    assert first_report.outcome == second_report.outcome == "completed"
    busy = [e for e in second_events if isinstance(e, Reconnecting)]
    assert busy and all("busy" in e.cause for e in busy)
    assert all(e.delay >= 0.3 for e in busy)  # never below the floor


async def test_heartbeat_detects_a_backend_that_stops_answering() -> None:
    heartbeat, audio_s = 0.4, 20.0
    async with rogue.serving(rogue.freezes_after_streaming) as url:
        config = fast(url, heartbeat=heartbeat, backoff=BackoffPolicy(max_attempts=0))
        session = Session(config, from_samples(chirp(audio_s), realtime=True))
        report, events = await run(session)

    streaming = next(e for e in events if isinstance(e, Streaming))
    assert report.failure_kind == "gave_up" and "heartbeat" in (report.reason or "")
    # the audio had most of its length to go: an unnoticed freeze would have lasted all of
    # it; aiohttp notices after 1.5 heartbeats (0.6 s), and a loaded machine's delays to
    # that are far below the half of the audio this allows
    end = report.duration + events[0].at
    assert end - streaming.at < audio_s / 2
    assert report.audio["system"].captured < audio_s / 2 / 0.02  # it ended long before


async def test_a_subscriber_that_raises_does_not_stop_the_session(backend: Any) -> None:
    session = Session(fast(backend.url), from_samples(chirp(1.0), realtime=False))
    states: list[Any] = []

    def buggy(_: object) -> None:
        raise RuntimeError("a bug in a user's callback")

    session.state.subscribe(buggy)
    session.events.subscribe(buggy)
    session.state.subscribe(states.append)
    report = await asyncio.wait_for(session.run(), 30)

    assert report.outcome == "completed", report.reason
    assert report.audio["system"].acked == 50
    assert states[-1].phase.value == "stopped"
