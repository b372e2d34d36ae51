"""The session state in Redis, against a real redis-server: what is kept, what a final
trims, and the fencing token that stops a stale owner."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import replace
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from backend.admission import new_resume_secret
from backend.asr import Hypothesis, Recognizer
from backend.config import BackendConfig
from backend.deploy.deploy import Redis
from backend.redis_store import RedisState
from backend.session_state import StoreUnavailable
from backend.store import BackendSession, SessionStore
from pipeline.audio import FRAME_BYTES
from tests.security.labeller import Labeller
from tests.security.polling import until_true

FRAME = FRAME_BYTES


def pcm(seq: int) -> bytes:
    return seq.to_bytes(4, "big") * (FRAME // 4)


def final(n: int, t1: float) -> dict[str, Any]:
    return {"type": "asr_final", "text": f"f{n}", "t0": 0.0, "t1": t1, "source": "mic",
            "segment_id": f"mic-{n}"}  # fmt: skip


async def test_frames_are_kept_finals_trim_them_and_a_resume_gets_the_rest(
    redis_server: Redis,
) -> None:
    secret, digest = new_resume_secret()
    first, second = RedisState(redis_server.url, 60), RedisState(redis_server.url, 60)
    client = aioredis.from_url(redis_server.url)
    try:
        log = await first.create("talk", digest)
        sent: list[dict[str, Any]] = []
        for seq in range(100):
            log.frame("mic", seq, pcm(seq))
        log.deliver(final(1, t1=1.2), 60, sent.append)  # covers frames 0..59
        for seq in range(100, 110):
            log.frame("mic", seq, pcm(seq))
        await log.settled()
        assert log.persisted("mic") == 109 and [m["text"] for m in sent] == ["f1"]
        (stream,) = [key async for key in client.scan_iter(match="ll:*:audio:mic")]
        assert await client.xlen(stream) == 50  # the final's audio is gone from Redis
        # the id alone finds nothing; the resume secret's digest names the keys
        assert await second.resume("talk", "another secret") is None
        saved = await second.resume("talk", secret)
        assert saved is not None
        kept = saved.sources["mic"]
        assert kept.frames == [(seq, pcm(seq)) for seq in range(60, 110)]
        assert (kept.next_seq, kept.keep_from, [f["text"] for f in kept.finals]) == (
            110,
            60,
            ["f1"],
        )
        await saved.log.end()  # a stop forgets the session at once
        assert [key async for key in client.scan_iter(match="ll:*")] == []
    finally:
        await log.close()
        await client.aclose()
        await first.close()
        await second.close()


async def test_every_key_expires_with_the_resume_window(redis_server: Redis) -> None:
    window = 0.5
    secret, digest = new_resume_secret()
    state, client = RedisState(redis_server.url, window), aioredis.from_url(redis_server.url)
    log = await state.create("talk", digest)
    for seq in range(10):
        log.frame("mic", seq, pcm(seq))
    log.deliver(final(1, t1=0.1), 5, lambda m: None)
    await log.settled()
    keys = [key async for key in client.scan_iter(match="ll:*")]
    assert len(keys) == 3  # meta, the source's audio, the finals
    for key in keys:
        assert 0 < await client.pttl(key) <= window * 1000
    await log.close()  # abandoned: nothing refreshes the keys any more
    await expired(redis_server, state, secret, window)
    await client.aclose()
    await state.close()


async def expired(redis: Redis, state: RedisState, secret: str, window: float) -> None:
    """Abandoned for the resume window: nothing of the session is left, nothing resumes."""
    await asyncio.sleep(window)
    await until_true(lambda: not redis_keys(redis), 0.05)
    assert await state.resume("talk", secret) is None


def redis_keys(redis: Redis) -> list[str]:
    """What the server holds, asked by a separate client (redis-cli, as an operator would)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(redis.port), "--scan", "--pattern", "ll:*"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


async def test_a_stale_owner_is_fenced_off(redis_server: Redis) -> None:
    secret, digest = new_resume_secret()
    old_state, new_state = RedisState(redis_server.url, 60), RedisState(redis_server.url, 60)
    old = await old_state.create("talk", digest)
    fenced: list[str] = []
    old.on_fenced = lambda: fenced.append("old")
    for seq in range(10):
        old.frame("mic", seq, pcm(seq))
    old.deliver(final(1, t1=0.1), 5, lambda m: None)
    await old.settled()
    saved = await new_state.resume("talk", secret)
    assert saved is not None
    (kept,) = saved.sources.values()
    assert (kept.next_seq, kept.keep_from, kept.frame_bytes) == (10, 5, FRAME)
    assert kept.frames == [(seq, pcm(seq)) for seq in range(5, 10)]
    assert [f["segment_id"] for f in kept.finals] == ["mic-1"]
    sent: list[dict[str, Any]] = []
    old.frame("mic", 10, pcm(999))  # the stale owner wakes up and writes
    old.deliver(final(2, t1=0.2), 10, sent.append)
    await old.settled()
    assert fenced == ["old"] and sent == [] and old.persisted("mic") == 9
    new = saved.log
    new.frame("mic", 10, pcm(10))
    await new.settled()
    again = await RedisState(redis_server.url, 60).resume("talk", secret)
    assert again is not None
    (kept,) = again.sources.values()
    assert kept.frames[-1] == (10, pcm(10)) and len(kept.finals) == 1
    for state in (old, new, again.log):
        await state.close()
    await old_state.close()
    await new_state.close()


async def test_no_store_no_new_session(redis_server: Redis) -> None:
    state = RedisState(redis_server.url, 60)
    await redis_server.stop()
    with pytest.raises(StoreUnavailable):
        await state.create("talk", "digest")
    await state.close()


def test_the_banner_names_the_store_never_its_password() -> None:
    from backend.banner import banner
    from backend.config import BackendConfig

    text = banner(BackendConfig(store="redis://:hunter2@10.0.0.5:6380/2"), "ws://x", "none")
    assert "sessions:    Redis at 10.0.0.5:6380/2 (shared)" in text and "hunter2" not in text
    assert "this process's memory" in banner(BackendConfig(), "ws://x", "none")
    with pytest.raises(ValueError, match="redis://"):
        BackendConfig(store="http://10.0.0.5:6379")


async def test_the_adaptation_is_kept_with_its_final_and_never_sent(redis_server: Redis) -> None:
    window = 1.0
    secret, digest = new_resume_secret()
    state, client = RedisState(redis_server.url, window), aioredis.from_url(redis_server.url)
    other = RedisState(redis_server.url, window)
    log = await state.create("talk", digest)
    sent: list[dict[str, Any]] = []
    for seq in range(10):
        log.frame("mic", seq, pcm(seq))
    log.deliver(final(1, t1=0.1), 5, sent.append, adaptation="40.5,1.25")
    log.deliver(final(2, t1=0.16), 8, sent.append)  # a final without one keeps the last
    await log.settled()
    assert [m["text"] for m in sent] == ["f1", "f2"] and "40.5" not in json.dumps(sent)
    stored = [
        raw async for key in client.scan_iter(match="ll:*") for raw in await dump(client, key)
    ]
    assert b"40.5,1.25" in stored  # kept exactly once: beside the source's seqs, not in a final
    assert sum(b"40.5" in raw for raw in stored) == 1
    saved = await other.resume("talk", secret)
    assert saved is not None and saved.sources["mic"].adaptation == "40.5,1.25"
    log.deliver(final(3, t1=0.18), 9, sent.append, adaptation="stale")  # fenced off
    saved.log.deliver(final(3, t1=0.18), 9, sent.append, adaptation="41.0,1.5")
    await log.settled()
    await saved.log.settled()
    assert [m["text"] for m in sent] == ["f1", "f2", "f3"]
    again = await state.resume("talk", secret)
    assert again is not None and again.sources["mic"].adaptation == "41.0,1.5"
    for closing in (log, saved.log, again.log):
        await closing.close()  # abandoned: the adaptation expires with the rest
    await expired(redis_server, state, secret, window)
    await client.aclose()
    await state.close()
    await other.close()


async def dump(client: aioredis.Redis, key: bytes) -> list[bytes]:
    """Every value a key holds, whatever its type (hash, list, stream)."""
    kind = await client.type(key)
    if kind == b"hash":
        return list(cast(dict[bytes, bytes], await client.hgetall(key)).values())
    if kind == b"list":
        return cast(list[bytes], await client.lrange(key, 0, -1))
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(key))
    return [value for _, fields in entries for value in fields.values()]


class Adapting(Labeller):
    """A Labeller whose finals carry an adaptation, as pocketsphinx's carry its CMN."""

    def process(self, pcm: bytes) -> list[Hypothesis]:
        return [replace(h, adaptation=f"cmn@{h.t1}") for h in super().process(pcm)]


class AdaptingLabellers:
    """Its factory, which notes the adaptation each recogniser is started from."""

    def __init__(self) -> None:
        self.started: list[str | None] = []

    def __call__(self, adaptation: str | None = None) -> Recognizer:
        self.started.append(adaptation)
        return Adapting(adaptation)


def speak(session: BackendSession, seqs: range) -> None:
    """Frames as the connection hands them in: to the source, then to the session's log."""
    stream = session.stream("mic")
    for seq in seqs:
        if stream.accept(pcm(seq + 1), seq):
            session.state.frame("mic", seq, pcm(seq + 1))


async def test_a_session_taken_up_elsewhere_starts_from_the_adaptation(redis_server: Redis) -> None:
    first, second = AdaptingLabellers(), AdaptingLabellers()
    here = SessionStore(BackendConfig(), first, state=RedisState(redis_server.url, 60))
    there = SessionStore(BackendConfig(), second, state=RedisState(redis_server.url, 60))
    sent: list[dict[str, Any]] = []
    try:
        session = (await here.open_shared("talk", None, True)).session
        secret = session.hand_out_secret()
        session.attach(object(), sent.append)
        speak(session, range(125))  # 2.5 s: two finals, at 1 s and 2 s
        await until_true(lambda: len(sent) == 2)
        await session.state.settled()
        assert first.started == [None]
        opened = await there.open_shared("talk", secret, True)  # its instance is gone
        assert opened.resumed and second.started == ["cmn@2.0"]
        taken = opened.session
        replayed = taken.attach(object(), sent.append)
        speak(taken, range(125, 175))  # 0.5 s more: the third second is complete
        await until_true(lambda: len(sent) == 3)
        await taken.state.settled()
        messages = json.dumps([*sent, *replayed, *taken.transcript()])
        assert [m["segment_id"] for m in sent] == ["mic-1", "mic-2", "mic-3"]
        assert "adaptation" not in messages and "cmn@" not in messages
        assert taken.streams["mic"].adaptation == "cmn@1.0"  # replayed from 2 s: its 1st second
    finally:
        await here.close()
        await there.close()
