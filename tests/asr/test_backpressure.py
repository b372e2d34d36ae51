"""A recogniser slower than real time: the legacy v0.2 mode drops and says so, never
unbounded memory; otherwise nothing drops — v0.3 clients are paced by acks, and a client
that sends past the queue is held back by a backend that stops reading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backend.asr import NullRecognizer, recognizer_factory
from backend.config import BackendConfig
from backend.server import running_backend
from backend.store import SessionStore
from pipeline.config import SessionConfig
from pipeline.protocol import Metrics, ServerEvent, Status
from pipeline.report import SessionReport
from pipeline.session import FLOW_WINDOW_S, Session
from pipeline.sources import from_samples
from tests.asr.queue_watch import watching
from tests.asr.slowed import SlowedRecognizers
from tests.asr.speech import speech_pcm


def speech(seconds: float) -> np.ndarray:
    return np.frombuffer(speech_pcm(seconds), dtype="<i2")


async def test_v02_slow_recogniser_backpressure_and_bounded_queue(record_dir: Path) -> None:
    """The legacy v0.2 mode, real pocketsphinx slowed to 1/3 of real time, live (paced)
    audio, a 0.5 s queue.
    The stop's flush takes seconds with nothing to send: the socket must keep answering
    the client's heartbeat (0.5 s) meanwhile."""
    config = BackendConfig(
        protocol="0.2", asr_queue_seconds=0.5, metrics_interval=0.2, record_dir=record_dir
    )
    slowed = SlowedRecognizers(recognizer_factory("pocketsphinx", max_decoders=1), 3.0)
    store = SessionStore(config, slowed)
    events: list[ServerEvent] = []
    try:
        async with running_backend(config, store=store) as backend, watching(store) as watch:
            session = Session(
                SessionConfig(url=backend.url, protocol="0.2", heartbeat=0.5),
                from_samples(speech(2.5), realtime=True),
            )
            session.events.subscribe(events.append)
            report = await session.run()
    finally:
        await store.close()

    assert report.outcome == "completed"
    assert report.reconnects == 0
    backpressure = [e for e in events if isinstance(e, Status) and e.state == "backpressure"]
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert backpressure
    dropped_told = [e.dropped_frames for e in backpressure]
    assert None not in dropped_told
    assert max(d or 0 for d in dropped_told) > 0  # (the first may come at 80 % full, before)
    assert metrics
    for m in metrics:
        assert m.queue_max == 25  # 0.5 s of 20 ms frames
        assert m.queue_depth is not None
        assert m.queue_depth <= m.queue_max
        assert m.queue_fill_ratio is not None
        assert 0.0 <= m.queue_fill_ratio <= 1.0
        assert m.realtime_factor is not None
        assert m.avg_infer_ms is not None
    assert max(m.realtime_factor or 0 for m in metrics) > 1.0  # slower than real time indeed
    # memory: the queue reached its bound and never went past it
    assert watch.queue_max == 25
    assert watch.deepest == 25
    # every frame is accounted for: recognised or dropped (and counted)
    assert report.summary is not None
    source = report.summary.json["sources"]["system"]
    assert source["received_s"] == 2.5
    assert source["dropped_frames"] > 0
    reported = [m.dropped_total or 0 for m in metrics]
    assert reported == sorted(reported)
    assert 0 < reported[-1] <= source["dropped_frames"]
    assert source["recognized_s"] + source["dropped_frames"] * 0.02 == pytest.approx(2.5)


async def test_v03_acks_pace_a_file_so_nothing_is_dropped(record_dir: Path) -> None:
    """A file streamed as fast as the backend takes it, more audio than the ASR queue holds,
    a recogniser at 4x real time only: acks hold the client back and nothing drops."""
    audio_s = 20.0
    config = BackendConfig(record_dir=record_dir)
    assert audio_s > config.asr_queue_seconds_v03  # without flow control frames would drop
    store = SessionStore(config, SlowedRecognizers(NullRecognizer, 0.25))
    try:
        async with running_backend(config, store=store) as backend, watching(store) as watch:
            session = Session(
                SessionConfig(url=backend.url, heartbeat=0.5),
                from_samples(speech(audio_s), realtime=False),
            )
            report = await session.run()
    finally:
        await store.close()

    assert report.outcome == "completed"
    assert report.reconnects == 0
    assert report.frames_lost == 0
    assert report.summary is not None
    source = report.summary.json["sources"]["system"]
    assert source["dropped_frames"] == 0
    assert source["recognized_s"] == audio_s
    # the client was held back: the backlog grew to about its flow window, not beyond
    assert watch.queue_max == round(config.asr_queue_seconds_v03 * 50)
    assert FLOW_WINDOW_S * 50 * 0.5 < watch.deepest <= FLOW_WINDOW_S * 50 + 50


def test_the_v03_queue_bound_exceeds_the_client_flow_window() -> None:
    assert BackendConfig().asr_queue_seconds_v03 > FLOW_WINDOW_S


async def transcribe(
    config: BackendConfig, store: SessionStore, session_config: SessionConfig, audio_s: float
) -> tuple[SessionReport, int]:
    try:
        async with running_backend(config, store=store) as backend, watching(store) as watch:
            session = Session(
                replace(session_config, url=backend.url),
                from_samples(speech(audio_s), realtime=False),
            )
            report = await session.run()
    finally:
        await store.close()
    return report, watch.deepest


async def test_a_recogniser_at_a_quarter_of_real_time_drops_nothing(record_dir: Path) -> None:
    """Real pocketsphinx slowed to 0.25x real time, a file at full speed, and a client whose
    flow window (3 s) exceeds the backend's queue (1 s): the backend must stop reading to
    keep its promise. Nothing drops; the transcript is the one the unslowed recogniser gives."""
    audio_s = 3.0
    config = BackendConfig(asr="pocketsphinx", asr_queue_seconds_v03=1.0, record_dir=record_dir)
    client = SessionConfig(flow_window=3.0)
    assert client.flow_window > config.asr_queue_seconds_v03

    reference, _ = await transcribe(
        config, SessionStore(config, recognizer_factory("pocketsphinx")), client, audio_s
    )
    slowed = SlowedRecognizers(recognizer_factory("pocketsphinx", max_decoders=1), 4.0)
    report, deepest = await transcribe(config, SessionStore(config, slowed), client, audio_s)

    assert report.outcome == "completed", report.reason
    assert report.reconnects == 0 and report.backend_dropped == 0
    assert report.frames_lost == report.frames_unconfirmed == 0
    assert report.summary is not None
    source = report.summary.json["sources"]["system"]
    assert source["dropped_frames"] == 0
    assert source["recognized_s"] == audio_s
    # the queue held its bound (plus the one message read before the check), no more
    assert deepest <= round(config.asr_queue_seconds_v03 * 50) + 1
    assert [f.text for f in report.transcript] == [f.text for f in reference.transcript]
    assert report.transcript
