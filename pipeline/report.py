"""What a session did, in one value: built from the final state, the transcript and summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import errors
from pipeline.outbox import SourceCounts
from pipeline.protocol import AsrFinal, FinalSummary
from pipeline.state import AppState, Phase


@dataclass(frozen=True)
class SessionReport:
    session_id: str
    outcome: str  # "completed", "stopped" or "failed"
    reason: str | None
    failure_kind: errors.FailureKind | None
    duration: float
    connected_time: float
    downtime: float
    reconnects: int
    resumes: int
    resets: int
    protocol: str | None
    audio: Mapping[str, SourceCounts]
    transcript: tuple[AsrFinal, ...] = ()
    backend_dropped: int = 0  # frames the backend said it dropped (not transcribed)
    summary: FinalSummary | None = field(default=None, repr=False)
    untranscribed: str | None = None  # the backend had no recogniser for some audio: why
    error: Exception | None = field(default=None, repr=False, compare=False)

    def raise_for_failure(self) -> None:
        """Raise why the session failed (`Unauthorized`, `BadConfig`, `TlsError`, `GaveUp`,
        `AudioDeviceError`, ...); do nothing when it completed or was stopped."""
        if self.outcome == "failed":
            raise self.error or failure_error(self.failure_kind, self.reason)

    @property
    def totals(self) -> SourceCounts:
        return sum(self.audio.values(), SourceCounts())

    @property
    def frames_lost(self) -> int:
        """Frames known not to have been transcribed: dropped by the outbox over its bound,
        dropped by the backend (as it said), or never delivered. Unconfirmed frames (written
        but never confirmed: they may have arrived) are `frames_unconfirmed`, not here."""
        totals = self.totals
        return totals.dropped + self.backend_dropped + totals.buffered

    @property
    def frames_unconfirmed(self) -> int:
        return self.totals.unconfirmed

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.transcript if segment.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "failure_kind": self.failure_kind,
            "duration_s": round(self.duration, 3),
            "connected_s": round(self.connected_time, 3),
            "downtime_s": round(self.downtime, 3),
            "reconnects": self.reconnects,
            "resumes": self.resumes,
            "session_resets": self.resets,
            "protocol": self.protocol,
            "frames_lost": self.frames_lost,
            "frames_unconfirmed": self.frames_unconfirmed,
            "frames_dropped_by_backend": self.backend_dropped,
            "audio": {source: asdict(counts) for source, counts in self.audio.items()},
            "segments": len(self.transcript),
            "untranscribed": self.untranscribed,
        }

    def lines(self) -> list[str]:
        """A readable summary, one fact per line."""
        totals = self.totals
        out = [
            f"outcome      {self.outcome}" + (f" ({self.reason})" if self.reason else ""),
            f"duration     {self.duration:.1f} s, streaming {self.connected_time:.1f} s",
            f"reconnects   {self.reconnects} (resumed {self.resumes}, session resets "
            f"{self.resets}), downtime {self.downtime:.1f} s",
            f"frames       captured {totals.captured}, sent {totals.sent}, acked {totals.acked}, "
            f"resent {totals.resent}",
            f"frames lost  {self.frames_lost} (dropped {totals.dropped}, dropped by the backend "
            f"{self.backend_dropped}, undelivered {totals.buffered}); unconfirmed "
            f"{totals.unconfirmed} (may have arrived)",
            f"transcript   {len(self.transcript)} segments",
        ]
        if self.summary is None and self.outcome != "failed":
            out.append("summary      never came: the backend did not confirm the end")
        if self.protocol:
            out.insert(2, f"protocol     v{self.protocol}")
        if self.untranscribed:
            out.append(f"not transcribed: {self.untranscribed}")
        return out


def build_report(
    state: AppState,
    transcript: tuple[AsrFinal, ...],
    summary: FinalSummary | None,
    *,
    stop_requested: bool = False,
    error: Exception | None = None,
) -> SessionReport:
    """`completed`: the audio ended and the backend confirmed; `stopped`: ended on request."""
    if state.phase is Phase.FAILED:
        outcome = "failed"
    elif state.phase is Phase.STOPPED and not stop_requested:
        outcome = "completed"
    else:
        outcome = "stopped"
    end = state.ended_at if state.ended_at is not None else state.updated_at
    return SessionReport(
        session_id=state.session_id or "",
        outcome=outcome,
        reason=state.failure,
        failure_kind=state.failure_kind,
        duration=max(0.0, end - (state.started_at or end)),
        connected_time=state.connected_time,
        downtime=state.downtime,
        reconnects=state.reconnects,
        resumes=state.resumes,
        resets=state.resets,
        protocol=state.protocol,
        audio=dict(state.audio),
        transcript=transcript,
        backend_dropped=state.backend_dropped,
        summary=summary,
        untranscribed=state.untranscribed or None,
        error=error,
    )


def failure_error(kind: str | None, reason: str | None) -> Exception:
    """The typed exception of a failure known only by its kind and reason."""
    message = reason or kind or "failed"
    return (errors.FailureKind.named(kind) or errors.FailureKind.ERROR).exception(message)
