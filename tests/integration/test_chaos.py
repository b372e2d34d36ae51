"""Zero-loss reconnection through a fault-injecting proxy (resets, black holes, delays)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.chaos import ChaosProxy, Fault, random_faults
from backend.recording import recorded_pcm
from operators.backoff import BackoffPolicy
from pipeline.config import SessionConfig
from pipeline.protocol import AsrFinal
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples, read_wav
from tests.asr.speech import SPEECH_WAV, reference_words, wer, words
from tests.conftest import BackendFactory
from tests.integration.test_session import chirp

HEARTBEAT = 0.3


def through(proxy: ChaosProxy, **overrides: Any) -> SessionConfig:
    overrides.setdefault("backoff", BackoffPolicy(initial=0.05, max_delay=0.2, reset_after=0.5))
    return SessionConfig(url=proxy.url, heartbeat=HEARTBEAT, connect_timeout=1.0, **overrides)


async def stream(
    proxy: ChaosProxy, samples: np.ndarray, **overrides: Any
) -> tuple[Session, SessionReport]:
    session = Session(through(proxy, **overrides), from_samples(samples, realtime=False))
    report = await asyncio.wait_for(session.run(), 90)
    return session, report


async def test_the_proxy_is_transparent_without_faults(backend: Any, record_dir: Path) -> None:
    samples = chirp(2.0)
    async with ChaosProxy(backend.port) as proxy:
        session, report = await stream(proxy, samples)
    assert report.outcome == "completed" and report.reconnects == 0
    assert proxy.stats.audio_frames_forwarded == report.audio["system"].sent == 100
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()


@pytest.mark.parametrize(
    ("fault", "reconnects"),
    [
        (Fault(at=40, kind="reset", duration=0.2), 1),
        (Fault(at=40, kind="blackhole", duration=2.0), 1),  # outlasts the heartbeat
        (Fault(at=40, kind="blackhole", duration=0.1), 0),  # held, then delivered
        (Fault(at=40, kind="delay", duration=0.5, latency=0.2), 0),
    ],
)
async def test_each_fault_alone_loses_nothing(
    fault: Fault, reconnects: int, backend: Any, record_dir: Path
) -> None:
    samples = chirp(4.0)
    async with ChaosProxy(backend.port, [fault], clock="frames") as proxy:
        session = Session(through(proxy), from_samples(samples, realtime=True))
        report = await asyncio.wait_for(session.run(), 30)
    assert report.outcome == "completed", report.reason
    assert proxy.stats.faults_applied == [fault]
    assert report.reconnects == reconnects
    assert report.frames_lost == 0
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()


def assert_transcript_sound(transcript: tuple[AsrFinal, ...]) -> None:
    """Finals in time order, none repeated, and the words all there."""
    starts = [final.t0 for final in transcript]
    assert starts == sorted(starts)
    assert len({(f.t0, f.t1, f.text) for f in transcript}) == len(transcript)
    assert wer(reference_words(), words(" ".join(f.text for f in transcript))) <= 0.15


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_twenty_random_faults_lose_and_repeat_nothing(
    seed: int, make_backend: BackendFactory, record_dir: Path
) -> None:
    samples = read_wav(SPEECH_WAV)  # the bundled recording, with real recognition
    frames = len(samples) // 320
    faults = random_faults(seed, 20, span=(20, frames * 0.6))
    async with (
        make_backend(asr="pocketsphinx") as backend,
        ChaosProxy(backend.port, faults, clock="frames") as proxy,
    ):
        session, report = await stream(proxy, samples)

    applied = proxy.stats.faults_applied
    assert len(applied) == proxy.stats.faults_hit == 20
    assert {f.kind for f in applied} == {"reset", "blackhole", "delay"}
    assert report.outcome == "completed", report.reason
    counts = report.audio["system"]
    assert counts.dropped == 0 and counts.unconfirmed == 0 and counts.buffered == 0
    assert counts.acked == counts.captured == frames
    assert report.reconnects > 0 and report.resumes == report.reconnects  # never a reset
    # the backend holds every frame exactly once, in order: byte for byte the source
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()
    assert_transcript_sound(report.transcript)


async def test_a_v02_backend_gets_what_was_never_sent_and_losses_are_counted(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    samples = read_wav(SPEECH_WAV)[: 25 * 16_000]
    frames = len(samples) // 320
    faults = random_faults(4, 8, span=(20, frames * 0.6), kinds=("reset", "blackhole"))
    async with (
        make_backend(protocol="0.2", asr="pocketsphinx") as backend,
        ChaosProxy(backend.port, faults, clock="frames") as proxy,
    ):
        # a v0.2 backend drops what its recogniser cannot keep up with: play at 4x, not flat out
        session = Session(through(proxy), from_samples(samples, realtime=4.0))
        report = await asyncio.wait_for(session.run(), 90)

    assert report.outcome == "completed", report.reason
    assert report.protocol == "0.2" and report.resumes == 0
    counts = report.audio["system"]
    recorded = len(recorded_pcm(record_dir, session.ids.session_id)) // 640
    lost = counts.sent - recorded
    assert counts.resent == 0  # never resent: a v0.2 backend cannot drop duplicates
    assert counts.unconfirmed == lost  # exactly the frames the outages swallowed
    assert proxy.stats.audio_frames_cut <= lost
    assert counts.dropped == 0 and counts.buffered == 0
    # timestamps restart on every v0.2 connection: re-based, the transcript stays monotonic
    # and each segment sits where its words are in the recording
    starts = [final.t0 for final in report.transcript]
    assert starts == sorted(starts)
    bread = [f for f in report.transcript if "bread" in f.text]
    assert bread, report.transcript  # the last sentence, after the faults
    assert abs(bread[0].t0 - 19.88) < 0.5  # 19.88 s into the recording, not into its connection


async def test_an_outage_longer_than_the_resume_window_is_a_session_reset(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    samples = chirp(3.0)
    async with make_backend(resume_window=0.3) as backend:
        fault = Fault(at=50, kind="reset", duration=1.0)  # refused for longer than the window
        async with ChaosProxy(backend.port, [fault], clock="frames") as proxy:
            states: list[str | None] = []
            session = Session(through(proxy), from_samples(samples, realtime=True))
            session.state.subscribe(lambda s: states.append(s.last_resume))
            report = await asyncio.wait_for(session.run(), 30)

    assert report.outcome == "completed", report.reason
    assert report.resets == 1 and report.resumes == 0
    assert "session reset" in states
    counts = report.audio["system"]
    recorded = len(recorded_pcm(record_dir, session.ids.session_id)) // 640
    assert recorded == counts.captured - counts.unconfirmed
