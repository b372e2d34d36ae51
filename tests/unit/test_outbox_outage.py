"""The outbox as the outage buffer: order kept, bound enforced, drops counted, and
captured == sent + buffered + dropped after every single change."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from reactivex import abc
from reactivex.testing import TestScheduler

from pipeline.audio import AudioFrame
from pipeline.outbox import Outbox

SOURCES = ("system", "mic")
SILENCE = np.zeros(320, dtype=np.int16)


def check_counts(outbox: Outbox) -> None:
    for source, c in outbox.counts().items():
        assert c.captured == c.sent + c.buffered + c.dropped, (source, c)
        assert c.sent == c.acked + c.unconfirmed + c.in_flight, (source, c)
        assert min(c.buffered, c.dropped, c.in_flight, c.acked, c.unconfirmed) >= 0, (source, c)
        assert c.buffered + c.in_flight <= outbox.max_frames, (source, c)


def test_an_outage_in_virtual_time_keeps_the_newest_frames_in_order() -> None:
    """10 s of two live sources at 50 frames/s; the socket is gone from 2 s to 7 s; the
    buffer holds 2 s. The socket writes (and the backend confirms) every 20 ms while up."""
    scheduler, outbox = TestScheduler(), Outbox(max_frames=100)
    outbox.listen(lambda: check_counts(outbox))  # the invariant, after every change
    written: dict[str, list[int]] = defaultdict(list)
    up = True

    def capture(_: abc.SchedulerBase, seq: Any = None) -> None:
        for source in SOURCES:
            outbox.push(AudioFrame(SILENCE, source, seq, scheduler.clock))

    def socket(_: abc.SchedulerBase, __: object = None) -> None:
        while up and (frame := outbox.take()) is not None:
            written[frame.source].append(frame.seq)
            outbox.confirm(frame.source, frame.seq)

    def go_down(_: abc.SchedulerBase, __: object = None) -> None:
        nonlocal up
        up = False
        outbox.connection_lost()

    def come_back(_: abc.SchedulerBase, __: object = None) -> None:
        nonlocal up
        up = True
        outbox.resume({source: written[source][-1] + 1 for source in SOURCES})
        socket(_)  # the buffered frames go out at once

    for seq in range(500):
        scheduler.schedule_absolute((seq + 1) * 0.02, capture, seq)
        scheduler.schedule_absolute((seq + 1) * 0.02 + 0.001, socket)
    scheduler.schedule_absolute(2.01, go_down)
    scheduler.schedule_absolute(7.01, come_back)
    scheduler.start()

    for source in SOURCES:
        seqs, counts = written[source], outbox.counts()[source]
        # up to 2 s: frames 0..99 went live; 7 s: 250 frames were captured while down,
        # the oldest 150 were dropped, the newest 100 (250..349) went first, then live ones
        assert seqs == list(range(100)) + list(range(250, 500))
        assert (counts.captured, counts.sent, counts.dropped, counts.buffered) == (500, 350, 150, 0)
        assert counts.acked == 350


def test_over_the_bound_the_oldest_go_and_capture_never_waits() -> None:
    outbox = Outbox(max_frames=3)
    for seq in range(5):
        outbox.push(AudioFrame(SILENCE, "mic", seq, seq * 0.02))
        check_counts(outbox)
    taken = [outbox.take() for _ in range(4)]
    assert [f.seq for f in taken if f is not None] == [2, 3, 4]
    assert taken[-1] is None
    counts = outbox.counts()["mic"]
    assert (counts.captured, counts.sent, counts.buffered, counts.dropped) == (5, 3, 0, 2)


def test_sources_have_their_own_lanes_and_bounds() -> None:
    outbox = Outbox(max_frames=2)
    for seq in range(4):
        outbox.push(AudioFrame(SILENCE, "system", seq, seq * 0.02))
    outbox.push(AudioFrame(SILENCE, "mic", 0, 0.01))
    order = []
    while (frame := outbox.take()) is not None:
        order.append((frame.source, frame.seq))
    assert order == [("mic", 0), ("system", 2), ("system", 3)]  # oldest capture first
    assert outbox.counts()["mic"].dropped == 0
    assert outbox.counts()["system"].dropped == 2


class OutboxMachine(RuleBasedStateMachine):
    """Random capture, writes, acks, disconnects and resumes against the invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.outbox = Outbox(max_frames=5)
        self.outbox.listen(lambda: check_counts(self.outbox))
        self.captured: dict[str, int] = defaultdict(int)
        self.clock = 0.0
        self.first_writes: dict[str, list[int]] = defaultdict(list)
        self.this_connection: dict[str, list[int]] = defaultdict(list)
        self.confirmed: dict[str, int] = defaultdict(lambda: -1)
        self.connected = True

    @rule(source=st.sampled_from(SOURCES), count=st.integers(1, 8))
    def capture(self, source: str, count: int) -> None:
        for _ in range(count):
            self.clock += 0.01
            self.outbox.push(AudioFrame(SILENCE, source, self.captured[source], self.clock))
            self.captured[source] += 1

    @precondition(lambda self: self.connected)
    @rule(count=st.integers(1, 10))
    def write(self, count: int) -> None:
        before = {s: c.sent for s, c in self.outbox.counts().items()}
        for _ in range(count):
            frame = self.outbox.take()
            if frame is None:
                assert self.outbox.drained
                return
            mine = self.this_connection[frame.source]
            assert not mine or frame.seq > mine[-1], "out of order on one connection"
            mine.append(frame.seq)
            counts = self.outbox.counts()[frame.source]
            if counts.sent > before.get(frame.source, 0):  # a first write of this frame
                before[frame.source] = counts.sent
                firsts = self.first_writes[frame.source]
                assert not firsts or frame.seq > firsts[-1], "an older frame went out later"
                firsts.append(frame.seq)

    @precondition(lambda self: self.connected and any(self.this_connection.values()))
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from([s for s in SOURCES if self.this_connection[s]]))
        seq = data.draw(st.sampled_from(self.this_connection[source]))
        self.outbox.confirm(source, seq)
        self.confirmed[source] = max(self.confirmed[source], seq)

    @precondition(lambda self: self.connected)
    @rule()
    def disconnect(self) -> None:
        self.outbox.connection_lost()
        self.connected = False
        self.this_connection.clear()

    @precondition(lambda self: not self.connected)
    @rule(resumed=st.booleans())
    def reconnect(self, resumed: bool) -> None:
        next_seq = {s: self.confirmed[s] + 1 for s in SOURCES} if resumed else None
        self.outbox.resume(next_seq)
        self.connected = True

    @invariant()
    def every_frame_is_accounted_for(self) -> None:
        check_counts(self.outbox)
        for source, counts in self.outbox.counts().items():
            assert counts.captured == self.captured[source]
            assert counts.sent == len(self.first_writes[source])


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
