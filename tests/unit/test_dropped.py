"""Frames the backend says it dropped: folded into the state per backend session."""

from __future__ import annotations

from functools import reduce as fold

from pipeline.dropped import BackendDrops, reported_drop
from pipeline.outbox import SourceCounts
from pipeline.protocol import Metrics, Status
from pipeline.report import build_report
from pipeline.state import AppState, reduce
from pipeline.status import (
    AudioCounts,
    BackendDropped,
    Reconnecting,
    Started,
    StatusEvent,
    Stopped,
    Streaming,
)
from sinks.console import counts_text


def play(*events: StatusEvent) -> AppState:
    return fold(reduce, events, AppState())


def streaming(at: float, resumed: bool | None, protocol: str = "0.3") -> Streaming:
    return Streaming(at=at, connection_id=f"c{at}", protocol=protocol, resumed=resumed)


def test_metrics_and_backpressure_carry_drop_figures() -> None:
    metrics = reported_drop(Metrics(source="mic", dropped_total=7), at=1.0)
    assert metrics == BackendDropped(at=1.0, source="mic", total=7)
    status = reported_drop(Status(state="backpressure", dropped_frames=9), at=2.0)
    assert status == BackendDropped(at=2.0, source="", total=9)
    assert reported_drop(Metrics(source="mic", dropped_total=0), at=1.0) is None
    assert reported_drop(Status(state="warning"), at=1.0) is None


def test_running_totals_of_one_backend_session_are_not_added_up() -> None:
    drops = BackendDrops().reported("system", 5).reported("system", 12).reported("system", 3)
    assert drops.total == 12
    # a status naming no source, beside per-source metrics: the larger reading wins
    assert drops.reported("", 10).total == 12
    assert drops.reported("mic", 4).reported("", 20).total == 20


def test_a_resume_keeps_counting_a_new_backend_session_adds_up() -> None:
    state = play(
        Started(at=0.0, session_id="s", attempt_id="a"),
        streaming(0.1, None),
        BackendDropped(at=1.0, source="system", total=40),
        Reconnecting(at=2.0, attempt=1, delay=0.1, cause="x"),
        streaming(2.2, True),  # v0.3 resume: the backend's total goes on from 40
        BackendDropped(at=3.0, source="system", total=55),
        Reconnecting(at=4.0, attempt=1, delay=0.1, cause="x"),
        streaming(4.2, False, protocol="0.2"),  # a new backend session starts at 0
        BackendDropped(at=5.0, source="system", total=10),
    )
    assert state.backend_dropped == 65


def test_the_report_and_the_view_never_say_nothing_was_lost_beside_backend_drops() -> None:
    counts = SourceCounts(captured=100, sent=100, acked=100)
    state = play(
        Started(at=0.0, session_id="s", attempt_id="a"),
        streaming(0.1, None, protocol="0.2"),
        AudioCounts(at=1.0, counts={"system": counts}),
        BackendDropped(at=1.0, source="", total=30),
        Stopped(at=2.0),
    )
    report = build_report(state, (), None)
    assert report.frames_lost == 30 and report.backend_dropped == 30
    assert report.to_dict()["frames_dropped_by_backend"] == 30
    lines = "\n".join(report.lines())
    assert "frames lost  30 (dropped 0, dropped by the backend 30, undelivered 0)" in lines
    assert "frames lost  0" not in lines
    assert "summary      never came" in lines
    assert "dropped by backend 30" in counts_text(state)


def test_unconfirmed_is_not_lost() -> None:
    counts = SourceCounts(captured=100, sent=100, acked=90, unconfirmed=10)
    state = play(
        Started(at=0.0, session_id="s", attempt_id="a"),
        AudioCounts(at=1.0, counts={"system": counts}),
        Stopped(at=2.0),
    )
    report = build_report(state, (), None)
    assert report.frames_lost == 0 and report.frames_unconfirmed == 10
    assert "unconfirmed 10 (may have arrived)" in "\n".join(report.lines())
    assert "unconfirmed 10" in counts_text(state)
