"""Backend sessions and the store that keeps them through a resume window (v0.3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from loguru import logger

from backend.admission import digest, may_resume, new_resume_secret
from backend.asr import (
    NullRecognizer,
    Recognizer,
    RecognizerFactory,
    RecognizerUnavailable,
    close_factory,
)
from backend.config import BackendConfig
from backend.handover import hand_over
from backend.recording import Recording
from backend.replay import finals_to_replay
from backend.session_state import MemoryLog, MemoryState, Saved, SessionLog, SessionState
from backend.stream import SourceStream
from pipeline.audio import BYTES_PER_SECOND
from pipeline.messages import to_wire
from pipeline.protocol import Status

Send = Callable[[dict[str, Any]], None]


# finals sent again on a resume from the shared store to a client that does not say how
# many it received (it dedups)
REPLAYED = 4

SessionKey = tuple[str, int]  # (session_id, instance): ids are public, keys are not shared


class BackendSession:
    """A user session on the backend: its sources, transcript, and the attached socket."""

    def __init__(
        self,
        session_id: str,
        resumable: bool,
        config: BackendConfig,
        recognizers: RecognizerFactory,
        executor: Executor | None,
        instance: int = 0,
    ) -> None:
        self.session_id = session_id
        self.instance = instance  # > 0: another session already held this id when it began
        self.resumable = resumable
        # The private resume secret goes to the client once; only its digest stays here.
        self.resume_secret: str | None
        self.resume_secret, self.resume_digest = new_resume_secret()
        self.config = config
        self.recognizers = recognizers
        self.executor = executor
        self.recording = (
            Recording(config.record_dir, session_id, instance)
            if config.record_dir is not None
            else None
        )
        self.streams: dict[str, SourceStream] = {}
        self.send: Send | None = None  # the attached connection, if any
        self.owner: object | None = None
        self.unconfirmed_finals: list[dict[str, Any]] = []  # sent on the current socket
        self.released: dict[str, int] = {}  # finals per source sent, or due on the next socket
        self.expiry: asyncio.TimerHandle | None = None
        # Frees a recogniser held by a detached session, when the pool has none left.
        self.reclaim: Callable[[str | None], asyncio.Task[Recognizer] | None] | None = None
        self.log = logger.bind(session_id=session_id)
        self.state: SessionLog = MemoryLog()  # where acked audio and sent finals are kept

    def stream(self, source: str, adaptation: str | None = None) -> SourceStream:
        """The source's stream; a new one's recogniser starts from `adaptation`, if any."""
        stream = self.streams.get(source)
        if stream is None:
            unavailable: str | None = None
            pending: asyncio.Task[Recognizer] | None = None
            try:
                recognizer: Recognizer = self.recognizers(adaptation)
            except RecognizerUnavailable as exc:
                recognizer = NullRecognizer()
                pending = self.reclaim(adaptation) if self.reclaim is not None else None
                unavailable = None if pending is not None else str(exc)
            stream = self.streams[source] = SourceStream(
                source,
                recognizer,
                self._deliver,
                recording=self.recording,
                executor=self.executor,
                # resumable sessions are v0.3: their acks pace the client (see stream.py)
                queue_seconds=self.config.asr_queue_seconds_v03
                if self.resumable
                else self.config.asr_queue_seconds,
                unique_ids=self.resumable,
                pending=pending,
                # only the legacy v0.2 mode drops; otherwise the connection stops reading
                drop_when_full=self.config.protocol == "0.2",
            ).start()
            stream.adaptation = adaptation  # what it started from, until its first final
            if unavailable is not None:
                self.log.warning("no recogniser for {}: {}", source, unavailable)
                stream.recognizing = False
                self._deliver(to_wire(Status(state="no_asr_provider", message=unavailable)))
        return stream

    def _deliver(self, message: dict[str, Any]) -> None:
        """Through the session's state: a final is sent once it is kept."""
        keep_from, adaptation = 0, None
        if message["type"] == "asr_final":
            stream = self.streams.get(message["source"])
            if stream is not None and stream.frame_bytes:
                keep_from = int(message["t1"] * BYTES_PER_SECOND) // stream.frame_bytes
            if stream is not None:
                adaptation = stream.adaptation
        self.state.deliver(message, keep_from, self._send_now, adaptation)

    def _send_now(self, message: dict[str, Any]) -> None:
        if message["type"] == "asr_final":
            self.unconfirmed_finals.append(message)
            source = message["source"]
            self.released[source] = self.released.get(source, 0) + 1
        if self.send is not None:
            self.send(message)

    def attach(
        self, owner: object, send: Send, received: dict[str, int] | None = None
    ) -> list[dict[str, Any]]:
        """Bind a socket; returns the finals to send again: those after the ones the client
        `received` (per source), or, when it does not say, those sent on the lost socket."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        replay, self.unconfirmed_finals = self.unconfirmed_finals, []
        if received is not None:
            finals = {source: stream.finals for source, stream in self.streams.items()}
            replay = finals_to_replay(finals, self.released, received)
        self.owner, self.send = owner, send
        return replay

    def detach(self, owner: object) -> bool:
        """Unbind the socket if `owner` still holds it (a newer socket may have taken over)."""
        if self.owner is not owner:
            return False
        self.owner, self.send = None, None
        return True

    @property
    def key(self) -> SessionKey:
        return (self.session_id, self.instance)

    def hand_out_secret(self) -> str | None:
        """The resume secret, the first time only (it is sent on the first `streaming`)."""
        secret, self.resume_secret = self.resume_secret, None
        return secret

    @property
    def held_bytes(self) -> int:
        """Audio this session holds in memory, waiting for its recognisers."""
        return sum(stream.queued_bytes for stream in self.streams.values())

    def transcript(self) -> list[dict[str, Any]]:
        finals = [final for stream in self.streams.values() for final in stream.finals]
        return sorted(finals, key=lambda f: (f["t0"], f["source"]))

    def restore(self, saved: Saved) -> None:
        """Take up a session another instance left: its finals, seqs and timelines, and
        the audio since each source's last final fed to new recognisers, which start
        from the adaptation the last final left (they recognise as the old ones would)."""
        self.state = saved.log
        if self.recording is not None:  # this instance's part of the recording
            starts = {s: k.next_seq * k.frame_bytes for s, k in saved.sources.items()}
            self.recording.segment(saved.log.attempt, starts)
        for source, kept in saved.sources.items():
            stream = self.stream(source, kept.adaptation)
            stream.restore(kept.keep_from, kept.frame_bytes, kept.finals)
            for seq, pcm in kept.frames:
                stream.accept(pcm, seq, record=False)
            stream.next_seq = max(stream.next_seq, kept.next_seq)
            stream.frames_since_ack = 0
        self.unconfirmed_finals = [f for k in saved.sources.values() for f in k.finals[-REPLAYED:]]
        self.released = {source: len(kept.finals) for source, kept in saved.sources.items()}

    async def close(self) -> None:
        await self.state.close()
        for stream in self.streams.values():
            await stream.close()
        if self.recording is not None:
            self.recording.close()


@dataclass
class Opened:
    session: BackendSession
    resumed: bool
    superseded: object | None = None  # the connection of a stale local copy, to close


@runtime_checkable
class Supersedable(Protocol):
    def supersede(self) -> None: ...


class SessionStore:
    """Live sessions by id; a detached resumable session waits out the resume window."""

    def __init__(
        self,
        config: BackendConfig,
        recognizers: RecognizerFactory,
        executor: Executor | None = None,
        state: SessionState | None = None,
    ) -> None:
        self.config = config
        self.recognizers = recognizers
        self.state: SessionState = state or MemoryState()
        # Recognisers block: their calls run on these threads (pocketsphinx's only wait
        # for a decoder process), one call per source at a time: a thread per decoder.
        self._own_executor = executor is None
        self._closed = False
        self.executor: Executor = executor or ThreadPoolExecutor(
            max_workers=config.asr_decoders, thread_name_prefix="asr"
        )
        self.sessions: dict[SessionKey, BackendSession] = {}
        self.detached: dict[SessionKey, BackendSession] = {}  # oldest first
        self._connections = 0  # sockets open (the capacity that `max_sessions` caps)
        self.expired = 0
        self.evicted = 0  # detached sessions ended early by `max_detached`/`max_detached_bytes`
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        """Sockets currently open."""
        return self._connections

    def connect(self, limit: int) -> bool:
        """Count a new socket in, unless `limit` are open already (then False)."""
        if self._connections >= limit:
            return False
        self._connections += 1
        return True

    def disconnect(self) -> None:
        """A socket counted in by `connect` closed."""
        self._connections -= 1

    def _close_later(self, session: BackendSession) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def open(self, session_id: str, resume_secret: object, wants_resume: bool) -> Opened:
        """Resume the session if the client holds its resume secret, else start a fresh one.

        The id alone never reaches an existing session: a start that carries an id in use
        (v0.2, or a resume without the right secret) gets a separate session of its own.
        """
        resumable = wants_resume and self.config.protocol == "0.3"
        existing = self.sessions.get((session_id, 0))
        if (
            existing is not None
            and existing.resumable
            and resumable
            and may_resume(existing.resume_digest, resume_secret)
        ):
            self.detached.pop(existing.key, None)
            existing.log.info("session {} resumed", _short_id(session_id))
            return Opened(existing, resumed=True)
        instance = 0
        while (session_id, instance) in self.sessions:
            instance += 1
        session = BackendSession(
            session_id, resumable, self.config, self.recognizers, self.executor, instance
        )
        session.reclaim = self._reclaim
        self.sessions[session.key] = session
        session.log.info(
            "session {} started{}",
            _short_id(session_id),
            "" if instance == 0 else f" (id in use: a separate session, #{instance})",
        )
        return Opened(session, resumed=False)

    async def open_shared(
        self, session_id: str, resume_secret: object, wants_resume: bool
    ) -> Opened:
        """`open`, with the session's state in the shared store when there is one: a
        resume takes it over from whichever instance had it (raises StoreUnavailable)."""
        resumable = wants_resume and self.config.protocol == "0.3"
        if not self.state.shared or not resumable:
            return self.open(session_id, resume_secret, wants_resume)
        if isinstance(resume_secret, str) and resume_secret:
            saved = await self.state.resume(session_id, resume_secret)
            if saved is not None:
                return self._take_over(session_id, saved, resume_secret)
        opened = self.open(session_id, None, wants_resume)
        session = opened.session
        try:
            session.state = await self.state.create(session_id, session.resume_digest)
            session.state.on_fenced = lambda: self._fenced(session)
            if session.recording is not None:
                session.recording.segment(session.state.attempt, {})
        except Exception:
            self.discard(session)
            raise
        return opened

    def _take_over(self, session_id: str, saved: Saved, secret: str) -> Opened:
        """The store's copy wins: a local copy of the same session is stale, and goes."""
        superseded = None
        stale = self.sessions.get((session_id, 0))
        if stale is not None and may_resume(stale.resume_digest, secret):
            superseded = stale.owner
            self.discard(stale)
        instance = 0
        while (session_id, instance) in self.sessions:
            instance += 1
        session = BackendSession(
            session_id, True, self.config, self.recognizers, self.executor, instance
        )
        session.resume_secret = None  # the client has it already
        session.resume_digest = digest(secret)
        session.reclaim = self._reclaim
        session.restore(saved)
        saved.log.on_fenced = lambda: self._fenced(session)
        self.sessions[session.key] = session
        session.log.info("session {} taken up from the shared store", _short_id(session.session_id))
        return Opened(session, resumed=True, superseded=superseded)

    def _reclaim(self, adaptation: str | None) -> asyncio.Task[Recognizer] | None:
        """A recogniser freed from a detached session, for a live one the pool left without."""
        return hand_over(self.detached.values(), self.recognizers, adaptation)

    def _fenced(self, session: BackendSession) -> None:
        """Another instance took the session over: let this copy go (not the store's)."""
        owner = session.owner
        session.owner, session.send = None, None
        if isinstance(owner, Supersedable):
            owner.supersede()
        self.discard(session)

    def lost(self, session: BackendSession, owner: object) -> None:
        """The socket died without `stop`: keep a resumable session for the window."""
        if not session.detach(owner) or self.sessions.get(session.key) is not session:
            return
        if not session.resumable or self.config.resume_window <= 0:
            self.discard(session)
            return
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(self.config.resume_window, self._expire, session)
        if session.recording is not None:
            session.recording.close()  # no descriptors held while detached; reopened on resume
        self.detached[session.key] = session
        session.log.info(
            "session {} detached; resumable for {} s",
            _short_id(session.session_id),
            self.config.resume_window,
        )
        self._bound_detached()

    def _bound_detached(self) -> None:
        """Over `max_detached` sessions or `max_detached_bytes`, the oldest detached ends."""
        while self.detached and (
            len(self.detached) > self.config.max_detached
            or sum(s.held_bytes for s in self.detached.values()) > self.config.max_detached_bytes
        ):
            oldest = next(iter(self.detached.values()))
            self.evicted += 1
            oldest.log.info("over the limit of detached sessions; session discarded")
            self.discard(oldest)

    def _expire(self, session: BackendSession) -> None:
        if session.send is None and self.sessions.get(session.key) is session:
            self.expired += 1
            session.log.info("resume window over; session discarded")
            self.discard(session)

    def discard(self, session: BackendSession) -> None:
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
            session.log.info("session {} ended", _short_id(session.session_id))
        self.detached.pop(session.key, None)
        if session.expiry is not None:
            session.expiry.cancel()
        self._close_later(session)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            if session.expiry is not None:
                session.expiry.cancel()
            await session.close()
        self.sessions.clear()
        self.detached.clear()
        await self.state.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if not self._closed:
            self._closed = True
            await asyncio.get_running_loop().run_in_executor(
                self.executor, close_factory, self.recognizers
            )
            if self._own_executor:
                self.executor.shutdown(wait=False, cancel_futures=True)


def _short_id(session_id: str) -> str:
    """A session id as the operator's log shows it: printable, bounded."""
    text = session_id.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= 40 else text[:37] + "..."
