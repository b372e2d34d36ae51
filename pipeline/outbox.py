"""The outbox: every captured frame until the backend confirms it — the heart of zero loss.

A pure state machine (no I/O, no clock): capture pushes frames in, the socket writer
takes them out in order, and confirmations (v0.3 acks, a resume's `next_seq`, or v0.2
ping barriers) release them. Per source it keeps, in `seq` order,

    [ written, awaiting confirmation ... | never written ... ]
      ^ the first `written` frames          ^ `buffered`

and counts every frame in exactly one of sent / buffered / dropped:

    captured == sent + buffered + dropped          (at every moment)
    sent     == acked + unconfirmed + in flight

Live capture is never blocked: over the bound the oldest frame goes (counted as dropped,
or as unconfirmed if it had been written and could no longer be resent).

Flow control: per source at most `window_frames` are in flight (written on the current
connection, not yet confirmed); `take` skips a source at its window until confirmations
free room. After an outage the backlog therefore drains at the pace the backend
confirms — which for a v0.3 backend is the pace its recogniser takes audio — and the
backend never has to drop. The backlog waits here, inside the bound and the accounting.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipeline.audio import AudioFrame, Samples, new_frame


@dataclass(frozen=True, slots=True)
class SourceCounts:
    """Frame accounting of one source. `resent` counts re-writes, not frames."""

    captured: int = 0
    sent: int = 0
    buffered: int = 0
    dropped: int = 0
    acked: int = 0
    resent: int = 0
    unconfirmed: int = 0

    def __add__(self, other: SourceCounts) -> SourceCounts:
        return SourceCounts(
            captured=self.captured + other.captured,
            sent=self.sent + other.sent,
            buffered=self.buffered + other.buffered,
            dropped=self.dropped + other.dropped,
            acked=self.acked + other.acked,
            resent=self.resent + other.resent,
            unconfirmed=self.unconfirmed + other.unconfirmed,
        )

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked - self.unconfirmed

    @property
    def lost(self) -> int:
        """Frames that may not have reached the backend: dropped or unconfirmed."""
        return self.dropped + self.unconfirmed


class _Lane:
    """One source's frames, in three columns of the same length: `seqs` and `stamps` (the
    capture times) as machine numbers, `audio` as the frames' own sample arrays.
    `written` is the length of the written prefix; `cursor` is the index of the next
    frame to write on the current connection.

    Columns, not a tuple per frame, so that holding a frame makes no object the garbage
    collector counts: a tuple per frame was counted at its birth and, dying fifty at a
    time with each ack while the count stood near zero (it cannot go below), mostly not
    at its death — at N=200 real-time sessions the births alone brought a young
    collection every ~1,000 frames, and with it a full one (80-150 ms, every stream
    stalled) every dozen seconds. The numbers are arrays, not deques, so that a full
    collection visits one object per held frame (its samples), as it did the tuple.
    """

    __slots__ = (
        "acked",
        "audio",
        "base",
        "captured",
        "cursor",
        "dropped",
        "last_take_new",
        "resent",
        "sent",
        "seqs",
        "source",
        "stamps",
        "top",
        "top_before",
        "unconfirmed",
        "written",
    )

    def __init__(self, source: str) -> None:
        self.source = source
        self.seqs: array[int] = array("q")
        self.stamps: array[float] = array("d")
        self.audio: deque[Samples] = deque()
        self.written = 0
        self.cursor = 0
        self.captured = self.sent = self.dropped = self.acked = self.resent = 0
        self.unconfirmed = 0
        self.base: int | None = None  # seq that is t=0 on the backend's current timeline
        self.last_take_new = False
        self.top = -1  # the highest seq ever written (on any connection)
        self.top_before = -1  # `top` before the last take (for `untake`)

    def counts(self) -> SourceCounts:
        return SourceCounts(
            captured=self.captured,
            sent=self.sent,
            buffered=len(self.seqs) - self.written,
            dropped=self.dropped,
            acked=self.acked,
            resent=self.resent,
            unconfirmed=self.unconfirmed,
        )

    def forget_oldest(self, count: int) -> None:
        del self.seqs[:count]
        del self.stamps[:count]
        audio = self.audio
        for _ in range(count):
            audio.popleft()

    def confirm_through(self, seq: int) -> int:
        """Release written frames with `seq` <= the given one; returns how many."""
        released, written = 0, self.written
        for held in self.seqs:
            if released == written or held > seq:
                break
            released += 1
        if released:
            self.forget_oldest(released)
            self.written = written - released
            self.cursor = max(0, self.cursor - released)
            self.acked += released
        return released

    def abandon_written(self) -> None:
        """Written frames that can never be confirmed: count them unconfirmed, forget them."""
        self.forget_oldest(self.written)
        self.unconfirmed += self.written
        self.written = self.cursor = 0


class Outbox:
    """Frames between capture and confirmed delivery, per source, bounded."""

    def __init__(self, max_frames: int = 6000, window_frames: int | None = None) -> None:
        if max_frames < 1:
            raise ValueError("the outbox must hold at least one frame per source")
        if window_frames is not None and window_frames < 1:
            raise ValueError("the flow window must allow at least one frame in flight")
        self.max_frames = max_frames
        self.window_frames = window_frames if window_frames is not None else max_frames
        self._lanes: dict[str, _Lane] = {}
        self._closed = False
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after every change but the writer's own `take`/`untake` (it must
        be cheap: it runs per captured frame); returns an unlistener."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    # -- capture side ---------------------------------------------------------------

    def push(self, frame: AudioFrame) -> None:
        lane = self._lanes.get(frame.source)
        if lane is None:
            lane = self._lanes[frame.source] = _Lane(frame.source)
        lane.seqs.append(frame.seq)
        lane.stamps.append(frame.captured_at)
        lane.audio.append(frame.samples)
        lane.captured += 1
        if len(lane.seqs) > self.max_frames:
            lane.forget_oldest(1)
            if lane.written:
                lane.written -= 1
                lane.unconfirmed += 1
                lane.cursor = max(0, lane.cursor - 1)
            else:
                lane.dropped += 1
        for callback in self._listeners:  # `_changed`, inline: once per captured frame
            callback()

    def close(self) -> None:
        """No more frames will come: once all are written the session may send `stop`."""
        self._closed = True
        self._changed()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- socket side ----------------------------------------------------------------

    def take(self) -> AudioFrame | None:
        """The next frame to write on the current connection (oldest capture first).

        The frame counts as written from here on: if the write fails the connection is
        dead, and what happens to the frame is decided when the next one resumes.
        """
        best: _Lane | None = None
        best_at = 0.0
        window = self.window_frames
        for lane in self._lanes.values():
            cursor = lane.cursor
            if cursor < window and cursor < len(lane.seqs):
                at = lane.stamps[cursor]
                if best is None or at < best_at:
                    best, best_at = lane, at
        if best is None:
            return None
        cursor = best.cursor
        seq = best.seqs[cursor]
        best.cursor = cursor + 1
        best.last_take_new = new = cursor >= best.written
        if new:
            best.written += 1
            best.sent += 1
            best.top_before = top = best.top
            if seq > top:
                best.top = seq
        else:
            best.resent += 1
        if best.base is None:
            best.base = seq
        # not announced: the writer is the one who asked
        return new_frame(best.audio[cursor], best.source, seq, best.stamps[cursor])

    def untake(self, frame: AudioFrame) -> None:
        """The last `take()` of this frame's source was never written (the socket was
        already closing): put it back as it was."""
        lane = self._lanes.get(frame.source)
        if lane is None or not lane.cursor or lane.seqs[lane.cursor - 1] != frame.seq:
            return
        lane.cursor -= 1
        if lane.last_take_new:
            lane.written -= 1
            lane.sent -= 1
            lane.top = lane.top_before
        else:
            lane.resent -= 1

    def last_written(self, source: str) -> int:
        """The highest seq of `source` ever written (-1: none): nothing beyond it can be
        confirmed, and a backend that says otherwise is violating the protocol."""
        lane = self._lanes.get(source)
        return -1 if lane is None else lane.top

    def at_window(self) -> bool:
        """Some source has frames to write but its flow window is full."""
        window = self.window_frames
        return any(
            lane.cursor >= window and lane.cursor < len(lane.seqs) for lane in self._lanes.values()
        )

    @property
    def drained(self) -> bool:
        """Every held frame has been written on the current connection."""
        return all(lane.cursor >= len(lane.seqs) for lane in self._lanes.values())

    @property
    def finished(self) -> bool:
        """Closed and everything written: time to send `stop`."""
        return self._closed and self.drained

    def confirm(self, source: str, seq: int) -> None:
        """The backend holds every frame of `source` with a seq <= `seq` (ack or barrier)."""
        lane = self._lanes.get(source)
        if lane is not None and lane.confirm_through(seq):
            self._changed()

    def written_marks(self) -> dict[str, int]:
        """Per source, the seq of the last frame written on this connection (for barriers)."""
        return {
            source: lane.seqs[lane.cursor - 1]
            for source, lane in self._lanes.items()
            if lane.cursor
        }

    def abandon(self) -> None:
        """The session is over: frames still awaiting confirmation never will be."""
        for lane in self._lanes.values():
            lane.abandon_written()
        self._changed()

    def resume_point(self) -> dict[str, int]:
        """Per source with frames awaiting confirmation, the first unconfirmed seq."""
        return {source: lane.seqs[0] for source, lane in self._lanes.items() if lane.written}

    def connection_lost(self) -> None:
        """The socket is gone: the next connection writes from the oldest held frame."""
        for lane in self._lanes.values():
            lane.cursor = 0
        self._changed()

    def resume(self, next_seq: Mapping[str, int] | None) -> None:
        """A new connection is streaming.

        With `next_seq` (v0.3, resumed) the backend holds everything below it: release
        those and rewrite the rest in order, on the same timeline. Without (v0.2, or a
        v0.3 session reset) nothing written before can be confirmed any more: those frames
        become unconfirmed, and the backend's timeline restarts at the next frame written.
        """
        for source, lane in self._lanes.items():
            lane.cursor = 0
            if next_seq is None:
                lane.abandon_written()
                lane.base = None
            else:
                lane.confirm_through(next_seq.get(source, 0) - 1)
        self._changed()

    def timeline_base(self, source: str) -> int:
        """The seq at which the backend's current timeline for `source` starts."""
        lane = self._lanes.get(source)
        return 0 if lane is None or lane.base is None else lane.base

    # -- accounting -----------------------------------------------------------------

    def counts(self) -> dict[str, SourceCounts]:
        return {source: lane.counts() for source, lane in self._lanes.items()}

    # `unsent` and `held` are read after every change (the session's demand gate): plain
    # loops, as a generator under sum() costs several times more per frame.
    @property
    def unsent(self) -> int:
        """Frames held but not yet written on the current connection."""
        total = 0
        for lane in self._lanes.values():
            total += len(lane.seqs) - lane.cursor
        return total

    @property
    def held(self) -> int:
        total = 0
        for lane in self._lanes.values():
            total += len(lane.seqs)
        return total
