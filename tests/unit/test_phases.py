"""Phase spans from the AppState stream: the states a real reducer makes from status events."""

from __future__ import annotations

from itertools import accumulate

import pytest

from pipeline.errors import FailureKind
from pipeline.state import AppState, reduce
from pipeline.status import (
    AudioCounts,
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
from sinks.phases import PhaseSpan, phase_spans, span_label, time_in_phases


def states(*events: StatusEvent) -> list[AppState]:
    """What `session.state` emits: the initial state, then one state per event."""
    return list(accumulate(events, reduce, initial=AppState()))


def outage(at: float, cid: str, *, resumed: bool, delays: tuple[float, ...]) -> list[StatusEvent]:
    """The link drops at `at`; each delay is one retry; the last one streams again."""
    events: list[StatusEvent] = []
    t = at
    for attempt, delay in enumerate(delays, 1):
        events.append(Reconnecting(at=t, attempt=attempt, delay=delay, cause="connection lost"))
        t += delay
        events.append(Connecting(at=t, connection_id=f"{cid}-{attempt}"))
        t += 0.01
    events.append(Streaming(at=t, connection_id=cid, protocol="0.3", resumed=resumed))
    return events


START = [
    Started(at=0.0, session_id="s", attempt_id="a"),
    Connecting(at=0.0, connection_id="c1"),
    Connected(at=0.02, connection_id="c1"),
    Streaming(at=0.05, connection_id="c1", protocol="0.3", resumed=None),
]


def test_a_clean_session_is_connecting_streaming_finalizing_stopped() -> None:
    spans = phase_spans(
        states(
            *START,
            AudioCounts(at=1.0),
            Transcribed(at=2.0, source="system", text="hello"),
            Finalizing(at=3.0),
            Stopped(at=3.5),
        )
    )

    assert spans == [
        PhaseSpan("connecting", 0.0, 0.05),
        PhaseSpan("streaming", 0.05, 3.0),
        PhaseSpan("finalizing", 3.0, 3.5),
        PhaseSpan("stopped", 3.5, 3.5),
    ]


def test_each_retry_is_a_span_as_long_as_its_delay_and_streaming_after_is_resumed() -> None:
    delays = (0.1, 0.2, 0.4)
    events = [*START, *outage(1.0, "c2", resumed=True, delays=delays), Finalizing(at=4.0)]

    spans = phase_spans(states(*events))

    assert [s.label for s in spans] == [
        "connecting",
        "streaming",
        *["reconnecting", "connecting"] * 3,
        "resumed",
        "finalizing",
    ]
    retries = [s for s in spans if s.label == "reconnecting"]
    assert [s.attempt for s in retries] == [1, 2, 3]
    assert [s.delay for s in retries] == list(delays)
    assert [s.duration for s in retries] == pytest.approx(list(delays))
    assert all(s.cause == "connection lost" for s in retries)
    assert spans[1].end == retries[0].start == 1.0
    assert spans[-1] == PhaseSpan("finalizing", 4.0, 4.0)  # still going: ends at the last state


def test_a_session_reset_is_labelled_and_later_streaming_keeps_the_last_outcome() -> None:
    events = [
        *START,
        *outage(1.0, "c2", resumed=False, delays=(0.1,)),
        *outage(2.0, "c3", resumed=True, delays=(0.1,)),
        Failed(at=3.0, reason="bad token", kind=FailureKind.UNAUTHORIZED),
    ]

    labels = [s.label for s in phase_spans(states(*events))]

    assert labels == [
        "connecting",
        "streaming",
        "reconnecting",
        "connecting",
        "reset",
        "reconnecting",
        "connecting",
        "resumed",
        "failed",
    ]


def test_time_in_phases_adds_up_to_the_session() -> None:
    events = [*START, *outage(1.0, "c2", resumed=True, delays=(0.5, 1.0)), Stopped(at=5.0)]

    totals = time_in_phases(phase_spans(states(*events)))

    assert list(totals) == ["connecting", "streaming", "reconnecting", "resumed", "stopped"]
    assert totals["reconnecting"] == pytest.approx(1.5)
    assert totals["streaming"] == pytest.approx(0.95)
    assert sum(totals.values()) == pytest.approx(5.0)


def test_no_states_or_only_idle_give_no_spans() -> None:
    assert phase_spans([]) == []
    assert phase_spans([AppState()]) == []
    assert span_label(AppState()) == "idle"
