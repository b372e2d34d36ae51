"""Flow control in the outbox: at most a window of frames in flight per source, and a
backlog that drains exactly at the pace of the confirmations — in virtual time."""

from __future__ import annotations

import pytest
from reactivex.testing import TestScheduler

from pipeline.config import SessionConfig
from pipeline.outbox import Outbox
from tests.unit.test_outbox import drain, fill, frames, invariant


def test_take_stops_at_the_window_and_a_confirmation_opens_it() -> None:
    outbox = Outbox(max_frames=100, window_frames=5)
    fill(outbox, frames(20))
    assert drain(outbox) == [("system", seq) for seq in range(5)]
    assert outbox.at_window() and not outbox.drained
    outbox.confirm("system", 1)  # two confirmed: two more may go
    assert drain(outbox) == [("system", 5), ("system", 6)]
    counts = outbox.counts()["system"]
    assert (counts.sent, counts.acked, counts.in_flight, counts.buffered) == (7, 2, 5, 13)
    invariant(counts)


def test_each_source_has_its_own_window() -> None:
    outbox = Outbox(max_frames=100, window_frames=2)
    fill(outbox, frames(5), frames(5, "mic"))
    taken = drain(outbox)
    assert sorted(taken) == [("mic", 0), ("mic", 1), ("system", 0), ("system", 1)]
    outbox.confirm("mic", 1)
    assert drain(outbox) == [("mic", 2), ("mic", 3)]  # system still waits for its acks


def test_a_resume_rewrites_within_the_window() -> None:
    outbox = Outbox(max_frames=100, window_frames=3)
    fill(outbox, frames(10))
    drain(outbox)
    outbox.connection_lost()
    outbox.resume({"system": 2})  # the backend holds 0 and 1
    assert drain(outbox) == [("system", 2), ("system", 3), ("system", 4)]
    assert outbox.counts()["system"].resent == 1  # only seq 2 had been written before


def test_live_capture_is_never_blocked_by_the_window() -> None:
    outbox = Outbox(max_frames=8, window_frames=2)
    fill(outbox, frames(2))
    drain(outbox)
    fill(outbox, frames(10, start=2))  # the backend confirms nothing: the bound applies
    counts = outbox.counts()["system"]
    # seq 0-1 were written and evicted (unconfirmed), 2-3 evicted unwritten (dropped)
    assert (counts.captured, counts.unconfirmed, counts.dropped, counts.buffered) == (12, 2, 2, 8)
    invariant(counts)
    assert drain(outbox) == [("system", 4), ("system", 5)]  # the evicted left the window


def test_last_written_is_the_highest_seq_ever_written_and_untake_restores_it() -> None:
    outbox = Outbox(window_frames=10)
    assert outbox.last_written("system") == -1
    fill(outbox, frames(3))
    drain(outbox)
    outbox.confirm("system", 2)
    assert outbox.last_written("system") == 2  # confirmation does not lower it
    fill(outbox, frames(1, start=3))
    frame = outbox.take()
    assert frame is not None and outbox.last_written("system") == 3
    outbox.untake(frame)
    assert outbox.last_written("system") == 2


def test_the_backlog_drains_at_the_pace_of_the_acks() -> None:
    """An outage left 500 frames; the backend confirms 25 frames every 0.5 s (a recogniser
    at 1x real time). In flight never exceeds the window, and sending keeps pace."""
    scheduler = TestScheduler()
    window = 50
    outbox = Outbox(max_frames=1000, window_frames=window)
    fill(outbox, frames(500))
    written: list[int] = []
    in_flight: list[int] = []

    def write() -> None:
        written.extend(seq for _, seq in drain(outbox))
        in_flight.append(outbox.counts()["system"].in_flight)

    def ack(_: object, __: object = None) -> None:
        outbox.confirm("system", outbox.counts()["system"].acked + 24)
        write()

    write()
    for tick in range(1, 21):
        scheduler.schedule_absolute(tick * 0.5, ack)
    scheduler.start()
    assert written == list(range(500))
    assert max(in_flight) == window
    # after k acks, exactly window + 25k frames were written (until the backlog ran out)
    assert in_flight[:19] == [window] * 19
    assert outbox.counts()["system"].acked == 500


def test_the_window_is_one_setting_in_seconds() -> None:
    assert SessionConfig(flow_window=3.0).window_frames == 150
    assert SessionConfig(flow_window=3.0, frame_ms=100).window_frames == 30
    with pytest.raises(ValueError, match="flow_window"):
        SessionConfig(flow_window=0)
    with pytest.raises(ValueError, match="flow window"):
        Outbox(window_frames=0)
