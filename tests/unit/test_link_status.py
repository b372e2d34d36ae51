"""What each item of the retried link changes in the state: a pure mapping, no session."""

from __future__ import annotations

from operators.backoff import Retry
from pipeline import errors
from pipeline.protocol import Ack, AsrFinal, AsrPartial, FinalSummary, Metrics, Status
from pipeline.session import link_status
from pipeline.status import (
    BackendDropped,
    BackendStatus,
    Connecting,
    Reconnecting,
    Transcribed,
)


def test_a_retry_is_a_reconnection_with_its_reason() -> None:
    retry = Retry(attempt=3, delay=2.5, cause=errors.ConnectionLost("cannot connect"))
    assert link_status(retry, 9.0) == [
        Reconnecting(at=9.0, attempt=3, delay=2.5, cause="cannot connect")
    ]


def test_lifecycle_events_pass_as_they_are() -> None:
    connecting = Connecting(at=1.0, connection_id="c")
    assert link_status(connecting, 9.0) == [connecting]


def test_segments_are_transcribed_finals_and_partials() -> None:
    final = AsrFinal(text="hello", t0=0.0, t1=1.0, source="mic")
    partial = AsrPartial(text="hel", t0=0.0, t1=0.5)
    assert link_status(final, 2.0) == [Transcribed(at=2.0, source="mic", text="hello")]
    assert link_status(partial, 2.0) == [
        Transcribed(at=2.0, source="system", text="hel", partial=True)
    ]


def test_only_the_backends_own_statuses_reach_the_state() -> None:
    for state in ("connected", "streaming", "error"):
        assert link_status(Status(state=state), 1.0) == []
    assert link_status(Status(state="overloaded", message="slow"), 1.0) == [
        BackendStatus(at=1.0, state="overloaded", message="slow")
    ]


def test_a_drop_figure_comes_first() -> None:
    status = Status(state="streaming", resumed=False, dropped_frames=4)
    assert link_status(status, 1.0) == [BackendDropped(at=1.0, source="", total=4)]
    metrics = Metrics(source="mic", dropped_total=2)
    assert link_status(metrics, 1.0) == [BackendDropped(at=1.0, source="mic", total=2)]


def test_other_events_change_nothing_in_the_state() -> None:
    assert link_status(Ack(source="system", seq=1), 1.0) == []
    assert link_status(FinalSummary(), 1.0) == []
