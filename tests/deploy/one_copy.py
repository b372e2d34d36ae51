"""What "exactly one copy" means for a session that moved between instances: the
recording, assembled from every instance's segments, is the audio sent, byte for byte;
the transcript holds each final once, in order, without overlap."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

from backend.recording import assemble, segments
from pipeline.protocol import AsrFinal, ServerEvent
from pipeline.report import SessionReport

FRAME_SECONDS = 0.02


def check_recorded_once(
    roots: list[Path], session_id: str, sent: bytes, source: str = "system"
) -> None:
    """No frame twice, no frame missing, across the instances that held the session."""
    parts = segments(roots, session_id, source)
    assert len({part.attempt for part in parts}) == len(parts) >= 2  # it did move
    assert assemble(roots, session_id, source) == sent


def check_one_transcript(report: SessionReport, events: Iterable[ServerEvent]) -> None:
    """Each final once; one that was sent again on a resume is the same final."""
    transcript = list(report.transcript)
    assert transcript
    ids = [final.segment_id for final in transcript]
    assert len(ids) == len(set(ids))
    received = {(e.segment_id, e.text, e.t0, e.t1) for e in events if isinstance(e, AsrFinal)}
    assert len(received) == len(transcript)  # no id ever carried two different finals
    assert [f.t0 for f in transcript] == sorted(f.t0 for f in transcript)
    # a resumed recogniser starts at the frame holding the last final's end
    assert all(a.t1 <= b.t0 + FRAME_SECONDS for a, b in itertools.pairwise(transcript))
