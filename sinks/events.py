"""The session's events as JSON lines, one object per event (`live-listener listen --events
jsonl`), for programs that drive the command. The schema (version `SCHEMA`):

    {"type": "started", "schema": 1, "session_id": "...", "url": "...", "sources": ["mic"]}
    {"type": "phase", "at": 0.0, "phase": "connecting", "attempt": 0, "delay": null,
     "cause": null, "protocol": null, "resumed": null}
    {"type": "partial" | "final", "source": "mic", "text": "...", "t0": 1.2, "t1": 3.4,
     "confidence": 0.9, "segment_id": "mic-3"}
    {"type": "backend_status", "at": 3.0, "state": "backpressure", "message": "..."}
    {"type": "end", "report": {...}}      # SessionReport.to_dict(): outcome, counts, ...
    {"type": "missed", "count": 3}        # lines dropped before this one (see below)

`at` is seconds since the session started (its first event, `connecting`, is at 0);
`phase` is one of idle, connecting, streaming, reconnecting, finalizing, stopped, failed
(while reconnecting, `delay` is the wait before attempt `attempt` and `cause` the last
failure). Fields may be added; none is removed or
changes meaning within a schema version. Each line is written as soon as the reader takes
it; a reader that stops reading never holds up the audio: past `MAX_LINES` waiting lines,
new ones are dropped and a `missed` line says how many (sinks/line_writer.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from reactivex import abc

from pipeline.events import Ended, Missed, PhaseChanged, SessionEvent, session_events
from pipeline.protocol import AsrFinal, AsrPartial
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.status import BackendStatus
from sinks.line_writer import LineWriter

SCHEMA = 1


def event_record(event: SessionEvent, origin: float = 0.0) -> dict[str, Any]:
    """One event as a JSON-ready dict (the schema above); `at` counts from `origin`."""
    match event:
        case PhaseChanged():
            return {
                "type": "phase",
                "at": round(event.at - origin, 3),
                "phase": event.phase.value,
                "attempt": event.attempt,
                "delay": None if event.delay is None else round(event.delay, 3),
                "cause": event.cause,
                "protocol": event.protocol,
                "resumed": event.resumed,
            }
        case AsrFinal() | AsrPartial():
            return {
                "type": "final" if isinstance(event, AsrFinal) else "partial",
                "source": event.source,
                "text": event.text,
                "t0": round(event.t0, 3),
                "t1": round(event.t1, 3),
                "confidence": event.confidence,
                "segment_id": event.segment_id,
            }
        case BackendStatus():
            return {
                "type": "backend_status",
                "at": round(event.at - origin, 3),
                "state": event.state,
                "message": event.message,
            }
        case Missed(count=count):
            return {"type": "missed", "count": count}
        case Ended(report=report):
            return {"type": "end", "report": report.to_dict()}


class EventLines:
    """Writes a session's events to `out` as they happen; `close(report)` writes the end."""

    def __init__(self, session: Session, out: IO[str], sources: Sequence[str]) -> None:
        self.out = out
        self.writer = LineWriter(out, lambda count: _line({"type": "missed", "count": count}))
        self._subscription: abc.DisposableBase | None = None
        self._write(
            {
                "type": "started",
                "schema": SCHEMA,
                "session_id": session.ids.session_id,
                "url": session.config.url,
                "sources": list(sources),
            }
        )
        self._origin: float | None = None  # the session's start: the first event's `at`
        self._subscription = session_events(session).subscribe(self._on_event)

    def close(self, report: SessionReport | None) -> str | None:
        """Write the end; None when every line was written, else a sentence saying what
        was not (the reader stopped reading)."""
        if self._subscription is None:
            return None
        self._subscription.dispose()
        self._subscription = None
        if report is not None:
            self._write(event_record(Ended(report)))
        if self.writer.close() and not self.writer.dropped:
            return None
        return (
            f"the event stream was not read: {self.writer.written} of "
            f"{self.writer.queued + self.writer.dropped} lines written"
        )

    def _on_event(self, event: SessionEvent) -> None:
        at = getattr(event, "at", None)
        if self._origin is None and at is not None:
            self._origin = at
        self._write(event_record(event, self._origin or 0.0))

    def _write(self, record: dict[str, Any]) -> None:
        self.writer.write(_line(record))


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
