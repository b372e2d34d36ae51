"""Session state in Redis, so that any instance behind a load balancer can resume a session.

Per session (keys named from the session id and the digest of its resume secret, so the
id alone finds nothing): a hash with the fencing token (backend/lease.py), per source
the next seq, the first seq since the last final, the frame size, the count of finals
and the recogniser's adaptation after the last one (never sent to the client); a Redis
Stream per source holding the audio since its last final (entry id = seq); a list of the
finals sent. Every key expires after the resume window unless written. A frame is
acknowledged only once its XADD has returned; a final is sent only once recorded, and the
audio it covers is trimmed (and the adaptation after it kept) in the same script.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError, ResponseError

from backend import lease
from backend.admission import digest
from backend.session_state import (
    Saved,
    SavedSource,
    Send,
    SessionLog,
    StoreUnavailable,
)
from pipeline.audio import FRAME_BYTES

RETRY_SECONDS = 0.2  # between attempts while Redis is unreachable
BATCH_FRAMES = 100  # frames of one source written by one script call


def _base(session_id: str, secret_digest: str) -> str:
    name = hashlib.sha256(f"{session_id}\0{secret_digest}".encode("utf-8", "surrogateescape"))
    return "ll:{" + name.hexdigest()[:40] + "}"


@dataclass
class _Keys:
    base: str

    @property
    def meta(self) -> str:
        return self.base + ":meta"

    @property
    def finals(self) -> str:
        return self.base + ":finals"

    def audio(self, source: str) -> str:
        return self.base + ":audio:" + source

    def for_source(self, source: str) -> list[str]:
        return [self.meta, self.audio(source), self.finals]


@dataclass
class _Frame:
    source: str
    seq: int
    pcm: bytes


@dataclass
class _Message:
    message: dict[str, Any]
    keep_from: int
    send: Send
    adaptation: str | None = None


class RedisLog:
    """One session's writer: operations go to Redis in order, each fenced by the token."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: _Keys,
        token: int,
        ttl_ms: int,
        persisted: dict[str, int] | None = None,
    ) -> None:
        self._client, self._keys, self._token, self._ttl = client, keys, str(token), ttl_ms
        self.attempt = token
        self.on_fenced: Callable[[], None] = lambda: None
        self._persisted = dict(persisted or {})
        self._frame_bytes: dict[str, int] = {}
        self._ops: deque[_Frame | _Message] = deque()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self.fenced = False
        self._append = client.register_script(lease.APPEND)
        self._final = client.register_script(lease.FINAL)
        self._end = client.register_script(lease.END)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> RedisLog:
        """Set the writer going: it writes what is handed in until `close`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def _push(self, op: _Frame | _Message) -> None:
        if self.fenced:
            return
        self._ops.append(op)
        self._settled.clear()
        self._wake.set()

    def frame(self, source: str, seq: int, pcm: bytes) -> None:
        self._frame_bytes[source] = len(pcm)
        self._push(_Frame(source, seq, pcm))

    def deliver(
        self, message: dict[str, Any], keep_from: int, send: Send, adaptation: str | None = None
    ) -> None:
        if not self._ops and message["type"] != "asr_final":
            if not self.fenced:
                send(message)
            return
        self._push(_Message(message, keep_from, send, adaptation))

    def persisted(self, source: str) -> int:
        return self._persisted.get(source, -1)

    async def settled(self) -> None:
        await self._settled.wait()

    async def _run(self) -> None:
        failing = False
        while True:
            if not self._ops:
                self._settled.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write(self._ops[0])
            except ResponseError as exc:
                if lease.FENCED in str(exc):
                    self._fence()
                    return
                raise
            except (RedisError, OSError) as exc:
                if not failing:
                    logger.warning("session store unreachable ({}); acks wait", exc)
                failing = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if failing:
                logger.info("session store reachable again")
                failing = False

    async def _write(self, op: _Frame | _Message) -> None:
        if isinstance(op, _Frame):
            batch = [op]
            for later in list(self._ops)[1:BATCH_FRAMES]:
                if not isinstance(later, _Frame) or later.source != op.source:
                    break
                batch.append(later)
            args: list[Any] = [self._token, self._ttl, op.source, self._frame_bytes[op.source]]
            for frame in batch:
                args += [frame.seq, frame.pcm]
            await self._append(keys=self._keys.for_source(op.source), args=args)
            for _ in batch:
                self._ops.popleft()
            self._persisted[op.source] = max(self.persisted(op.source), batch[-1].seq)
            return
        message = op.message
        if message["type"] == "asr_final":
            source = message["source"]
            index = int(str(message["segment_id"]).rsplit("-", 1)[1])
            adaptation = op.adaptation or ""
            args = [self._token, self._ttl, source, json.dumps(message), index, op.keep_from]
            await self._final(keys=self._keys.for_source(source), args=[*args, adaptation])
        self._ops.popleft()
        op.send(message)

    def _fence(self) -> None:
        """Another instance took the session over: write nothing more, send nothing more."""
        self.fenced = True
        self._ops.clear()
        self._settled.set()
        logger.warning("session taken over by another instance; this copy stops")
        self.on_fenced()

    async def end(self) -> None:
        await self.settled()
        await self.close()
        if self.fenced:
            return
        sources = list(self._persisted) + list(self._frame_bytes)
        keys = [self._keys.meta, self._keys.finals, *{self._keys.audio(s) for s in sources}]
        with contextlib.suppress(RedisError, OSError):
            await self._end(keys=keys, args=[self._token])

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class RedisState:
    """Sessions shared by every instance that uses the same Redis database."""

    shared = True

    def __init__(self, url: str, resume_window: float) -> None:
        self._client = aioredis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=5
        )
        self._ttl = max(1, round(resume_window * 1000))
        self._create = self._client.register_script(lease.CREATE)
        self._take = self._client.register_script(lease.TAKE)

    async def create(self, session_id: str, digest_: str) -> SessionLog:
        keys = _Keys(_base(session_id, digest_))
        try:
            await self._create(keys=[keys.meta], args=[digest_, self._ttl])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return RedisLog(self._client, keys, 1, self._ttl).start()

    async def resume(self, session_id: str, secret: str) -> Saved | None:
        keys = _Keys(_base(session_id, digest(secret)))
        try:
            token = await self._take(keys=[keys.meta], args=[self._ttl])
            if token is None:
                return None
            sources = await self._load(keys)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        persisted = {source: saved.next_seq - 1 for source, saved in sources.items()}
        log = RedisLog(self._client, keys, int(token), self._ttl, persisted).start()
        return Saved(log, sources)

    async def _load(self, keys: _Keys) -> dict[str, SavedSource]:
        raw_meta = cast(dict[bytes, bytes], await self._client.hgetall(keys.meta))
        meta = {k.decode(): v.decode() for k, v in raw_meta.items()}
        sources: dict[str, SavedSource] = {}
        for field, value in meta.items():
            if not field.startswith("next:"):
                continue
            source = field[len("next:") :]
            saved = sources[source] = SavedSource(
                next_seq=int(value),
                keep_from=int(meta.get("from:" + source, "0")),
                frame_bytes=int(meta.get("bytes:" + source, FRAME_BYTES)),
                adaptation=meta.get("adapt:" + source),
            )
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self._client.xrange(keys.audio(source)),
            )
            for entry_id, fields in entries:
                saved.frames.append((int(entry_id.split(b"-")[0]), fields[b"pcm"]))
        for raw in await self._client.lrange(keys.finals, 0, -1):
            final = json.loads(raw)
            source = final["source"]
            if source not in sources:  # a final with no audio kept: nothing to feed again
                sources[source] = SavedSource(0, 0, FRAME_BYTES)
            sources[source].finals.append(final)
        return sources

    async def close(self) -> None:
        await self._client.aclose()
