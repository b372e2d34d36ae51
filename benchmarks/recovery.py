"""Client overhead of a recovery: backend killed, back after D seconds, until the first ack.

    python benchmarks/recovery.py          # ~1.5 minutes
    python benchmarks/recovery.py --smoke  # a few seconds (the test suite runs this)

The embedded backend (asr none, an ack for every frame so the first ack is not held back
by the ack interval) runs in a child process. Each repetition starts a fresh backend and
a fresh real-time session, streams 0.3 s, SIGKILLs the backend, and D seconds
later starts a spare (already imported, so it listens at once). The session retries
with full-jitter backoff (0.05 s doubling to 0.4 s); announced `Reconnecting` delays say
when its successful attempt was due. Figures, per repetition:

    overhead = first frame acked - max(backend listening, successful attempt due)

i.e. what the client spends beyond waiting for the backend and its own scheduled backoff:
timer lateness, connect, `connected`/`start`/`streaming`, resending, the ack's way back.
Baseline, alternated with it: a bare aiohttp client told the moment the backend listens,
doing the same handshake, sending the audio of the outage in one burst and then live
frames every 20 ms (the floor for this machine and backend: the backend acks on receipt
of a frame what its recogniser queue has taken so far).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass

import aiohttp

from backend.config import BackendConfig
from benchmarks.backend_process import Rig
from benchmarks.measure import alternate, machine, median, percentile, quiet, summary
from benchmarks.throughput import audio_message, start_message
from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.sources import tone
from pipeline.status import Reconnecting, StatusEvent, Streaming

TARGET_P95_MS = 50.0
BACKEND = BackendConfig(asr="none", ack_every=1, max_sessions=64)
POLICY = BackoffPolicy(initial=0.05, multiplier=2.0, max_delay=0.4, jitter="full", reset_after=1)


@dataclass
class Recovery:
    overhead_ms: float  # first ack - max(listening, attempt due)
    waited_ms: float  # listening -> attempt due (the scheduled backoff beyond the outage)
    attempts: int


class Watch:
    """Wall-clock times of a session's reconnection milestones."""

    def __init__(self, session: Session) -> None:
        self.due = 0.0
        self.attempts = 0
        self.streaming: list[float] = []
        self.acked_at: list[float] = []
        self._acked = 0
        self._outbox = session.outbox
        session.status.subscribe(self._on_status)
        session.outbox.listen(self._on_outbox)

    def _on_status(self, event: StatusEvent) -> None:
        if isinstance(event, Reconnecting):
            self.due = time.time() + event.delay
            self.attempts = event.attempt
        elif isinstance(event, Streaming):
            self.streaming.append(time.time())

    def _on_outbox(self) -> None:
        counts = self._outbox.counts().get("system")
        if counts is not None and counts.acked > self._acked:
            self._acked = counts.acked
            if len(self.acked_at) < len(self.streaming):  # the first ack on this connection
                self.acked_at.append(time.time())

    async def first_ack(self, connection: int, timeout: float = 15.0) -> float:
        """Wait for the first ack on the `connection`-th streaming connection (1-based)."""
        deadline = time.monotonic() + timeout
        while len(self.acked_at) < connection:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no ack on connection {connection} within {timeout} s")
            await asyncio.sleep(0.002)
        return self.acked_at[connection - 1]


async def session_recovery(rig: Rig, outage: float) -> Recovery:
    await rig.fresh()
    config = SessionConfig(url=rig.url, backoff=POLICY, stop_timeout=2.0)
    session = Session(config, tone(seconds=30, realtime=True))
    watch = Watch(session)
    run = asyncio.create_task(session.run())
    try:
        await watch.first_ack(1)
        await asyncio.sleep(0.3)
        up_at = await rig.restart_after(outage)
        acked_at = await watch.first_ack(2)
        due = watch.due
    finally:
        await session.stop(timeout=2.0)
        await run
    start = max(up_at, due)
    return Recovery((acked_at - start) * 1000, (start - up_at) * 1000, watch.attempts)


async def bare_recovery(rig: Rig, outage: float) -> Recovery:
    """The floor: connect the moment the backend listens, handshake, resend, first ack."""
    await rig.fresh()
    held = max(1, round(outage * 50))
    frames = _frames(held + 100)
    up_at = await rig.restart_after(outage)
    session_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http, http.ws_connect(rig.url) as ws:
        await ws.receive_str()  # connected
        await ws.send_str(start_message(session_id))
        await ws.receive_str()  # streaming

        async def first_ack() -> float:
            while json.loads(await ws.receive_str())["type"] != "ack":
                pass
            return time.time()

        acked = asyncio.create_task(first_ack())
        for frame in frames[:held]:  # what a session holds after the outage, in one burst
            await ws.send_str(audio_message(frame))
        for frame in frames[held:]:  # then live audio, every 20 ms, until the first ack
            await asyncio.wait([acked], timeout=0.02)
            if acked.done():
                break
            await ws.send_str(audio_message(frame))
        acked_at = await acked
        await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
    return Recovery((acked_at - up_at) * 1000, 0.0, 1)


def _frames(count: int) -> list[AudioFrame]:
    frames: list[AudioFrame] = []
    tone(seconds=count * 0.02, realtime=False).subscribe(frames.append)
    return frames


async def main(outage: float, repetitions: int) -> None:
    quiet()
    print(f"machine: {machine()}")
    print(
        f"outage {outage:.2f} s, {repetitions} repetitions per arm; backoff full jitter "
        f"{POLICY.initial}..{POLICY.max_delay} s"
    )
    rig = Rig(BACKEND)
    try:
        runs = await alternate(
            {
                "session": lambda: session_recovery(rig, outage),
                "bare": lambda: bare_recovery(rig, outage),
            },
            repetitions,
        )
    finally:
        rig.close()
    session_ms = [r.overhead_ms for r in runs["session"]]
    bare_ms = [r.overhead_ms for r in runs["bare"]]
    waited = [r.waited_ms for r in runs["session"]]
    attempts = [r.attempts for r in runs["session"]]
    print(
        f"session  overhead p50 {median(session_ms):6.1f} ms  "
        f"p95 {percentile(session_ms, 95):6.1f} ms  max {max(session_ms):6.1f} ms  "
        f"(scheduled backoff beyond the outage: median {median(waited):.0f} ms, "
        f"attempts median {median(attempts):.0f})"
    )
    print(
        f"bare     listen->ack p50 {median(bare_ms):6.1f} ms  p95 {percentile(bare_ms, 95):6.1f} ms"
        f"  max {max(bare_ms):6.1f} ms"
    )
    p95 = percentile(session_ms, 95)
    verdict = "meets" if p95 < TARGET_P95_MS else "misses"
    print(f"target: p95 overhead {p95:.1f} ms (< {TARGET_P95_MS:.0f} ms: {verdict})")
    summary(
        f"recovery overhead p50 {median(session_ms):.1f} ms, p95 {p95:.1f} ms "
        f"over {len(session_ms)} restarts (bare aiohttp floor p50 {median(bare_ms):.1f} ms, "
        f"p95 {percentile(bare_ms, 95):.1f} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--outage", type=float, default=1.0, help="seconds the backend is down")
    parser.add_argument("--repetitions", type=int, default=16)
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(main(0.3, 2))
    else:
        asyncio.run(main(args.outage, args.repetitions))
