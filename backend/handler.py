"""A client's messages, one at a time: `start` opens (or resumes) a session, audio is
checked and queued for the session's recognisers, `stop` ends the session.

The handler holds what the client told it (the session, v0.2 or v0.3, stopped or not);
its connection (`backend/connection.py`) owns the socket, the writer and the budgets.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMessage, WSMsgType

from backend.admission import AT_CAPACITY
from backend.session_state import StoreUnavailable
from backend.store import BackendSession, Opened, Supersedable
from backend.stream import SourceStream
from backend.ticker import ack
from pipeline.audio import AUDIO_FORMAT, CHANNELS, SAMPLE_RATE
from pipeline.messages import to_wire
from pipeline.protocol import (
    BINARY_SEQ_VERSION,
    AudioPayload,
    ErrorMessage,
    Status,
    decode_audio_binary,
    decode_audio_json,
    decode_finals_received,
)
from pipeline.redaction import Secret

if TYPE_CHECKING:
    from backend.connection import ClientConnection

TOO_MUCH_AUDIO = "audio message over {limit} bytes of PCM: ignored"


class MessageHandler:
    """The protocol's rules for what a client sends (PROTOCOL.md)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.config, self.store = connection.config, connection.store
        self.session: BackendSession | None = None
        self.v03 = False
        self.binary_seq = False  # a v0.3 client offered binary audio with seq (taken)
        self.stopped = False
        self.full_stream: SourceStream | None = None  # its queue is full: stop reading

    def send(self, message: dict[str, Any]) -> None:
        self.connection.send(message)

    def _refuse(self, reason: str | None) -> None:
        self.connection.refuse(reason)

    async def on_message(self, msg: WSMessage) -> bool:
        """Handle one socket message; True when the connection is done."""
        if msg.type is WSMsgType.TEXT:
            return await self._on_text(msg.data)
        if msg.type is WSMsgType.BINARY:
            return self._on_audio_binary(msg.data)
        # ERROR: aiohttp has closed the socket (e.g. 1009, a message too big)
        self.connection.log.info("connection error: {}", self.connection.ws.exception())
        return True

    async def _on_text(self, text: str) -> bool:
        """Handle one message; True when the connection is done."""
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            self._refuse("not JSON: ignored")
            return False
        if not isinstance(body, dict):
            self._refuse("not a JSON object: ignored")
            return False
        kind = body.get("type")
        if kind == "audio":
            self._on_audio_json(body)
        elif kind == "start":
            return await self._on_start(body)
        elif kind == "stop":
            return await self._on_stop(body)
        else:
            self._refuse(None)  # unknown types are ignored (PROTOCOL.md), within limits
        return False

    # -- start ----------------------------------------------------------------------

    async def _on_start(self, body: dict[str, Any]) -> bool:
        if self.session is not None:  # v0.2 acknowledges a second start again
            self._refuse(None)  # but it is a client's mistake, counted as one
            if not self.connection.budgets.cut_off:
                self.send(self._streaming_status(self.session, resumed=True))
            return False
        problem = _format_problem(body)
        if problem is not None:
            await self._reject(f"Unsupported audio format: {problem}")
            return True
        session_id = body.get("session_id")
        if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
            await self._reject("start needs a session_id")
            return True
        opened = await self._open(session_id, body)
        if opened is None:
            return True
        session = self.session = opened.session
        previous = opened.superseded or session.owner
        received = decode_finals_received(body) if opened.resumed else None
        replay = session.attach(self.connection, self.send, received)
        if isinstance(previous, Supersedable) and previous is not self.connection:
            previous.supersede()
        self.send(self._streaming_status(session, resumed=opened.resumed))
        for final in replay if opened.resumed else ():
            self.send(final)
        self.connection.start_ticker(session)
        return False

    async def _open(self, session_id: str, body: dict[str, Any]) -> Opened | None:
        """The session this start opens or resumes; None when the store cannot be reached
        (the socket is then closed with 1013: the client tries again later)."""
        capabilities = body.get("capabilities")
        self.v03 = (
            self.config.protocol == "0.3"
            and isinstance(capabilities, list)
            and "ack" in capabilities
        )
        wants_resume = self.v03 and "resume" in capabilities  # type: ignore[operator]
        self.binary_seq = self.v03 and "binary" in capabilities  # type: ignore[operator]
        try:
            return await self.store.open_shared(session_id, body.get("resume_token"), wants_resume)
        except StoreUnavailable as exc:
            self.connection.log.warning("session store unavailable: {}", exc)
            unavailable = to_wire(Status(state="error", message=AT_CAPACITY))
            await self.connection.close_after(unavailable, 1013, b"session store unavailable")
            return None

    def _streaming_status(self, session: BackendSession, *, resumed: bool) -> dict[str, Any]:
        if not self.v03:
            return to_wire(Status(state="streaming"))
        secret = session.hand_out_secret() if session.resumable and not resumed else None
        status = Status(
            state="streaming",
            resumed=resumed,
            next_seq={s: stream.next_seq for s, stream in session.streams.items()},
            resume_token=None if secret is None else Secret(secret, scrub=False),
            binary=BINARY_SEQ_VERSION if self.binary_seq else None,
        )
        return to_wire(status)

    async def _reject(self, message: str) -> None:
        await self.connection.close_after(to_wire(ErrorMessage(message=message)), 1000)

    # -- audio ----------------------------------------------------------------------

    def _on_audio_json(self, body: dict[str, Any]) -> None:
        try:
            payload = decode_audio_json(body)
        except ValueError as exc:
            self._refuse(f"bad audio ignored: {exc}")
            return
        self._accept(payload)

    def _on_audio_binary(self, data: bytes) -> bool:
        try:
            payload = decode_audio_binary(data)
        except ValueError as exc:
            self._refuse(f"bad audio ignored: {exc}")
            return False
        self._accept(payload)
        return False

    def _accept(self, payload: AudioPayload) -> None:
        if self.session is None:
            self._refuse("audio before start: ignored")
            return
        if not payload.pcm:
            self._refuse("empty audio ignored")
            return
        if self.stopped:
            self._refuse(None)  # nothing follows `stop`
            return
        if self.connection.draining:
            return  # not taken, not acknowledged: the client sends it to the next backend
        if len(payload.pcm) > self.config.max_audio_bytes:
            self._refuse(TOO_MUCH_AUDIO.format(limit=self.config.max_audio_bytes))
            return
        source = "mic" if payload.source == "microphone" else payload.source
        stream = self.session.stream(source)
        if stream.accept(payload.pcm, payload.seq if self.v03 else None):
            self.session.state.frame(source, stream.next_seq - 1, payload.pcm)
        if stream.full and not stream.drop_when_full:
            self.full_stream = stream
        if self.v03 and stream.frames_since_ack >= self.config.ack_every:
            self._ack(stream.source)

    async def wait_for_room(self) -> None:
        """A source's recogniser queue is full: read nothing more from this socket until
        it has room (TCP holds the client back; nothing is dropped, acks wait)."""
        stream, self.full_stream = self.full_stream, None
        assert stream is not None
        await stream.wait_for_room()

    def _ack(self, source: str) -> None:
        assert self.session is not None
        ack(self.session, source, self.send)

    # -- stop -----------------------------------------------------------------------

    async def _on_stop(self, body: dict[str, Any]) -> bool:
        session = self.session
        if self.stopped:
            return False
        if session is None or body.get("session_id") != session.session_id:
            self._refuse("stop needs the session_id of this session")
            return False
        self.stopped = True
        self.connection.stop(session)
        return False


def _format_problem(body: dict[str, Any]) -> str | None:
    rate, fmt, channels = body.get("sample_rate"), body.get("format"), body.get("channels")
    integers = type(rate) is int and type(channels) is int  # not 16000.0, not true
    if not integers or (rate, fmt, channels) != (SAMPLE_RATE, AUDIO_FORMAT, CHANNELS):
        got = ", ".join(_short(value) for value in (rate, fmt, channels))
        need = f"sample_rate {SAMPLE_RATE}, format {AUDIO_FORMAT}, channels {CHANNELS}"
        return f"got {got}; need {need}"
    return None


def _short(value: object, limit: int = 40) -> str:
    """A client's value, quoted in a reply without echoing a huge one back."""
    try:
        text = repr(value)
    except RecursionError:
        return "<deeply nested value>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
