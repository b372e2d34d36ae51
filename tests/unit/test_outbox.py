"""The outbox's delivery semantics: confirmation, resume, degradation, accounting."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import AudioFrame
from pipeline.outbox import Outbox, SourceCounts


def frames(n: int, source: str = "system", start: int = 0) -> list[AudioFrame]:
    return [
        AudioFrame(np.full(320, seq, dtype=np.int16), source, seq, captured_at=seq * 0.02)
        for seq in range(start, start + n)
    ]


def fill(outbox: Outbox, *batches: list[AudioFrame]) -> None:
    for batch in batches:
        for f in batch:
            outbox.push(f)


def drain(outbox: Outbox) -> list[tuple[str, int]]:
    taken = []
    while (f := outbox.take()) is not None:
        taken.append((f.source, f.seq))
    return taken


def invariant(counts: SourceCounts) -> None:
    assert counts.captured == counts.sent + counts.buffered + counts.dropped
    assert counts.in_flight >= 0


def test_frames_leave_in_capture_order_across_sources() -> None:
    outbox = Outbox()
    mic = [f for f in frames(3, "mic")]
    fill(outbox, frames(3), mic)
    assert drain(outbox) == [
        ("system", 0),
        ("mic", 0),
        ("system", 1),
        ("mic", 1),
        ("system", 2),
        ("mic", 2),
    ]


def test_acks_release_frames_and_count_them() -> None:
    outbox = Outbox()
    fill(outbox, frames(10))
    drain(outbox)
    outbox.confirm("system", 6)
    counts = outbox.counts()["system"]
    assert (counts.sent, counts.acked, counts.in_flight, counts.buffered) == (10, 7, 3, 0)
    assert outbox.resume_point() == {"system": 7}
    invariant(counts)


def test_resumed_session_rewrites_only_what_the_backend_lacks() -> None:
    outbox = Outbox()
    fill(outbox, frames(10))
    drain(outbox)
    outbox.confirm("system", 3)
    outbox.connection_lost()
    fill(outbox, frames(2, start=10))  # captured during the outage
    outbox.resume({"system": 8})  # the backend got 0..7
    assert drain(outbox) == [("system", s) for s in (8, 9, 10, 11)]
    counts = outbox.counts()["system"]
    assert counts.acked == 8 and counts.resent == 2 and counts.sent == 12
    assert counts.unconfirmed == 0
    assert outbox.timeline_base("system") == 0  # same timeline
    invariant(counts)


def test_without_resume_unconfirmed_frames_are_counted_not_resent() -> None:
    outbox = Outbox()
    fill(outbox, frames(10))
    drain(outbox)
    outbox.confirm("system", 5)  # e.g. a ping barrier
    outbox.connection_lost()
    fill(outbox, frames(3, start=10))
    outbox.resume(None)  # v0.2 backend, or a v0.3 session reset
    assert drain(outbox) == [("system", s) for s in (10, 11, 12)]
    counts = outbox.counts()["system"]
    assert counts.unconfirmed == 4 and counts.resent == 0 and counts.acked == 6
    assert outbox.timeline_base("system") == 10  # the backend's new t=0
    invariant(counts)


def test_over_the_bound_the_oldest_unsent_frames_are_dropped() -> None:
    outbox = Outbox(max_frames=5)
    fill(outbox, frames(8))
    counts = outbox.counts()["system"]
    assert (counts.captured, counts.buffered, counts.dropped) == (8, 5, 3)
    assert drain(outbox) == [("system", s) for s in range(3, 8)]
    invariant(outbox.counts()["system"])


def test_evicting_a_written_frame_makes_it_unconfirmed() -> None:
    outbox = Outbox(max_frames=4)
    fill(outbox, frames(4))
    drain(outbox)
    outbox.connection_lost()
    fill(outbox, frames(2, start=4))
    counts = outbox.counts()["system"]
    assert counts.unconfirmed == 2 and counts.dropped == 0 and counts.buffered == 2
    invariant(counts)


def test_finished_only_when_closed_and_everything_written() -> None:
    outbox = Outbox()
    fill(outbox, frames(2))
    outbox.close()
    assert not outbox.finished
    drain(outbox)
    assert outbox.finished


def test_abandon_counts_what_was_never_confirmed() -> None:
    outbox = Outbox()
    fill(outbox, frames(5))
    drain(outbox)
    fill(outbox, frames(2, start=5))
    outbox.abandon()
    counts = outbox.counts()["system"]
    assert counts.unconfirmed == 5 and counts.buffered == 2
    invariant(counts)


def test_written_marks_give_the_barrier_positions() -> None:
    outbox = Outbox()
    fill(outbox, frames(3), frames(2, "mic"))
    drain(outbox)
    assert outbox.written_marks() == {"system": 2, "mic": 1}


def test_listeners_hear_captures_and_confirmations_not_the_writers_takes() -> None:
    outbox = Outbox()
    calls: list[int] = []
    unlisten = outbox.listen(lambda: calls.append(1))
    fill(outbox, frames(2))
    outbox.take()
    assert len(calls) == 2
    outbox.confirm("system", 0)
    assert len(calls) == 3
    unlisten()
    outbox.take()
    outbox.confirm("system", 1)
    assert len(calls) == 3


def test_refuses_an_empty_bound() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Outbox(max_frames=0)
