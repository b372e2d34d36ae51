"""The link protocol's rules, driven by feeding it events: no socket, no event loop."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from operators.backoff import FATAL
from pipeline import errors
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds
from pipeline.link import (
    Action,
    Carryover,
    Emit,
    Fail,
    LinkProtocol,
    LinkState,
    Ping,
    SendStart,
    SendStop,
    StartWriting,
    Wake,
)
from pipeline.outbox import Outbox
from pipeline.protocol import (
    CAPABILITIES,
    Ack,
    AsrFinal,
    ErrorMessage,
    FinalSummary,
    Malformed,
    Status,
    Unknown,
)
from pipeline.redaction import Secret
from pipeline.stall import STALL_FLOOR_S
from pipeline.status import Connected, Connecting, Streaming

IDS = SessionIds(session_id="s", attempt_id="a")


def frame(seq: int, source: str = "system") -> AudioFrame:
    return AudioFrame(np.zeros(320, dtype=np.int16), source, seq)


def link(
    protocol: str = "auto", memo: Carryover | None = None, outbox: Outbox | None = None
) -> LinkProtocol:
    config = SessionConfig(url="ws://127.0.0.1:1/ws", protocol=protocol)  # type: ignore[arg-type]
    return LinkProtocol(
        config,
        IDS,
        outbox or Outbox(),
        memo or Carryover(),
        connection_id="c",
        clock=lambda: 7.0,
    )


def streaming(resumed: bool | None = False, **fields: object) -> Status:
    return Status(state="streaming", resumed=resumed, **fields)  # type: ignore[arg-type]


def started(proto: LinkProtocol, status: Status | None = None) -> list[Action]:
    """Open, `connected`, `streaming`: the actions of the last step."""
    proto.opened()
    proto.event_received(Status(state="connected"))
    return proto.event_received(status or streaming())


def state(proto: LinkProtocol) -> LinkState:
    return proto.state  # read afresh: each step changes it


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def write_all(proto: LinkProtocol, now: float = 0.0) -> list[Action]:
    """Play the writer: take frames until none, then go idle; the actions it was given."""
    actions: list[Action] = []
    while proto.take(now) is not None:
        actions += proto.written(now)
    return actions + proto.idle(now)


def test_the_handshake_walks_the_states_and_sends_start_once_after_connected() -> None:
    proto = link()
    assert state(proto) is LinkState.CONNECTING
    (connecting,) = proto.connecting()
    assert isinstance(connecting, Emit) and isinstance(connecting.event, Connecting)
    assert proto.event_received(Status(state="streaming", resumed=False)) == []  # too early
    proto.opened()
    assert state(proto) is LinkState.AWAITING_CONNECTED and proto.handshaking
    actions = proto.event_received(Status(state="connected"))
    assert kinds(actions) == [Emit, SendStart]
    assert isinstance(actions[0], Emit) and actions[0].event == Connected(at=7.0, connection_id="c")
    assert state(proto) is LinkState.STARTING
    assert proto.event_received(Status(state="connected")) == []  # `start` goes once
    actions = proto.event_received(streaming())
    assert kinds(actions) == [Emit, StartWriting]
    assert state(proto) is LinkState.STREAMING and not proto.handshaking
    assert proto.event_received(streaming()) == []  # a second `streaming` changes nothing


def test_start_offers_v03_with_the_resume_point_and_token_only_after_streaming() -> None:
    memo = Carryover(resume_token=Secret("r-secret"))
    outbox = Outbox()
    proto = link(memo=memo, outbox=outbox)
    proto.opened()
    (_, send) = proto.event_received(Status(state="connected"))
    assert isinstance(send, SendStart)
    assert send.start.capabilities == CAPABILITIES and send.start.resume is None
    assert send.start.resume_token == Secret("r-secret")
    assert send.start.session_id == "s" and send.start.attempt_id == "a"

    memo.streamed = True
    outbox.push(frame(0))
    outbox.push(frame(1))
    assert outbox.take() is not None
    again = link(memo=memo, outbox=outbox)
    again.opened()
    (_, send) = again.event_received(Status(state="connected"))
    assert isinstance(send, SendStart) and dict(send.start.resume or {}) == {"system": 0}


def test_a_v02_configuration_offers_nothing_of_v03() -> None:
    proto = link("0.2", memo=Carryover(streamed=True, resume_token=Secret("x")))
    proto.opened()
    (_, send) = proto.event_received(Status(state="connected"))
    assert isinstance(send, SendStart)
    assert (send.start.capabilities, send.start.resume, send.start.resume_token) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("protocol", "resumed", "spoken"),
    [("auto", False, "0.3"), ("auto", None, "0.2"), ("0.3", None, "0.2"), ("0.2", True, "0.2")],
)
def test_v03_is_spoken_only_when_offered_and_streaming_carries_resumed(
    protocol: str, resumed: bool | None, spoken: str
) -> None:
    proto = link(protocol)
    (emit, _) = started(proto, streaming(resumed))
    assert proto.protocol == spoken
    assert isinstance(emit, Emit) and isinstance(emit.event, Streaming)
    assert emit.event.protocol == spoken and emit.event.resumed is None  # the first stream


def test_streaming_keeps_the_resume_token_and_marks_the_session_streamed() -> None:
    memo = Carryover(refreshes_left=0)
    started(link(memo=memo), streaming(resume_token=Secret("new")))
    assert memo.streamed and memo.resume_token == Secret("new") and memo.refreshes_left == 1
    (emit, _) = started(link(memo=memo), streaming(True))
    assert isinstance(emit, Emit) and isinstance(emit.event, Streaming)
    assert emit.event.resumed is True and memo.resume_token == Secret("new")


def test_messages_of_another_attempt_are_dropped() -> None:
    proto = link()
    proto.opened()
    assert proto.event_received(Status(state="connected", attempt_id="old")) == []
    assert state(proto) is LinkState.AWAITING_CONNECTED
    final = AsrFinal(text="hi", t0=0.0, t1=1.0, attempt_id="a")
    assert proto.event_received(final) == [Emit(final)]


def test_malformed_and_unknown_messages_are_skipped() -> None:
    proto = link()
    assert proto.event_received(Malformed(reason="not json", text="{")) == []
    assert proto.event_received(Unknown(type="weird")) == []


def test_a_secret_echoed_in_a_message_is_redacted() -> None:
    proto = link()
    (emit,) = proto.event_received(ErrorMessage(message="bad token Bearer abcdefghijklmnop"))
    assert isinstance(emit, Emit) and isinstance(emit.event, ErrorMessage)
    assert "abcdefghijklmnop" not in emit.event.message


def test_an_ack_confirms_written_frames_and_one_beyond_them_is_a_violation() -> None:
    outbox = Outbox()
    proto = link(outbox=outbox)
    started(proto)
    for seq in range(3):
        outbox.push(frame(seq))
    write_all(proto)
    ack = Ack(source="system", seq=1)
    assert proto.event_received(ack) == [Emit(ack)]
    assert outbox.counts()["system"].acked == 2
    (fail,) = proto.event_received(Ack(source="system", seq=3))
    assert isinstance(fail, Fail) and isinstance(fail.error, errors.ProtocolViolation)
    assert outbox.counts()["system"].acked == 2  # nothing released
    assert state(proto) is LinkState.FAILED


def test_next_seq_beyond_the_written_is_a_violation_before_anything_resumes() -> None:
    outbox = Outbox()
    outbox.push(frame(0))
    proto = link(memo=Carryover(streamed=True), outbox=outbox)
    (fail,) = started(proto, streaming(True, next_seq={"system": 5}))
    assert isinstance(fail, Fail) and isinstance(fail.error, errors.ProtocolViolation)
    assert state(proto) is LinkState.FAILED


def test_a_resume_releases_what_the_backend_already_has() -> None:
    outbox = Outbox()
    for seq in range(3):
        outbox.push(frame(seq))
    memo = Carryover()
    first = link(memo=memo, outbox=outbox)
    started(first)
    write_all(first)
    outbox.connection_lost()
    second = link(memo=memo, outbox=outbox)
    started(second, streaming(True, next_seq={"system": 2}))
    assert outbox.counts()["system"].acked == 2
    assert [f.seq for f in iter(outbox.take, None)] == [2]  # only the frame it lacks


def test_v02_segments_are_shifted_onto_the_source_timeline() -> None:
    outbox = Outbox()
    outbox.push(frame(0))
    outbox.take()  # written on a lost connection: a v0.2 backend never confirms it
    outbox.connection_lost()
    proto = link("0.2", outbox=outbox)
    started(proto, streaming(None))
    outbox.push(frame(1))
    write_all(proto)
    assert outbox.timeline_base("system") == 1  # the new backend's time 0 is frame 1
    final = AsrFinal(text="x", t0=0.5, t1=1.0)
    (emit,) = proto.event_received(final)
    assert isinstance(emit, Emit) and isinstance(emit.event, AsrFinal)
    assert (emit.event.t0, emit.event.t1) == (0.5 + 0.02, 1.0 + 0.02)
    assert link("auto").event_received(final) == [Emit(final)]  # v0.3 times are the source's


def test_v02_barriers_confirm_frames_written_before_them() -> None:
    outbox = Outbox()
    proto = link("0.2", outbox=outbox)
    started(proto, streaming(None))
    for seq in range(3):
        outbox.push(frame(seq))
    pings = [a for a in write_all(proto) if isinstance(a, Ping)]
    assert [struct.unpack(">Q", p.payload)[0] for p in pings] == [1, 2, 3]  # one per frame
    assert proto.pong_received(pings[1].payload, 0.01) == [Wake()]
    assert outbox.counts()["system"].acked == 2
    assert proto.pong_received(b"short", 0.01) == []
    proto.pong_received(pings[2].payload, 0.01)
    assert outbox.counts()["system"].acked == 3


def test_v02_unanswered_barriers_stall_the_writer_until_one_comes_back() -> None:
    outbox = Outbox()
    proto = link("0.2", outbox=outbox)
    started(proto, streaming(None))
    outbox.push(frame(0))
    (ping,) = write_all(proto, now=0.0)
    assert isinstance(ping, Ping)
    outbox.push(frame(1))
    outbox.close()
    assert proto.take(STALL_FLOOR_S) is None  # stalled: the frame waits
    assert proto.idle(STALL_FLOOR_S) == []  # no barrier, no `stop` while stalled
    proto.pong_received(ping.payload, STALL_FLOOR_S + 0.5)
    taken = proto.take(STALL_FLOOR_S + 0.5)
    assert taken is not None and taken.seq == 1


def test_v03_sends_no_barriers_and_never_stalls() -> None:
    outbox = Outbox()
    proto = link(outbox=outbox)
    started(proto)
    outbox.push(frame(0))
    assert write_all(proto) == []
    outbox.push(frame(1))
    assert proto.take(1e9) is not None


def test_stop_goes_once_when_the_audio_has_ended_and_every_frame_is_written() -> None:
    outbox = Outbox()
    proto = link(outbox=outbox)
    started(proto)
    outbox.push(frame(0))
    assert proto.idle(0.0) == []  # a frame still unwritten
    outbox.close()
    assert proto.idle(0.0) == []
    (stop,) = write_all(proto)
    assert isinstance(stop, SendStop) and stop.stop.session_id == "s"
    assert state(proto) is LinkState.STOPPING and proto.stop_sent
    assert proto.idle(0.0) == []
    assert proto.closed(errors.NORMAL) is None
    assert state(proto) is LinkState.CLOSED


def test_a_normal_close_without_stop_is_a_lost_connection() -> None:
    proto = link()
    started(proto)
    failure = proto.closed(errors.NORMAL)
    assert isinstance(failure, errors.ConnectionLost) and state(proto) is LinkState.FAILED


def test_the_error_received_before_the_close_wins() -> None:
    proto = link()
    started(proto)
    proto.event_received(Status(state="error", message="unauthorized"))
    proto.event_received(ErrorMessage(message="later"))  # the first notice is kept
    assert isinstance(proto.closed(errors.INTERNAL), errors.Unauthorized)


def test_a_bad_config_notice_does_not_outlive_a_transient_close() -> None:
    proto = link()
    started(proto)
    proto.event_received(ErrorMessage(message="unsupported format"))
    failure = proto.closed(errors.INTERNAL)
    assert isinstance(failure, errors.ConnectionLost) and failure.close_code == errors.INTERNAL


def test_a_graceful_restart_is_remembered_and_owes_the_next_backend_every_held_frame() -> None:
    memo = Carryover()
    outbox = Outbox()
    for seq in range(3):
        outbox.push(frame(seq))
    first = link(memo=memo, outbox=outbox)
    started(first)
    write_all(first)
    first.event_received(Ack(source="system", seq=0))
    assert isinstance(first.closed(errors.RESTART), errors.ConnectionLost)
    assert memo.restarted
    outbox.connection_lost()
    second = link(memo=memo, outbox=outbox)
    started(second, streaming(False))  # a new backend: no resume
    assert not memo.restarted
    assert [f.seq for f in iter(outbox.take, None)] == [1, 2]


def test_a_restart_after_an_error_notice_is_not_remembered() -> None:
    memo = Carryover()
    proto = link(memo=memo)
    started(proto)
    proto.event_received(Status(state="error", message="unauthorized"))
    proto.closed(errors.RESTART)
    assert not memo.restarted


def test_the_final_summary_is_kept() -> None:
    proto = link()
    summary = FinalSummary(markdown="# done")
    assert proto.event_received(summary) == [Emit(summary)]
    assert proto.summary == summary


def stopped_then_lost(
    protocol: str = "auto", code: int = errors.ABNORMAL
) -> tuple[Carryover, Outbox]:
    """A session whose audio ended and whose `stop` went out on a connection that then
    closed with `code`, without the final summary: what the next connection inherits."""
    memo, outbox = Carryover(), Outbox()
    for seq in range(3):
        outbox.push(frame(seq))
    outbox.close()
    first = link(protocol, memo=memo, outbox=outbox)
    started(first, streaming(None if protocol == "0.2" else False))
    actions = write_all(first)
    assert kinds(actions)[-1] is SendStop
    if protocol == "0.2":  # the barrier after frame 1 comes back
        first.pong_received(next(a.payload for a in actions[1:] if isinstance(a, Ping)), 0.0)
    else:
        first.event_received(Ack(source="system", seq=1))
    assert isinstance(first.closed(code), errors.ConnectionLost)
    outbox.connection_lost()
    return memo, outbox


@pytest.mark.parametrize(
    ("protocol", "status"),
    [("auto", streaming(False)), ("auto", streaming(None)), ("0.2", streaming(None))],
    ids=["v03-new-session", "v02-backend", "v02-pinned"],
)
def test_after_stop_a_connection_that_does_not_resume_ends_the_session(
    protocol: str, status: Status
) -> None:
    """The backend may have ended the session at `stop` and its summary died with the
    socket: a new backend session would answer a second `stop` with a summary of nothing."""
    memo, outbox = stopped_then_lost(protocol)
    second = link(protocol, memo=memo, outbox=outbox)
    (fail,) = started(second, status)
    assert isinstance(fail, Fail) and isinstance(fail.error, errors.SummaryLost)
    assert "final summary" in str(fail.error)
    assert errors.decide(fail.error) is FATAL  # never retried into a new session
    assert state(second) is LinkState.FAILED  # no `StartWriting`: nothing goes to it
    outbox.abandon()  # the session ends: the frame never confirmed is counted so
    counts = outbox.counts()["system"]
    assert (counts.acked, counts.unconfirmed, counts.buffered) == (2, 1, 0)


def test_after_stop_a_resumed_session_gets_its_stop_again() -> None:
    """`stop` was lost with the socket before the backend read it: the session resumes,
    the frame it lacks goes again, then `stop`."""
    memo, outbox = stopped_then_lost()
    second = link(memo=memo, outbox=outbox)
    assert kinds(started(second, streaming(True, next_seq={"system": 2}))) == [Emit, StartWriting]
    actions = write_all(second)
    assert kinds(actions) == [SendStop]
    assert outbox.counts()["system"].resent == 1


def test_after_stop_and_a_graceful_restart_a_new_backend_session_gets_the_held_frames() -> None:
    """A backend that restarts (1012) leaves `stop` unanswered and the session unended: a
    backend without its state starts a new one, which gets the frame still held, then
    `stop`."""
    memo, outbox = stopped_then_lost(code=errors.RESTART)
    second = link(memo=memo, outbox=outbox)
    assert kinds(started(second, streaming(False))) == [Emit, StartWriting]
    assert kinds(write_all(second)) == [SendStop]
    assert outbox.counts()["system"].resent == 1


def test_once_the_final_summary_came_any_end_of_the_socket_is_the_end() -> None:
    """The summary is the last message of a stopped session: a close or a break after it
    loses nothing, and a reconnection would find no session."""
    for end in ("closed", "failed"):
        outbox = Outbox()
        outbox.push(frame(0))
        outbox.close()
        proto = link(outbox=outbox)
        started(proto)
        write_all(proto)
        proto.event_received(FinalSummary(markdown="# done"))
        if end == "closed":
            assert proto.closed(errors.INTERNAL) is None
        else:
            assert proto.failed()
        assert state(proto) is LinkState.CLOSED


def test_before_the_final_summary_a_break_is_a_failure() -> None:
    proto = link()
    started(proto)
    assert not proto.failed()
    assert state(proto) is LinkState.FAILED
