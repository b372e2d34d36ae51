"""The command's exit codes, and the one mapping from how a session ended to a code.

Scripts and service managers act on these, so each means one thing:

    0   done: the audio ended and the backend confirmed it (or `devices`/`serve` finished)
    1   an unexpected error (a bug: the message and the logs say where)
    2   usage: the command line is wrong
    3   unauthorized: the backend refused the token
    4   bad configuration: the backend refused the session's settings, TLS could not be
        verified, an audio device or file is missing, a token variable is empty, the
        URL is not one, the recogniser of `demo`/`serve` is not installed
    5   gave up reconnecting: the backend stayed unreachable within the retry limits
    130 interrupted (Ctrl-C): the session was stopped cleanly and the transcript written
    143 terminated (SIGTERM): as 130
"""

from __future__ import annotations

import signal
from enum import IntEnum

from pipeline.errors import FailureKind
from pipeline.report import SessionReport


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    UNAUTHORIZED = 3
    BAD_CONFIG = 4
    GAVE_UP = 5
    INTERRUPTED = 128 + signal.SIGINT
    TERMINATED = 128 + signal.SIGTERM


_BY_FAILURE: dict[FailureKind, ExitCode] = {
    FailureKind.UNAUTHORIZED: ExitCode.UNAUTHORIZED,
    FailureKind.BAD_CONFIG: ExitCode.BAD_CONFIG,
    FailureKind.TLS: ExitCode.BAD_CONFIG,
    FailureKind.AUDIO: ExitCode.BAD_CONFIG,
    FailureKind.GAVE_UP: ExitCode.GAVE_UP,
    FailureKind.ERROR: ExitCode.ERROR,
}

_FIXES = {
    ExitCode.UNAUTHORIZED: "check the token (--token-env VAR names the variable holding it)",
    ExitCode.GAVE_UP: "check that the backend runs at that address, or raise --max-attempts",
}


def for_signal(signum: int) -> ExitCode:
    """The code of a session stopped cleanly on `signum` (SIGINT or SIGTERM)."""
    return ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED


def for_report(report: SessionReport, *, signalled: int | None = None) -> ExitCode:
    """How a session ended, as an exit code. `signalled`: the signal that stopped it."""
    if report.outcome == "failed":
        return _BY_FAILURE[report.failure_kind or FailureKind.ERROR]
    if signalled is not None:
        return for_signal(signalled)
    return ExitCode.OK


def failure_line(report: SessionReport) -> str | None:
    """One line for stderr saying why the session failed and what to do; None if it did not."""
    if report.outcome != "failed":
        return None
    code = for_report(report)
    line = f"live-listener: {report.reason or report.failure_kind or 'failed'}"
    fix = _FIXES.get(code)
    return f"{line}; {fix}" if fix else line


class ExitError(Exception):
    """A reason to end the command before (or instead of) a session, with its exit code.
    The message is one line for stderr that names the fix."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
