"""The transcript on disk: Markdown for people, JSON lines for programs, written as it comes.

Each final segment is appended to both files and flushed the moment it arrives, so a
crash (or a kill) loses nothing that was already final. The files are opened in append
mode: pointing two sessions at the same path keeps both.

    talk.md     # Transcript ... then one paragraph per segment, then the summary
    talk.jsonl  {"type": "final", "t0": 1.2, "t1": 3.4, "text": "...", ...} per segment,
                {"type": "report", ...} at the end

Formatting is pure (`markdown_header`, `markdown_segment`, `json_segment`, ...); the sink
only opens, appends and flushes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from loguru import logger
from reactivex import Observable, abc
from reactivex import operators as ops

from pipeline.protocol import AsrFinal, ServerEvent
from pipeline.report import SessionReport
from sinks.console import clock_time

SUFFIXES = (".md", ".jsonl")


@dataclass(frozen=True, slots=True)
class TranscriptPaths:
    markdown: Path
    jsonl: Path


def transcript_paths(path: str | Path) -> TranscriptPaths:
    """`talk.md`, `talk.jsonl` or `talk` all name the pair talk.md + talk.jsonl."""
    path = Path(path).expanduser()
    stem = path.with_suffix("") if path.suffix in SUFFIXES else path
    return TranscriptPaths(
        markdown=stem.with_name(stem.name + ".md"), jsonl=stem.with_name(stem.name + ".jsonl")
    )


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """Where transcripts go by default: $XDG_DATA_HOME/live-listener (~/.local/share/...)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/share")
    return Path(base) / "live-listener" / "transcripts"


def default_transcript_path(
    session_id: str, started: datetime, environ: Mapping[str, str] | None = None
) -> Path:
    """A new file per session, named by its start time and the session id's first part."""
    return data_home(environ) / f"{started:%Y%m%d-%H%M%S}-{session_id[:8]}"


def markdown_header(session_id: str, started: datetime, backend: str, audio: str) -> str:
    return (
        f"# Transcript {started:%Y-%m-%d %H:%M:%S}\n\n"
        f"- session: `{session_id}`\n"
        f"- backend: {backend}\n"
        f"- audio: {audio}\n\n"
    )


def markdown_segment(final: AsrFinal) -> str:
    """One paragraph per segment: its time span in the source's audio, source and text."""
    return (
        f"**[{clock_time(final.t0)} → {clock_time(final.t1)}]** _{final.source}_ {final.text}\n\n"
    )


def markdown_footer(report: SessionReport) -> str:
    body = "\n".join(report.lines())
    return f"## Summary\n\n```\n{body}\n```\n\n"


def json_segment(session_id: str, final: AsrFinal) -> str:
    record: dict[str, Any] = {
        "type": "final",
        "session_id": session_id,
        "source": final.source,
        "t0": round(final.t0, 3),
        "t1": round(final.t1, 3),
        "text": final.text,
        "confidence": final.confidence,
        "segment_id": final.segment_id,
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def json_report(report: SessionReport) -> str:
    """The report; `final_summary` says whether the backend confirmed the end."""
    record = {"type": "report", **report.to_dict(), "final_summary": report.summary is not None}
    return json.dumps(record, ensure_ascii=False) + "\n"


class TranscriptSink:
    """Appends every final among `events` (a session's `events`) to `paths` as it arrives;
    `close(report)` adds the summary.

    A write that fails once the session runs (a full disk) never reaches the session —
    streaming goes on — but stops the files and is kept in `error` for the report.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        session_id: str,
        events: Observable[ServerEvent],
        backend: str,
        audio: str,
        started: datetime | None = None,
    ) -> None:
        self.session_id, self.events = session_id, events
        self.paths = transcript_paths(path)
        self.backend, self.audio = backend, audio
        self.started = started or datetime.now().astimezone()
        self.segments = 0
        self.error: OSError | None = None
        self._files: tuple[IO[str], IO[str]] | None = None
        self._subscription: abc.DisposableBase | None = None
        self._created: list[Path] = []  # files this sink made (not appended to)

    def __enter__(self) -> TranscriptSink:
        self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Create the files (and their directory), write the header, start listening.

        Raises OSError when the files cannot be created — before any audio is captured.
        """
        self.paths.markdown.parent.mkdir(parents=True, exist_ok=True)
        self._created = [
            path for path in (self.paths.markdown, self.paths.jsonl) if not path.exists()
        ]
        markdown = self.paths.markdown.open("a", encoding="utf-8")
        try:
            jsonl = self.paths.jsonl.open("a", encoding="utf-8")
        except OSError:
            markdown.close()
            raise
        self._files = (markdown, jsonl)
        header = markdown_header(self.session_id, self.started, self.backend, self.audio)
        try:
            self._write_through(header, None)
        except OSError:
            self._close_files()
            raise
        self._subscription = self.events.pipe(
            ops.filter(lambda event: isinstance(event, AsrFinal)),
            ops.map(lambda event: cast(AsrFinal, event)),
        ).subscribe(self.write)

    def write(self, final: AsrFinal) -> None:
        """Append one final to both files and flush them."""
        self.segments += 1
        self._append(markdown_segment(final), json_segment(self.session_id, final))

    def close(self, report: SessionReport | None = None) -> None:
        """Stop listening; with a report, append the summary. Idempotent."""
        if self._subscription is not None:
            self._subscription.dispose()
            self._subscription = None
        if self._files is None:
            return
        if report is not None:
            self._append(markdown_footer(report), json_report(report))
        self._close_files()

    def discard(self) -> None:
        """Close and remove the files this sink created (a session that never streamed
        leaves no empty transcript behind); files it appended to stay."""
        self.close()
        for path in self._created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._created = []

    def _append(self, markdown: str | None, jsonl: str | None) -> None:
        if self._files is None:
            return
        try:
            self._write_through(markdown, jsonl)
        except OSError as exc:
            self.error = exc
            logger.warning("transcript not written any further: {}", exc)
            self._close_files()

    def _write_through(self, markdown: str | None, jsonl: str | None) -> None:
        assert self._files is not None
        for file, text in zip(self._files, (markdown, jsonl), strict=True):
            if text:
                file.write(text)
                file.flush()

    def _close_files(self) -> None:
        files, self._files = self._files, None
        for file in files or ():
            with contextlib.suppress(OSError):  # what could not be flushed is in `error`
                file.close()
