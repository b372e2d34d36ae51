"""The bundled recording through a real Session to the embedded backend with pocketsphinx."""

from __future__ import annotations

from pipeline.config import SessionConfig
from pipeline.protocol import AsrFinal, ServerEvent
from pipeline.session import Session
from pipeline.sources import wav_file
from tests.asr.speech import SPEECH_TXT, SPEECH_WAV, reference_words, wer, words
from tests.conftest import BackendFactory

AUDIO_S = 46.76


async def test_the_recording_is_transcribed_in_order_without_loss(
    make_backend: BackendFactory,
) -> None:
    """As fast as the backend takes it (realtime=False): acks pace the file, nothing drops."""
    async with make_backend(asr="pocketsphinx") as backend:
        session = Session(SessionConfig(url=backend.url), wav_file(SPEECH_WAV, realtime=False))
        events: list[ServerEvent] = []
        session.events.subscribe(events.append)
        report = await session.run()

    assert report.outcome == "completed"
    assert report.frames_lost == 0
    finals = [event for event in events if isinstance(event, AsrFinal)]
    assert finals == list(report.transcript)
    hypothesis = words(" ".join(final.text for final in finals))
    assert wer(reference_words(), hypothesis) <= 0.15
    assert len(finals) == len(SPEECH_TXT.read_text().splitlines())
    # in time order, inside the audio, no duplicates
    assert [f.t0 for f in finals] == sorted(f.t0 for f in finals)
    assert all(0 <= f.t0 < f.t1 <= AUDIO_S for f in finals)
    assert len({f.segment_id for f in finals}) == len(finals)
    assert len({(f.t0, f.t1, f.text) for f in finals}) == len(finals)
    assert all(f.confidence is not None and 0 < f.confidence <= 1 for f in finals)

    # the final summary: every frame reached the recogniser, the transcript in time order
    assert report.summary is not None
    summary = report.summary.json
    assert summary["sources"]["system"]["received_s"] == AUDIO_S
    assert summary["sources"]["system"]["recognized_s"] == AUDIO_S
    assert summary["sources"]["system"]["dropped_frames"] == 0
    assert [s["text"] for s in summary["transcript"]] == [f.text for f in finals]
    assert [s["t0"] for s in summary["transcript"]] == [f.t0 for f in finals]
    markdown = report.summary.markdown
    assert all(f.text in markdown for f in finals)
    assert markdown.index(finals[0].text) < markdown.index(finals[-1].text)
