"""The AppState stream as a table of phase spans: "from t0 to t1 the session was X".

A timeline of a session (when it streamed, when it waited to reconnect and for how long,
when it resumed) and time-in-phase figures both come from this table. Pure: give it the
states in the order the session emitted them (`session.state.subscribe(states.append)`).

Labels are the phases of `pipeline.state.Phase`, except that streaming after a reconnect
is labelled by how the backend took the session back: `resumed` or `reset`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.state import AppState, Phase

RESUMED = "resumed"
RESET = "reset"
TERMINAL = frozenset({Phase.STOPPED.value, Phase.FAILED.value})


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """One phase, from `start` to `end` (scheduler seconds). For `reconnecting`: which
    attempt, the delay the backoff chose before it, and the failure that caused it."""

    label: str
    start: float
    end: float
    attempt: int = 0
    delay: float | None = None
    cause: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


def span_label(state: AppState) -> str:
    if state.phase is Phase.STREAMING and state.reconnects:
        return RESUMED if state.last_resume == "resumed" else RESET
    return state.phase.value


def _key(state: AppState) -> tuple[object, ...]:
    if state.phase is Phase.RECONNECTING:
        return (span_label(state), state.attempt, state.retry_at)
    return (span_label(state),)


def phase_spans(states: Iterable[AppState]) -> list[PhaseSpan]:
    """Consecutive states of one phase (one retry, for `reconnecting`) folded into spans.

    Each span ends where the next begins; the last one ends at the session's end (a
    terminal `stopped`/`failed` span has no length) or at the last state seen.
    """
    spans: list[PhaseSpan] = []
    key: tuple[object, ...] | None = None
    last: AppState | None = None
    for state in states:
        if state.phase is Phase.IDLE:
            continue
        last = state
        if _key(state) == key:
            continue
        key = _key(state)
        at = state.updated_at
        if spans:
            spans[-1] = _ended(spans[-1], at)
        reconnecting = state.phase is Phase.RECONNECTING
        spans.append(
            PhaseSpan(
                label=span_label(state),
                start=at,
                end=at,
                attempt=state.attempt if reconnecting else 0,
                delay=state.retry_delay if reconnecting else None,
                cause=state.cause if reconnecting else None,
            )
        )
    if spans and last is not None and spans[-1].label not in TERMINAL:
        end = last.ended_at if last.ended_at is not None else last.updated_at
        spans[-1] = _ended(spans[-1], end)
    return spans


def _ended(span: PhaseSpan, at: float) -> PhaseSpan:
    return PhaseSpan(span.label, span.start, at, span.attempt, span.delay, span.cause)


def time_in_phases(spans: Iterable[PhaseSpan]) -> dict[str, float]:
    """Seconds spent in each label, in order of first appearance."""
    totals: dict[str, float] = {}
    for span in spans:
        totals[span.label] = totals.get(span.label, 0.0) + span.duration
    return totals
