"""The bundled recording, streamed in real time through HAProxy to two `serve` instances
sharing Redis; the instance holding the session is SIGKILLed mid-sentence, and later the
other one is restarted gracefully. The client loses nothing and sees one transcript.
Real pocketsphinx, redis-server, HAProxy and processes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.asr import close_factory, recognizer_factory
from pipeline.protocol import AsrFinal, ServerEvent
from pipeline.session import Session
from pipeline.sources import wav_file
from tests.asr.speech import SPEECH_WAV, reference_words, speech_pcm, wer, words
from tests.deploy.conftest import Deployment, deploy, undeploy
from tests.deploy.test_shared_sessions import holder
from tests.integration.test_session import fast

SECONDS = 46.76
FRAME_SECONDS = 0.02


def offline_wer() -> float:
    """The same recogniser over the whole recording, with no fault: the baseline."""
    factory = recognizer_factory("pocketsphinx", max_decoders=1)
    recognizer = factory()
    try:
        pcm = speech_pcm()
        step = 16_000  # 0.5 s batches, as the backend hands them on
        hyps = [h for i in range(0, len(pcm), step) for h in recognizer.process(pcm[i : i + step])]
        hyps += recognizer.finish()
    finally:
        recognizer.close()
        close_factory(factory)
    return wer(reference_words(), words(" ".join(h.text for h in hyps if h.final)))


@pytest.fixture
async def speech_instances(tmp_path: Path) -> AsyncIterator[Deployment]:
    options = ("--asr", "pocketsphinx", "--asr-decoders", "1", "--shutdown-grace", "5")
    deployment = await deploy(tmp_path, 2, *options)
    try:
        yield deployment
    finally:
        await undeploy(deployment)


async def test_kill_and_graceful_restart_mid_recording(speech_instances: Deployment) -> None:
    serves = speech_instances.serves
    session = Session(fast(speech_instances.proxy.url), wav_file(SPEECH_WAV, realtime=True))
    events: list[ServerEvent] = []
    session.events.subscribe(events.append)
    loop = asyncio.get_running_loop()
    running = loop.create_task(session.run())
    baseline = loop.run_in_executor(None, offline_wer)
    first = await holder(speech_instances)
    await asyncio.sleep(12.0)  # mid-sentence, after the first finals
    await serves[first].kill()
    second = await holder(speech_instances, [1 - first])
    await serves[first].start()  # back in the pool
    await asyncio.sleep(12.0)
    await serves[second].stop()  # SIGTERM: a graceful restart
    await holder(speech_instances, [first])
    await serves[second].start()
    report = await asyncio.wait_for(running, SECONDS + 60)

    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    assert report.resets == 0 and report.resumes == report.reconnects == 2
    assert report.summary is not None  # every frame counted once, across three instances
    assert report.summary.json["sources"]["system"]["received_s"] == SECONDS
    transcript = list(report.transcript)
    ids = [f.segment_id for f in transcript]
    assert len(ids) == len(set(ids))  # no final twice
    received = [e for e in events if isinstance(e, AsrFinal)]
    assert len({e.segment_id for e in received}) == len(transcript)
    assert [f.t0 for f in transcript] == sorted(f.t0 for f in transcript)
    # a resumed recogniser starts at the frame holding the last final's end
    assert all(a.t1 <= b.t0 + FRAME_SECONDS for a, b in itertools.pairwise(transcript))
    hypothesis = words(" ".join(final.text for final in transcript))
    assert wer(reference_words(), hypothesis) <= await baseline + 0.02
