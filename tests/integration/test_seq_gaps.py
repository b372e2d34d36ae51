"""Transcript times when a source's seq numbers skip (a gate dropped frames, or a v0.3 session
reset restarted the backend's stream mid-recording): a v0.3 backend places audio by seq, so
its times are already the source's and the client must not shift them again."""

from __future__ import annotations

import asyncio

from reactivex import operators as ops

from backend.chaos import ChaosProxy, Fault
from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.protocol import AsrFinal
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples, read_wav
from tests.asr.speech import SPEECH_WAV
from tests.conftest import BackendFactory

SKIPPED = 30  # frames: 0.6 s of the leading silence


async def transcribe(
    url: str, seconds: float, skip: int = 0, speed: float | bool = False, **overrides: object
) -> SessionReport:
    samples = read_wav(SPEECH_WAV)[: round(seconds * 16_000)]

    def kept(frame: AudioFrame) -> bool:
        return frame.seq >= skip

    audio = from_samples(samples, realtime=speed).pipe(ops.filter(kept))
    session = Session(SessionConfig(url=url, **overrides), audio)  # type: ignore[arg-type]
    return await asyncio.wait_for(session.run(), 60)


def starts(transcript: tuple[AsrFinal, ...]) -> list[float]:
    return [final.t0 for final in transcript]


async def test_frames_skipped_at_the_start_keep_the_recordings_times(
    make_backend: BackendFactory,
) -> None:
    async with make_backend(asr="pocketsphinx") as backend:
        whole = await transcribe(backend.url, 5.5)
        gated = await transcribe(backend.url, 5.5, skip=SKIPPED)

    assert whole.outcome == gated.outcome == "completed"
    assert gated.summary is not None
    assert gated.summary.json["sources"]["system"]["gaps"] == 1
    assert [f.text for f in gated.transcript] == [f.text for f in whole.transcript]
    assert len(whole.transcript) == 1
    # the same speech at the same place in the recording, not 0.6 s later
    assert abs(gated.transcript[0].t0 - whole.transcript[0].t0) < 0.1


async def test_a_v03_session_reset_keeps_the_recordings_times(
    make_backend: BackendFactory,
) -> None:
    async with make_backend(asr="pocketsphinx", resume_window=0.3) as backend:
        whole = await transcribe(backend.url, 15.0)
        reset = Fault(at=150, kind="reset", duration=1.0)  # outlasts the resume window
        async with ChaosProxy(backend.port, [reset], clock="frames") as proxy:
            after = await transcribe(
                proxy.url,
                15.0,
                speed=3.0,  # little in flight: the reset loses the first sentence only
                heartbeat=0.3,
                backoff=BackoffPolicy(initial=0.05, max_delay=0.2, reset_after=0.5),
            )

    assert after.outcome == "completed" and after.resets == 1
    # the sentences after the reset (at 3 s, in the first one) sit where they did
    assert len(after.transcript) >= 2
    for late, same in zip(after.transcript[-2:], whole.transcript[-2:], strict=True):
        assert abs(late.t0 - same.t0) < 0.2, (late, same)
    assert starts(after.transcript) == sorted(starts(after.transcript))
    assert all(final.t1 <= 15.5 for final in after.transcript)
