"""Backends that lie or stumble: nothing they say releases audio that was never written,
transient faults stay transient, and what the client keeps about them is bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from loguru import logger

from operators.backoff import BackoffPolicy
from operators.distinct_recent import DEFAULT_LIMIT
from pipeline import errors
from pipeline.config import SessionConfig
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import Reconnecting, StatusEvent
from tests.integration import rogue
from tests.integration.test_session import chirp

FRAMES = 100  # 2 s of audio


def config(url: str, **overrides: Any) -> SessionConfig:
    overrides.setdefault("backoff", BackoffPolicy(initial=0.05, max_delay=0.2, max_attempts=10))
    overrides.setdefault("heartbeat", 1.0)
    return SessionConfig(url=url, **overrides)


async def stream(
    backend: rogue.Scripted, *, realtime: bool = False, **overrides: Any
) -> tuple[SessionReport, list[StatusEvent], Session]:
    async with rogue.serving(backend.handle) as url:
        session = Session(config(url, **overrides), from_samples(chirp(2.0), realtime=realtime))
        events: list[StatusEvent] = []
        session.status.subscribe(events.append)
        report = await asyncio.wait_for(session.run(), 30)
    return report, events, session


def delivered_exactly(report: SessionReport, backend: rogue.Scripted) -> None:
    counts = report.audio["system"]
    assert report.outcome == "completed", report.reason
    assert counts.captured == counts.acked == FRAMES
    assert report.frames_lost == 0 and report.frames_unconfirmed == 0
    assert sorted(backend.frames) == list(range(FRAMES))  # what was released, it has


@pytest.mark.parametrize("lie", ["ack_future", "next_seq_future"])
async def test_a_confirmation_of_frames_never_written_releases_nothing(lie: str) -> None:
    script = ["restart_after_10", lie] if lie == "next_seq_future" else [lie]
    backend = rogue.Scripted(script)
    logs: list[str] = []
    handler = logger.add(logs.append, level="WARNING", format="{message}")
    try:
        report, events, _ = await stream(backend)
    finally:
        logger.remove(handler)

    delivered_exactly(report, backend)
    causes = [e.cause for e in events if isinstance(e, Reconnecting)]
    assert sum("protocol violation" in cause for cause in causes) == 1
    assert any("protocol violation" in line for line in logs)


async def test_an_error_notice_then_a_restart_close_is_retried() -> None:
    backend = rogue.Scripted(["notice_then_1012"])
    report, events, _ = await stream(backend)

    delivered_exactly(report, backend)
    assert report.reconnects == 1 and report.resumes == 1
    assert [e.cause for e in events if isinstance(e, Reconnecting)] == [
        "the backend is restarting (close 1012)"
    ]


async def test_not_found_on_a_reconnect_after_streaming_is_retried() -> None:
    backend = rogue.Scripted(["restart_after_10", "http_404", "http_404"])
    report, events, _ = await stream(backend)

    delivered_exactly(report, backend)
    causes = [e.cause for e in events if isinstance(e, Reconnecting)]
    assert len(causes) == 3 and sum("HTTP 404" in cause for cause in causes) == 2


async def test_not_found_before_any_streaming_is_fatal() -> None:
    report, _, _ = await stream(rogue.Scripted(["http_404"]))
    assert report.outcome == "failed" and report.failure_kind == "bad_config"


async def test_a_flood_of_distinct_finals_keeps_the_dedup_memory_bounded() -> None:
    flood = DEFAULT_LIMIT * 3
    backend = rogue.Scripted(["flood"], flood=flood)
    report, _, session = await stream(backend)

    delivered_exactly(report, backend)
    assert len(report.transcript) == flood  # the replayed last one was a duplicate
    assert len(session._seen) == DEFAULT_LIMIT  # bounded by count, whatever the flood


async def test_a_frozen_v02_backend_costs_at_most_the_barrier_bound() -> None:
    """A v0.2 backend reads 10 frames and freezes for good; live audio goes on. Barriers
    stop coming back: after the bound (1 s on loopback, 50 frames) the writer holds the
    frames for the next connection, found once the heartbeat (2 s) gives up."""
    backend = rogue.Scripted(["freeze_v02", "v02"])
    report, _, _ = await stream(backend, realtime=True, heartbeat=2.0, protocol="auto")

    counts = report.audio["system"]
    assert report.outcome == "completed", report.reason
    assert report.protocol == "0.2" and report.reconnects == 1
    # counted exactly: every frame confirmed, or unconfirmed; none dropped or left over
    assert counts.captured == counts.sent == counts.acked + counts.unconfirmed == FRAMES
    assert report.frames_lost == 0
    # what was at risk: the frames written after the last answered barrier, within the bound
    bound_frames = 50
    assert 0 < counts.unconfirmed <= bound_frames + 1
    # those the backend read are among them; those it never read are exactly the rest
    assert len(backend.frames) - counts.acked in (0, 1)


async def test_the_wait_for_a_summary_that_never_comes_is_bounded_by_stop_timeout() -> None:
    """The audio ends by itself; the backend confirms every frame but never answers `stop`."""
    backend = rogue.Scripted(["no_summary"])
    report, _, _ = await stream(backend, stop_timeout=0.5)

    counts = report.audio["system"]
    assert counts.captured == counts.acked == FRAMES and report.frames_lost == 0
    assert report.summary is None
    assert "summary      never came: the backend did not confirm the end" in report.lines()


async def test_a_summary_lost_after_stop_is_reported_not_taken_from_a_new_session() -> None:
    """The backend ends the session at `stop` and the connection breaks before its summary
    arrives; the next connection finds no session to resume. The client does not send
    `stop` to the new, empty session and take its summary for this one's: the session fails
    saying the summary was lost, every frame accounted for."""
    backend = rogue.Scripted(["ends_at_stop"])
    report, events, _ = await stream(backend)

    counts = report.audio["system"]
    assert report.outcome == "failed" and report.failure_kind == "error"
    assert report.reason is not None and "final summary" in report.reason
    assert isinstance(report.error, errors.SummaryLost)
    assert report.summary is None
    assert (backend.connections, backend.stops) == (2, 1)  # no second `stop`
    assert sum(isinstance(e, Reconnecting) for e in events) == 1
    assert report.resumes == 0  # the second connection never streamed
    assert counts.captured == counts.sent == counts.acked == FRAMES  # acked before the close
    assert report.frames_lost == 0 and report.frames_unconfirmed == 0
    assert sorted(backend.frames) == list(range(FRAMES))
    with pytest.raises(errors.SummaryLost):
        report.raise_for_failure()


async def test_a_connection_that_breaks_after_the_final_summary_ends_the_session_complete() -> None:
    """The summary came, then the socket ended badly: the session is over and complete —
    no reconnection to a session that no longer exists."""
    backend = rogue.Scripted(["summary_then_1011"])
    report, events, _ = await stream(backend)

    delivered_exactly(report, backend)
    assert report.summary is not None and report.summary.json["frames"] == FRAMES
    assert (backend.connections, backend.stops) == (1, 1)
    assert not any(isinstance(e, Reconnecting) for e in events)
