"""Readable status lines: one line whenever the phase (or the resume outcome) changes."""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

from reactivex import Observable, abc
from reactivex import operators as ops

from pipeline.state import AppState, Phase

if TYPE_CHECKING:
    from pipeline.session import Session


def phase_key(state: AppState) -> tuple[object, ...]:
    return (state.phase, state.attempt, state.connection_id, state.last_resume)


def status_line(state: AppState) -> str:
    """The state in one human line, e.g. "reconnecting: attempt 1 in 0.7 s (...)"."""
    match state.phase:
        case Phase.CONNECTING:
            return "connecting" + (f" (attempt {state.attempt})" if state.attempt else "")
        case Phase.STREAMING | Phase.FINALIZING if state.streaming_since is not None:
            how = f", {state.last_resume}" if state.last_resume and state.reconnects else ""
            word = "finishing" if state.phase is Phase.FINALIZING else "streaming"
            return f"{word} (protocol v{state.protocol}{how})"
        case Phase.FINALIZING:
            return "finishing: audio ended, waiting to deliver the rest"
        case Phase.RECONNECTING:
            return (
                f"reconnecting: attempt {state.attempt} in {state.retry_delay or 0:.1f} s"
                f" ({state.cause})"
            )
        case Phase.STOPPED:
            return "stopped"
        case Phase.FAILED:
            return f"failed: {state.failure}"
    return state.phase.value


def _active(state: AppState) -> bool:
    return state.phase is not Phase.IDLE


def print_status(session: Session, out: IO[str] = sys.stdout) -> abc.DisposableBase:
    """Print a line each time the session's phase changes."""
    active: Observable[AppState] = session.state.pipe(
        ops.filter(_active), ops.distinct_until_changed(phase_key)
    )
    lines: Observable[str] = active.pipe(ops.map(status_line), ops.distinct_until_changed())
    return lines.subscribe(lambda line: print(line, file=out, flush=True))
