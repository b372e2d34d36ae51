"""Backend sessions and the store that keeps them through a resume window (v0.3)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from loguru import logger

from backend.asr import (
    NullRecognizer,
    Recognizer,
    RecognizerFactory,
    RecognizerUnavailable,
    close_factory,
)
from backend.config import BackendConfig
from backend.recording import Recording
from backend.stream import SourceStream

Send = Callable[[dict[str, Any]], None]


class BackendSession:
    """A user session on the backend: its sources, transcript, and the attached socket."""

    def __init__(
        self,
        session_id: str,
        token: str | None,
        resumable: bool,
        config: BackendConfig,
        recognizers: RecognizerFactory,
        executor: Executor | None,
    ) -> None:
        self.session_id = session_id
        self.token = token
        self.resumable = resumable
        self.config = config
        self.recognizers = recognizers
        self.executor = executor
        self.recording = (
            Recording(config.record_dir, session_id) if config.record_dir is not None else None
        )
        self.streams: dict[str, SourceStream] = {}
        self.send: Send | None = None  # the attached connection, if any
        self.owner: object | None = None
        self.unconfirmed_finals: list[dict[str, Any]] = []  # sent on the current socket
        self.expiry: asyncio.TimerHandle | None = None
        self.log = logger.bind(session_id=session_id)

    def stream(self, source: str) -> SourceStream:
        stream = self.streams.get(source)
        if stream is None:
            unavailable: str | None = None
            try:
                recognizer: Recognizer = self.recognizers()
            except RecognizerUnavailable as exc:
                recognizer, unavailable = NullRecognizer(), str(exc)
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
                # only the legacy v0.2 mode drops; otherwise the connection stops reading
                drop_when_full=self.config.protocol == "0.2",
            )
            if unavailable is not None:
                self.log.warning("no recogniser for {}: {}", source, unavailable)
                stream.recognizing = False
                self._deliver(
                    {"type": "status", "state": "no_asr_provider", "message": unavailable}
                )
        return stream

    def _deliver(self, message: dict[str, Any]) -> None:
        if message["type"] == "asr_final":
            self.unconfirmed_finals.append(message)
        if self.send is not None:
            self.send(message)

    def attach(self, owner: object, send: Send) -> list[dict[str, Any]]:
        """Bind a socket; returns the finals sent on the lost one, to send again."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        replay, self.unconfirmed_finals = self.unconfirmed_finals, []
        self.owner, self.send = owner, send
        return replay

    def detach(self, owner: object) -> bool:
        """Unbind the socket if `owner` still holds it (a newer socket may have taken over)."""
        if self.owner is not owner:
            return False
        self.owner, self.send = None, None
        return True

    def transcript(self) -> list[dict[str, Any]]:
        finals = [final for stream in self.streams.values() for final in stream.finals]
        return sorted(finals, key=lambda f: (f["t0"], f["source"]))

    async def close(self) -> None:
        for stream in self.streams.values():
            await stream.close()
        if self.recording is not None:
            self.recording.close()


@dataclass
class Opened:
    session: BackendSession
    resumed: bool


class SessionStore:
    """Live sessions by id; a detached resumable session waits out the resume window."""

    def __init__(
        self,
        config: BackendConfig,
        recognizers: RecognizerFactory,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.recognizers = recognizers
        # Recognisers block: their calls run on these threads (pocketsphinx's only wait
        # for a decoder process), one call per source at a time: a thread per decoder.
        self._own_executor = executor is None
        self._closed = False
        self.executor: Executor = executor or ThreadPoolExecutor(
            max_workers=config.asr_decoders, thread_name_prefix="asr"
        )
        self.sessions: dict[str, BackendSession] = {}
        self.connections = 0  # sockets currently open (the capacity that `max_sessions` caps)
        self.expired = 0
        self._closing: set[asyncio.Task[None]] = set()

    def _close_later(self, session: BackendSession) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def open(self, session_id: str, token: str | None, wants_resume: bool) -> Opened:
        """Resume the session if the client may, else start a fresh one.

        Raises PermissionError when the id belongs to a session opened with another token.
        """
        resumable = wants_resume and self.config.protocol == "0.3"
        existing = self.sessions.get(session_id)
        if existing is not None and existing.resumable and resumable:
            if not _same(existing.token, token):
                raise PermissionError("this session belongs to another client")
            return Opened(existing, resumed=True)
        if existing is not None:  # not resumable: it ends here, a new one begins
            self.sessions.pop(session_id)
            self._close_later(existing)
        session = BackendSession(
            session_id, token, resumable, self.config, self.recognizers, self.executor
        )
        self.sessions[session_id] = session
        return Opened(session, resumed=False)

    def lost(self, session: BackendSession, owner: object) -> None:
        """The socket died without `stop`: keep a resumable session for the window."""
        if not session.detach(owner):
            return
        if not session.resumable or self.config.resume_window <= 0:
            self.discard(session)
            return
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(self.config.resume_window, self._expire, session)
        session.log.info("detached; resumable for {} s", self.config.resume_window)

    def _expire(self, session: BackendSession) -> None:
        if session.send is None and self.sessions.get(session.session_id) is session:
            self.expired += 1
            session.log.info("resume window over; session discarded")
            self.discard(session)

    def discard(self, session: BackendSession) -> None:
        if self.sessions.get(session.session_id) is session:
            del self.sessions[session.session_id]
        if session.expiry is not None:
            session.expiry.cancel()
        self._close_later(session)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            if session.expiry is not None:
                session.expiry.cancel()
            await session.close()
        self.sessions.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if not self._closed:
            self._closed = True
            await asyncio.get_running_loop().run_in_executor(
                self.executor, close_factory, self.recognizers
            )
            if self._own_executor:
                self.executor.shutdown(wait=False, cancel_futures=True)


def _same(expected: str | None, presented: str | None) -> bool:
    if expected is None or presented is None:
        return expected == presented
    return hmac.compare_digest(expected.encode(), presented.encode())
