"""A session in the foreground of a terminal: its sinks, Ctrl-C, and the closing report.

Ctrl-C (or SIGTERM) does not kill the session: it ends capture, delivers what is held,
sends `stop` and waits — up to the config's `stop_timeout` — for the final summary, so
the transcript ends complete. A second Ctrl-C stops at once. Either way the transcript
files get the summary and the report is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

from pipeline.cli.exit_codes import ExitCode, ExitError, for_report
from pipeline.report import SessionReport
from pipeline.session import Session
from sinks.console import ConsoleSink
from sinks.log import log_status
from sinks.transcript import TranscriptPaths, TranscriptSink

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Outcome:
    report: SessionReport
    transcript: TranscriptPaths
    signalled: int | None = None  # the signal that stopped the session, if one did

    @property
    def exit_code(self) -> ExitCode:
        return for_report(self.report, signalled=self.signalled)


def closing_lines(
    report: SessionReport,
    transcript: TranscriptPaths,
    segments: int,
    error: OSError | None = None,
) -> list[str]:
    """What is printed when a session ends: the report, then where the transcript is."""
    if not streamed(report):
        return ["", *report.lines(), "saved        nothing (the session never streamed)"]
    saved = f"saved        {transcript.markdown} ({segments} segments; JSON lines: "
    saved += f"{transcript.jsonl.name})"
    if error is not None:
        saved += f"; NOT complete, writing failed: {error}"
    return ["", *report.lines(), saved]


def streamed(report: SessionReport) -> bool:
    """Whether the backend ever accepted the session (a protocol was agreed)."""
    return report.protocol is not None


def _open(transcript: TranscriptSink) -> None:
    """Open the transcript files before the session starts: a path that cannot be written
    is a configuration error, found before any audio is captured."""
    try:
        transcript.open()
    except OSError as exc:
        raise ExitError(
            ExitCode.BAD_CONFIG,
            f"cannot write the transcript {transcript.paths.markdown} ({exc.strerror}: "
            f"{exc.filename}); pass --transcript with a writable path",
        ) from exc


async def run_in_foreground(
    session: Session, console: ConsoleSink, transcript: TranscriptSink
) -> Outcome:
    """Run `session` with both sinks attached until it ends or is stopped by a signal."""
    loop = asyncio.get_running_loop()
    signals: list[int] = []
    stopping: list[asyncio.Task[None]] = []
    wait = session.config.stop_timeout

    def on_signal(signum: int) -> None:
        signals.append(signum)
        if len(signals) == 1:
            console.note(
                f"stopping: delivering what is buffered and waiting up to {wait:.0f} s for "
                "the final summary (Ctrl-C again to stop now)"
            )
            stopping.append(loop.create_task(session.stop()))
        else:
            console.note("stopping now")
            stopping.append(loop.create_task(session.stop(0)))

    _open(transcript)
    installed = []
    for signum in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    report: SessionReport | None = None
    logging = log_status(session)
    try:
        with console:
            report = await session.run()
    finally:
        logging.dispose()
        for signum in installed:
            loop.remove_signal_handler(signum)
        await asyncio.gather(*stopping, return_exceptions=True)
        if report is not None and not streamed(report):
            transcript.discard()
        else:
            transcript.close(report)
    console.print_lines(
        closing_lines(report, transcript.paths, transcript.segments, transcript.error)
    )
    return Outcome(report, transcript.paths, signals[0] if signals else None)
