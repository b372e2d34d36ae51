"""Two sources in one session (`reactivex.merge`): each its own stream with its own seq,
its own outbox lane and its own backend stream, end to end over both wire framings."""

from __future__ import annotations

from pathlib import Path

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops

from backend.recording import recorded_pcm
from pipeline import AudioFrame, Session, SessionConfig, tone, wav_file
from pipeline.status import AudioLevel, StatusEvent
from tests.audio.signals import noise_wav
from tests.conftest import BackendFactory


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_system_and_mic_travel_as_separate_streams(
    make_backend: BackendFactory, record_dir: Path, tmp_path: Path, binary: bool
) -> None:
    sent: dict[str, list[AudioFrame]] = {"system": [], "mic": []}

    def keep(frame: AudioFrame) -> None:
        sent[frame.source].append(frame)

    audio: Observable[AudioFrame] = reactivex.merge(
        wav_file(noise_wav(tmp_path / "system.wav", 3.0), source="system", realtime=False),
        tone(330.0, 2.0, source="mic", realtime=False),
    ).pipe(ops.do_action(keep))
    events: list[StatusEvent] = []
    async with make_backend() as backend:
        session = Session(SessionConfig(url=backend.url, binary=binary), audio)
        session.status.subscribe(events.append)
        report = await session.run()

    assert report.outcome == "completed", report.lines()
    for source, seconds in (("system", 3.0), ("mic", 2.0)):
        frames = sent[source]
        assert len(frames) == round(seconds * 50)
        assert [f.seq for f in frames] == list(range(len(frames)))  # a seq of its own
        counts = report.audio[source]
        assert (counts.captured, counts.sent, counts.dropped) == (len(frames), len(frames), 0)
        recorded = recorded_pcm(record_dir, session.ids.session_id, source)
        assert recorded == b"".join(frame.pcm for frame in frames)
    assert set(session.current.levels) == {"system", "mic"}
    assert {e.source for e in events if isinstance(e, AudioLevel)} == {"system", "mic"}
