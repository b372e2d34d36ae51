"""The `final_summary` a session ends with: its transcript, as markdown and as data,
and per source what was received, recognised, dropped and recorded."""

from __future__ import annotations

from typing import Any

from backend.recording import Recording
from backend.store import BackendSession
from pipeline.audio import BYTES_PER_SECOND
from pipeline.protocol import FinalSummary


def final_summary(session: BackendSession) -> FinalSummary:
    transcript = session.transcript()
    return FinalSummary(
        markdown=_markdown(transcript),
        json={
            "session_id": session.session_id,
            "transcript": transcript,
            "sources": {
                source: {
                    "received_s": round(stream.received_bytes / BYTES_PER_SECOND, 3),
                    "recognized_s": round(stream.handed_seconds, 3),
                    "dropped_frames": stream.dropped_total,
                    "recognizer": stream.recognizing,
                    **_recorded(stream.recording),
                    "duplicates": stream.duplicates,
                    "gaps": stream.gaps,
                }
                for source, stream in session.streams.items()
            },
        },
    )


def _recorded(recording: Recording | None) -> dict[str, Any]:
    """Whether the source's audio is on disk, and if its recording stopped, why."""
    failed = None if recording is None else recording.failed
    return {"recorded": recording is not None and failed is None, "recording_error": failed}


def _markdown(transcript: list[dict[str, Any]]) -> str:
    if not transcript:
        return "# Transcript\n\n_(no speech recognised)_\n"
    lines = ["# Transcript", ""]
    for final in transcript:
        lines.append(f"- **[{_clock(final['t0'])}] {final['source']}:** {final['text']}")
    return "\n".join(lines) + "\n"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"
