"""A v0.3 client streaming through a graceful restart of its backend loses nothing: the old
process transcribes what it acknowledged and sends those finals before it closes with 1012;
the client sends the rest to the new process. Real pocketsphinx, real sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import free_port, start_backend
from pipeline.audio import BYTES_PER_SECOND
from pipeline.protocol import AsrFinal, ServerEvent
from pipeline.session import Session
from pipeline.sources import wav_file
from tests.asr.speech import SPEECH_WAV, reference_words, speech_pcm, wer, words
from tests.integration.test_session import fast
from tests.security.polling import until_true

AUDIO_BYTES = round(46.76 * BYTES_PER_SECOND)


async def test_a_graceful_restart_loses_no_sentence(record_dir: Path) -> None:
    config = BackendConfig(asr="pocketsphinx", asr_decoders=1, record_dir=record_dir)
    port = free_port()
    first = await start_backend(config, port=port)
    session = Session(fast(f"ws://127.0.0.1:{port}"), wav_file(SPEECH_WAV, realtime=False))
    events: list[ServerEvent] = []
    session.events.subscribe(events.append)
    running = asyncio.get_running_loop().create_task(session.run())
    await until_true(lambda: sum(isinstance(e, AsrFinal) for e in events) >= 2)
    (old,) = first.store.sessions.values()
    await first.runner.cleanup()  # what SIGTERM does in `serve`
    before = [e for e in events if isinstance(e, AsrFinal)]
    handed_before = old.streams["system"].handed_bytes
    second = await start_backend(config, port=port)
    try:
        report = await asyncio.wait_for(running, 120)
    finally:
        await second.runner.cleanup()

    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    assert report.resets == 1  # the new process never knew the session
    # acknowledged audio was transcribed by the old process; the rest went to the new one
    assert report.summary is not None
    received_after = report.summary.json["sources"]["system"]["received_s"] * BYTES_PER_SECOND
    assert handed_before + round(received_after) == AUDIO_BYTES
    transcript = list(report.transcript)
    assert transcript[: len(before)] == before  # the old process's finals are kept
    assert [f.t0 for f in transcript] == sorted(f.t0 for f in transcript)
    # both processes recorded into one file: every frame exactly once, in order (what the
    # old process had read but not acknowledged is resent, so it keeps only what it acked)
    assert recorded_pcm(record_dir, session.ids.session_id) == speech_pcm()
    hypothesis = words(" ".join(final.text for final in transcript))
    assert wer(reference_words(), hypothesis) <= 0.2
