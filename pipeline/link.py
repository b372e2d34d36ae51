"""The link protocol without I/O: every rule of one connection, as a pure state machine.

The shell (`pipeline.connection`) reads the socket and feeds this object what happened —
the socket opened, a decoded server event, a PONG, the writer ran dry, a frame was
written, the socket closed with a code — and carries out the actions it returns: send
`start`, start writing the outbox's frames, write a ping barrier, send `stop`, emit an
event, fail with a typed error. It never awaits, and it never touches a socket, so its
rules are tested by feeding it events (tests/unit/test_link.py).

    CONNECTING -opened-> AWAITING_CONNECTED -connected-> STARTING -streaming-> STREAMING
    STREAMING -outbox finished and drained into the socket-> STOPPING
    any -closed(code)-> CLOSED (a normal end) | FAILED (with the error that ended it)

The rules: `start` is sent once, and only after `connected`; v0.3 is offered unless the
configuration pins v0.2, and is spoken only when `streaming` carries `resumed`; messages
of another attempt are dropped; against v0.2 a PONG for a PING written after frame n
confirms frame n, and barriers unanswered past `BarrierWatch.bound` stall the writer; an
ack or `next_seq` beyond the last frame written is a protocol violation; the backend's
resume token is kept for the next connection; an error message received before the close
wins over the close (`errors.settle`); a close 1012 owes the next backend every frame still
held; `stop` goes out when the audio has ended and every frame has been written; once it
went out, a connection that does not resume the session ends it (`errors.SummaryLost`);
once the final summary came, any end of the socket is the session's end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from loguru import logger

from pipeline import errors
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds
from pipeline.outbox import Outbox
from pipeline.protocol import (
    BINARY_SEQ_VERSION,
    CAPABILITIES,
    CORE_CAPABILITIES,
    Ack,
    AsrFinal,
    AsrPartial,
    ErrorMessage,
    FinalSummary,
    Malformed,
    Segment,
    ServerEvent,
    Start,
    Status,
    Stop,
    Unknown,
)
from pipeline.redaction import Secret, redact
from pipeline.stall import Barriers
from pipeline.status import Connected, Connecting, StatusEvent, Streaming

LinkEvent = StatusEvent | ServerEvent
BARRIER_EVERY = 1  # frames per ping barrier against a v0.2 backend: each frame is confirmed


class LinkState(Enum):
    CONNECTING = auto()  # the socket is being opened
    AWAITING_CONNECTED = auto()  # open: waiting for the backend's `connected`
    STARTING = auto()  # `start` sent: waiting for `streaming`
    STREAMING = auto()  # writing the outbox's frames
    STOPPING = auto()  # `stop` sent: waiting for the final summary and the close
    CLOSED = auto()  # ended normally
    FAILED = auto()  # ended with an error


@dataclass
class Carryover:
    """What one connection hands to the next within a session."""

    token: Secret | None = None
    streamed: bool = False  # some connection of this session has reached `streaming`
    refreshes_left: int = 1  # token-provider retries allowed before the next `streaming`
    resume_token: Secret | None = None  # the session's private secret, from the backend
    # The last socket closed with 1012: the backend shut down gracefully, having transcribed
    # exactly what it acknowledged, so every frame still held is owed to the next backend.
    restarted: bool = False
    # Finals per source the session has received (deduplicated) from the backend session
    # it streams to: a resume says so, and the backend sends again only those after them.
    finals_received: dict[str, int] = field(default_factory=dict)
    # Some connection sent `stop`: unless it then closed with 1012 (a backend that restarts
    # leaves `stop` unanswered), the backend may have ended the session, so a later
    # connection that does not resume it cannot bring its final summary.
    stop_sent: bool = False

    def final_received(self, source: str) -> None:
        """A final of `source` reached the session's transcript."""
        self.finals_received[source] = self.finals_received.get(source, 0) + 1


# -- actions: what the shell is asked to do ------------------------------------------


@dataclass(frozen=True)
class SendStart:
    start: Start


@dataclass(frozen=True)
class SendStop:
    stop: Stop


@dataclass(frozen=True)
class StartWriting:
    """Begin draining the outbox into the socket (and wake the writer on its changes)."""


@dataclass(frozen=True)
class Ping:
    """A ping barrier: its PONG confirms every frame written before it."""

    payload: bytes


@dataclass(frozen=True)
class Wake:
    """A waiting writer may go on (a barrier came back)."""


@dataclass(frozen=True)
class Emit:
    event: LinkEvent


@dataclass(frozen=True)
class Fail:
    error: errors.LiveListenerError


Action = SendStart | SendStop | StartWriting | Ping | Wake | Emit | Fail


class LinkProtocol:
    """One connection's rules (see the module docstring). `clock` stamps the events it
    emits; the times of barriers are passed in, so stalls are tested without a clock.
    A little over 200 lines: one short method per input it is fed and per rule it keeps;
    split, the state machine's one state would be shared across classes."""

    def __init__(
        self,
        config: SessionConfig,
        ids: SessionIds,
        outbox: Outbox,
        memo: Carryover,
        *,
        connection_id: str,
        clock: Callable[[], float],
    ) -> None:
        self.config, self.ids, self.outbox, self.memo = config, ids, outbox, memo
        self.connection_id, self.clock = connection_id, clock
        self.log = logger.bind(
            session_id=ids.session_id, attempt_id=ids.attempt_id, connection_id=connection_id
        )
        self.state = LinkState.CONNECTING
        self.offered_v03 = config.protocol != "0.2"
        self.protocol: str | None = None  # the version spoken, once `streaming`
        self.uses_barriers = False  # v0.2: delivery is confirmed by ping barriers
        # offer the v2 binary framing (seq in the header, no base64) unless pinned to v1
        self.offered_binary = self.offered_v03 and config.binary_seq and not config.binary
        self.binary_seq = False  # audio goes as v2 binary frames (the backend said so)
        self.summary: FinalSummary | None = None
        self.pending: errors.LiveListenerError | None = None  # wins at the close
        self.barriers = Barriers(outbox.written_marks, outbox.confirm, self.log.warning)

    # -- what the shell feeds -----------------------------------------------------------

    def connecting(self) -> list[Action]:
        return [Emit(Connecting(at=self.clock(), connection_id=self.connection_id))]

    def opened(self) -> None:
        self.state = LinkState.AWAITING_CONNECTED

    @property
    def handshaking(self) -> bool:
        """No `streaming` yet: the handshake must finish within the connect timeout."""
        return self.protocol is None

    @property
    def stop_sent(self) -> bool:
        return self.state is LinkState.STOPPING

    def event_received(self, event: ServerEvent) -> list[Action]:
        """A decoded message from the backend."""
        if isinstance(event, Status | ErrorMessage) and event.message:
            cleaned = redact(event.message)  # a backend may echo the token back
            if cleaned != event.message:
                event = dataclasses.replace(event, message=cleaned)
        if event.attempt_id is not None and event.attempt_id != self.ids.attempt_id:
            self.log.info("dropped a late message of attempt {}", event.attempt_id)
            return []
        match event:
            case Malformed(reason=reason, text=text):
                self.log.warning("skipped a malformed message ({}): {!r}", reason, text[:80])
                return []
            case Unknown(type=kind):
                self.log.info("ignored a message of unknown type {!r}", kind)
                return []
            case Status(state="connected"):
                return self._connected()
            case Status(state="streaming"):
                return self._streaming(event) if self.state is LinkState.STARTING else []
            case Status(state="error", message=message):
                self.pending = errors.from_server("error", message)
            case ErrorMessage(message=message):
                self.pending = self.pending or errors.from_server("error_message", message)
            case Ack(source=source, seq=seq):
                violation = self._beyond_written(source, seq, "an ack")
                if violation is not None:
                    return [violation]
                self.outbox.confirm(source, seq)
            case AsrPartial() | AsrFinal() if self.protocol == "0.2":
                # a v0.2 backend ignores seq and counts time from the first frame written;
                # a v0.3 backend places audio by seq, gaps included: its times are the source's
                assert isinstance(event, Segment)
                base = self.outbox.timeline_base(event.source) * self.config.frame_seconds
                event = event.shifted(base)
            case FinalSummary():
                self.summary = event
        return [Emit(event)]

    def pong_received(self, payload: bytes, now: float) -> list[Action]:
        """A PONG: the barrier it answers, and every earlier one, confirm their frames."""
        return [Wake()] if self.barriers.answered(payload, now) else []

    def take(self, now: float) -> AudioFrame | None:
        """The next frame to write; None when there is none or the link is stalled. (With
        v0.3 this is the outbox's own `take`, which the writer then calls directly.)"""
        return None if self.uses_barriers and self.barriers.stalled(now) else self.outbox.take()

    def written(self, now: float) -> list[Action]:
        """A frame went into the socket (a rule of v0.2 only: the writer skips it with v0.3)."""
        self.barriers.since += 1
        if self.uses_barriers and self.barriers.since >= BARRIER_EVERY:
            return [Ping(self.barriers.send(now))]
        return []

    def idle(self, now: float) -> list[Action]:
        """The writer ran dry: close the last barrier, and send `stop` once all is written."""
        actions: list[Action] = []
        stalled = self.barriers.stall_logged
        if self.uses_barriers and self.barriers.since and not stalled:
            actions.append(Ping(self.barriers.send(now)))
        if self.outbox.finished and self.state is LinkState.STREAMING and not stalled:
            self.state = LinkState.STOPPING
            self.memo.stop_sent = True
            actions.append(SendStop(Stop(self.ids.session_id)))
        return actions

    def closed(self, code: int | None) -> errors.LiveListenerError | None:
        """The socket closed with `code`: what ended the connection (None: a normal end,
        and any end once the final summary came — the session is over)."""
        failure = errors.settle(self.pending, errors.from_close(code, stopping=self.stop_sent))
        if self.summary is not None:
            failure = None
        # a graceful restart (1012) owes the next backend everything still held
        self.memo.restarted = code == errors.RESTART and failure is not self.pending
        self.state = LinkState.CLOSED if failure is None else LinkState.FAILED
        return failure

    def failed(self) -> bool:
        """The connection broke another way (a socket error, a violation). True when that
        ends nothing: the final summary came first, and the session is over."""
        over = self.summary is not None
        self.state = LinkState.CLOSED if over else LinkState.FAILED
        return over

    # -- the rules ----------------------------------------------------------------------

    def _connected(self) -> list[Action]:
        if self.state is not LinkState.AWAITING_CONNECTED:
            return []  # `start` goes once
        self.state = LinkState.STARTING
        return [
            Emit(Connected(at=self.clock(), connection_id=self.connection_id)),
            SendStart(self._start()),
        ]

    def _start(self) -> Start:
        resuming = self.offered_v03 and self.memo.streamed
        resume = self.outbox.resume_point() if resuming else None
        return Start(
            session_id=self.ids.session_id,
            attempt_id=self.ids.attempt_id,
            connection_id=self.connection_id,
            client_features=self.config.client_features,
            capabilities=(CAPABILITIES if self.offered_binary else CORE_CAPABILITIES)
            if self.offered_v03
            else None,
            resume=resume or None,
            # every reconnection is a resume, even with nothing in flight to resend
            resume_token=self.memo.resume_token if self.offered_v03 else None,
            finals_received=dict(self.memo.finals_received) if resuming else None,
        )

    def _streaming(self, status: Status) -> list[Action]:
        v03 = self.offered_v03 and status.resumed is not None
        resumed = bool(status.resumed) and v03
        if self.memo.stop_sent and not resumed and not self.memo.restarted:
            return [self._summary_lost()]  # (a restart closes with 1012 instead of ending it)
        if resumed:
            for source, seq in (status.next_seq or {}).items():
                violation = self._beyond_written(source, seq - 1, "next_seq")
                if violation is not None:
                    return [violation]
        self.protocol = "0.3" if v03 else "0.2"
        self.uses_barriers = not v03
        self.binary_seq = v03 and self.offered_binary and status.binary == BINARY_SEQ_VERSION
        self.state = LinkState.STREAMING
        if self.config.protocol == "0.3" and not v03:
            self.log.warning("the backend speaks only v0.2: no acks, no resume")
        if resumed:
            self.outbox.resume(dict(status.next_seq or {}))
        else:  # nothing below the first held frame is owed after a graceful restart
            self.outbox.resume({} if v03 and self.memo.restarted else None)
        self.memo.restarted = False
        if not resumed:  # a new backend session: its finals are counted from none
            self.memo.finals_received.clear()
        first = not self.memo.streamed
        if status.resume_token is not None:  # a new session on the backend: its new secret
            self.memo.resume_token = status.resume_token
        self.memo.streamed = True
        self.memo.refreshes_left = 1
        self.log.info(
            "streaming (protocol {}, {} audio, {})",
            self.protocol,
            "binary" if self.binary_seq else ("binary v1" if self.config.binary else "JSON"),
            "first connection" if first else ("resumed" if resumed else "session reset"),
        )
        streaming = Streaming(
            at=self.clock(),
            connection_id=self.connection_id,
            protocol=self.protocol,
            resumed=None if first else resumed,
        )
        return [Emit(streaming), StartWriting()]

    def _summary_lost(self) -> Fail:
        """`stop` went out on an earlier connection, and this backend does not resume the
        session: it ended it (or lost it), and what it sent at the end is gone. Sending
        `stop` again would end a new, empty session and take its summary for this one's."""
        self.log.warning("the session was stopped on a lost connection; its summary is lost")
        self.state = LinkState.FAILED
        return Fail(
            errors.SummaryLost(
                "the connection closed after `stop`, and the backend no longer knows the "
                "session: its final summary, and any finals sent with it, were lost"
            )
        )

    def _beyond_written(self, source: str, seq: int, what: str) -> Fail | None:
        """Refuse a confirmation of frames never written (a lying or confused backend)."""
        last = self.outbox.last_written(source)
        if seq <= last:
            return None
        self.log.warning(
            "protocol violation: {} confirms {} up to seq {}, but the last written is {}",
            what,
            source,
            seq,
            last,
        )
        self.state = LinkState.FAILED
        return Fail(
            errors.ProtocolViolation(
                f"protocol violation: {what} for {source} seq {seq} beyond the last frame "
                f"written ({last})"
            )
        )
