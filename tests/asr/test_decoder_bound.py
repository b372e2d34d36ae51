"""More sources than decoders: the extra one is recorded, not transcribed, and told so."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from backend.decoder_pool import PocketsphinxRecognizers
from backend.recording import recorded_pcm
from pipeline.config import SessionConfig
from pipeline.protocol import ServerEvent, Status
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.asr.speech import speech_pcm, words
from tests.conftest import BackendFactory


def speech(seconds: float) -> np.ndarray:
    return np.frombuffer(speech_pcm(seconds), dtype="<i2")


async def until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def test_over_the_bound_recorded_not_transcribed_then_reused(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    async with make_backend(asr="pocketsphinx", asr_decoders=1) as backend:
        recognizers = backend.store.recognizers
        assert isinstance(recognizers, PocketsphinxRecognizers)
        pool = recognizers.pool

        holder = Session(SessionConfig(url=backend.url), from_samples(speech(3.0)))
        holding = asyncio.get_running_loop().create_task(holder.run())
        await until(lambda: pool.stats().leased == 1)

        refused = Session(SessionConfig(url=backend.url), from_samples(speech(3.0), realtime=False))
        refused_events: list[ServerEvent] = []
        refused.events.subscribe(refused_events.append)
        refused_report = await refused.run()
        holder_report = await holding

        await until(lambda: pool.stats().leased == 0)  # the holder's decoder came back
        later = Session(SessionConfig(url=backend.url), from_samples(speech(3.0), realtime=False))
        later_report = await later.run()
        stats = pool.stats()

    # the session over the bound: told why, streamed and recorded in full, no transcript
    told = [e for e in refused_events if isinstance(e, Status) and e.state == "no_asr_provider"]
    assert len(told) == 1
    assert "not transcribed" in told[0].message
    assert refused_report.outcome == "completed"
    assert refused_report.transcript == ()
    assert refused_report.untranscribed == told[0].message  # the state and report say so
    assert f"not transcribed: {told[0].message}" in refused_report.lines()
    assert refused_report.summary is not None
    source = refused_report.summary.json["sources"]["system"]
    assert source["recognizer"] is False
    assert source["received_s"] == 3.0
    assert len(recorded_pcm(record_dir, refused.ids.session_id)) == 3 * 32_000

    # the sessions with the decoder: transcribed, and the second reused the first's process
    for report in (holder_report, later_report):
        assert report.outcome == "completed"
        assert words(report.text)[:3] == ["the", "weather", "is"]
    assert (stats.started, stats.reused, stats.refused, stats.peak_leased) == (1, 1, 1, 1)
