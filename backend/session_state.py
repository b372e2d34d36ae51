"""Where a session's state lives: in this process only, or shared by every instance.

A `SessionLog` stands between a session and its client: a frame may be acknowledged only
once the log holds it (`persisted`), and a final reaches the client only after the log
has recorded it (`deliver`), so a session taken up elsewhere neither loses acknowledged
audio nor sends a final twice. `MemoryState` keeps nothing outside the process: every
frame counts as kept and every message goes straight out (the single-instance default).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Send = Callable[[dict[str, Any]], None]


class StoreUnavailable(Exception):
    """The shared store cannot be reached: nothing new is promised until it is back."""


class SessionLog(Protocol):
    on_fenced: Callable[[], None]  # called when another instance has taken the session over
    attempt: int  # the fencing token this copy writes under (0: not shared)

    def frame(self, source: str, seq: int, pcm: bytes) -> None:
        """Keep a received frame (before it may be acknowledged)."""

    def deliver(
        self, message: dict[str, Any], keep_from: int, send: Send, adaptation: str | None = None
    ) -> None:
        """Send `message` once kept; a final drops the source's audio before `keep_from`
        and, with the recogniser's `adaptation` after it, is what a resume starts from."""

    def persisted(self, source: str) -> int:
        """The last seq of `source` that is kept (acks stop there)."""

    async def settled(self) -> None:
        """Until everything handed in is kept and sent (or the log is fenced off)."""

    async def end(self) -> None:
        """The session is over: forget it."""

    async def close(self) -> None:
        """Stop writing (this process lets the session go)."""


@dataclass
class SavedSource:
    next_seq: int
    keep_from: int  # first seq of the audio since the source's last final
    frame_bytes: int
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    finals: list[dict[str, Any]] = field(default_factory=list)
    adaptation: str | None = None  # the recogniser's after the last final, to start from


@dataclass
class Saved:
    """A session as another instance left it: taken over, with a fresh fencing token."""

    log: SessionLog
    sources: dict[str, SavedSource]


class SessionState(Protocol):
    shared: bool

    async def create(self, session_id: str, digest: str) -> SessionLog:
        """A log for a new session (raises StoreUnavailable)."""

    async def resume(self, session_id: str, secret: str) -> Saved | None:
        """Take the session over, if the store holds it (raises StoreUnavailable)."""

    async def close(self) -> None: ...


class MemoryLog:
    """Nothing outside the process: kept at once, sent at once."""

    def __init__(self) -> None:
        self.on_fenced: Callable[[], None] = lambda: None
        self.attempt = 0

    def frame(self, source: str, seq: int, pcm: bytes) -> None:
        pass

    def deliver(
        self, message: dict[str, Any], keep_from: int, send: Send, adaptation: str | None = None
    ) -> None:
        send(message)

    def persisted(self, source: str) -> int:
        return sys.maxsize

    async def settled(self) -> None:
        pass

    async def end(self) -> None:
        pass

    async def close(self) -> None:
        pass


class MemoryState:
    """Sessions live in this process only (a restart loses them)."""

    shared = False

    async def create(self, session_id: str, digest: str) -> SessionLog:
        return MemoryLog()

    async def resume(self, session_id: str, secret: str) -> Saved | None:
        return None

    async def close(self) -> None:
        pass


def session_state(url: str | None, resume_window: float) -> SessionState:
    """The store `serve --store` names: Redis (redis://HOST:PORT/DB), or this process."""
    if url is None:
        return MemoryState()
    from backend.redis_store import RedisState  # redis-py only when asked for

    return RedisState(url, resume_window)
