"""What a UI shows of the session state, and how often it needs to hear about it.

`Session.state` passes a state at once when its headline changes (phase, attempt and
countdown, protocol, backend status, transcript, failure) and counts and levels at most
`STATE_EVERY_S` apart (4 times a second); a state that shows nothing new is not emitted.
"""

from __future__ import annotations

from pipeline.state import AppState

STATE_EVERY_S = 0.25  # counts and levels reach `Session.state` at most this often


def headline(state: AppState) -> tuple[object, ...]:
    """Everything shown except the numbers that tick with the audio."""
    return (
        state.phase,
        state.attempt,
        state.retry_at,
        state.cause,
        state.protocol,
        state.last_resume,
        state.reconnects,
        state.backend_state,
        state.backend_message,
        state.finals,
        state.partial_text,
        state.failure,
        state.stopping,
    )


def changed_headline(before: AppState, after: AppState) -> bool:
    return headline(before) != headline(after)


def shows_the_same(before: AppState, after: AppState) -> bool:
    return (before.audio, before.levels) == (after.audio, after.levels)


def countdown(state: AppState, now: float) -> float | None:
    """Seconds until the next reconnection attempt, or None when none is pending.

    `now` is the session's clock (`Session.now()`), not wall-clock time: with a live
    session use `Session.retry_in()`, which reads it for you.
    """
    return state.retry_in(now)
