"""The AppState reducer: pure, and every phase reachable from status events."""

from __future__ import annotations

from functools import reduce as fold

import reactivex
from reactivex import operators as ops

from pipeline.errors import FailureKind
from pipeline.outbox import SourceCounts
from pipeline.state import AppState, Phase, reduce
from pipeline.status import (
    AudioCounts,
    BackendStatus,
    Connected,
    Connecting,
    Failed,
    Finalizing,
    Reconnecting,
    Started,
    StatusEvent,
    Stopped,
    Streaming,
    Transcribed,
)


def play(*events: StatusEvent) -> AppState:
    return fold(reduce, events, AppState())


START = Started(at=0.0, session_id="s", attempt_id="a")


def test_happy_path_phases() -> None:
    states: list[AppState] = []
    events: list[StatusEvent] = [
        START,
        Connecting(at=0.1, connection_id="c1"),
        Connected(at=0.2, connection_id="c1"),
        Streaming(at=0.3, connection_id="c1", protocol="0.3", resumed=None),
        Finalizing(at=5.0),
        Stopped(at=5.5),
    ]
    reactivex.from_iterable(events).pipe(ops.scan(reduce, AppState())).subscribe(states.append)

    assert [s.phase for s in states] == [
        Phase.CONNECTING,
        Phase.CONNECTING,
        Phase.CONNECTING,
        Phase.STREAMING,
        Phase.FINALIZING,
        Phase.STOPPED,
    ]
    final = states[-1]
    assert final.session_id == "s" and final.connection_id == "c1" and final.protocol == "0.3"
    assert final.connected_time == 5.5 - 0.3
    assert final.reconnects == 0 and final.downtime == 0.0


def test_reconnection_counts_downtime_and_resume_outcome() -> None:
    state = play(
        START,
        Connecting(at=0.0, connection_id="c1"),
        Streaming(at=1.0, connection_id="c1", protocol="0.3", resumed=None),
        Reconnecting(at=4.0, attempt=1, delay=0.7, cause="connection lost"),
    )
    assert state.phase is Phase.RECONNECTING
    assert (state.attempt, state.retry_delay, state.cause) == (1, 0.7, "connection lost")
    assert state.retry_in(4.2) is not None and abs(state.retry_in(4.2) - 0.5) < 1e-9  # type: ignore[operator]

    state = fold(
        reduce,
        [
            Connecting(at=4.7, connection_id="c2"),
            Reconnecting(at=4.8, attempt=2, delay=1.5, cause="refused"),
            Connecting(at=6.3, connection_id="c3"),
            Streaming(at=6.5, connection_id="c3", protocol="0.3", resumed=True),
        ],
        state,
    )
    assert state.phase is Phase.STREAMING
    assert state.reconnects == 1  # one outage, however many attempts it took
    assert state.downtime == 6.5 - 4.0
    assert state.last_resume == "resumed" and state.resumes == 1 and state.resets == 0
    assert state.attempt == 0 and state.retry_at is None
    assert state.connected_time == 3.0

    state = fold(
        reduce,
        [
            Reconnecting(at=10.0, attempt=1, delay=0.1, cause="lost"),
            Streaming(at=10.5, connection_id="c4", protocol="0.3", resumed=False),
        ],
        state,
    )
    assert state.last_resume == "session reset" and state.resets == 1
    assert state.reconnects == 2


def test_initial_connection_failures_are_not_reconnects() -> None:
    state = play(
        START,
        Connecting(at=0.0, connection_id="c1"),
        Reconnecting(at=0.1, attempt=1, delay=1.0, cause="refused"),
        Connecting(at=1.1, connection_id="c2"),
        Streaming(at=1.2, connection_id="c2", protocol="0.2", resumed=None),
    )
    assert state.reconnects == 0 and state.downtime == 0.0
    assert state.phase is Phase.STREAMING and state.protocol == "0.2"


def test_failure_keeps_the_reason() -> None:
    state = play(
        START, Failed(at=1.0, reason="unauthorized: bad token", kind=FailureKind.UNAUTHORIZED)
    )
    assert state.phase is Phase.FAILED
    assert state.failure == "unauthorized: bad token"
    assert state.failure_kind == "unauthorized"
    assert state.ended_at == 1.0


def test_finishing_survives_a_reconnect() -> None:
    state = play(
        START,
        Streaming(at=1.0, connection_id="c1", protocol="0.3", resumed=None),
        Finalizing(at=2.0),
        Reconnecting(at=2.5, attempt=1, delay=0.5, cause="lost"),
        Streaming(at=3.0, connection_id="c2", protocol="0.3", resumed=True),
    )
    assert state.phase is Phase.FINALIZING


def test_backend_status_counts_levels_and_transcript() -> None:
    counts = {"system": SourceCounts(captured=10, sent=8, buffered=2, acked=5)}
    state = play(
        START,
        BackendStatus(at=1.0, state="backpressure", message="behind"),
        AudioCounts(at=1.1, counts=counts),
        Transcribed(at=1.2, source="system", text="hello", partial=True),
        Transcribed(at=1.3, source="system", text="hello world"),
    )
    assert state.backend_busy and state.backend_message == "behind"
    assert state.audio["system"].buffered == 2
    assert state.totals().captured == 10
    assert state.finals == 1 and state.last_text == "hello world" and state.partial_text == ""


def test_reduce_is_pure() -> None:
    before = play(START)
    event = Reconnecting(at=1.0, attempt=1, delay=1.0, cause="x")
    assert reduce(before, event) == reduce(before, event)
    assert before.phase is Phase.CONNECTING
