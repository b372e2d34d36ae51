"""What sharing sessions in Redis costs: the gap a client sees when its instance is
killed, and CPU and Redis memory per live session, against sessions kept in memory.

    python benchmarks/redis_store.py          # ~2 minutes
    python benchmarks/redis_store.py --smoke  # ~30 s (the test suite runs this)

A real redis-server (append-only file, fsync on every write), HAProxy and two `serve
--asr none --store redis://...` processes, as in the README. Figures:

- kill gap: a real-time session streams through HAProxy; the instance holding it is
  SIGKILLed (then restarted, for the next kill). Gap = the time between the last ack
  before the kill and the first ack after it, as the client sees them.
- per live session, N real-time sessions on one instance for T seconds: the instance's
  CPU seconds per session-second with `--store redis` and with sessions in memory
  (alternated), redis-server's own CPU per session-second, and Redis's `used_memory`
  growth per live session (no finals with `--asr none`: the audio since the session
  began, so it grows with T; a recogniser's finals trim it).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from asyncio.subprocess import Process
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from backend.deploy.deploy import HAProxy, Redis, Serve, free_ports
from benchmarks.measure import cpu_seconds, machine, median, percentile, quiet, summary
from operators.backoff import BackoffPolicy
from pipeline.config import SessionConfig
from pipeline.protocol import Ack
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import tone

POLICY = BackoffPolicy(initial=0.05, max_delay=0.2, reset_after=0.5)
OPTIONS = ("--asr", "none", "--shutdown-grace", "1", "--max-sessions", "64")


def config(url: str) -> SessionConfig:
    return SessionConfig(url=url, backoff=POLICY, busy_floor=0.1, heartbeat=1.0)


async def connections(serve: Serve) -> int:
    import aiohttp

    url = f"http://127.0.0.1:{serve.port}/healthz"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return int((await response.json())["connections"])


def note_ack(event: object, acks: list[float]) -> None:
    if isinstance(event, Ack):
        acks.append(time.monotonic())


async def holding(serves: list[Serve]) -> Serve:
    while True:
        for serve in serves:
            alive = serve.process is not None and serve.process.returncode is None
            if alive and await connections(serve) == 1:
                return serve
        await asyncio.sleep(0.02)


async def kill_gaps(work: Path, kills: int) -> tuple[list[float], list[SessionReport]]:
    """One real-time session per kill; returns the gaps (ms) and the sessions' reports."""
    redis_port, proxy_port, *ports = free_ports(4)
    redis = Redis(redis_port, work / "redis")
    await redis.start()
    serves = [Serve(port, redis.url, OPTIONS) for port in ports]
    for serve in serves:
        await serve.start()
    proxy = HAProxy(proxy_port, ports, work / "haproxy")
    await proxy.start()
    gaps: list[float] = []
    reports: list[SessionReport] = []
    try:
        for _ in range(kills):
            acks: list[float] = []
            session = Session(config(proxy.url), tone(440, 3.0, realtime=True))
            session.events.subscribe(functools.partial(note_ack, acks=acks))
            running = asyncio.get_running_loop().create_task(session.run())
            victim = await holding(serves)
            await asyncio.sleep(1.0)
            killed_at = time.monotonic()
            await victim.kill()
            before = max(t for t in acks if t <= killed_at)
            await holding([s for s in serves if s is not victim])
            restarting = asyncio.get_running_loop().create_task(victim.start())  # meanwhile
            reports.append(await asyncio.wait_for(running, 60))
            after = min(t for t in acks if t > killed_at)
            gaps.append((after - before) * 1000)
            await restarting
    finally:
        await proxy.stop()
        for serve in serves:
            await serve.stop()
        await redis.stop()
    return gaps, reports


async def live_sessions(work: Path, count: int, seconds: float, shared: bool) -> Live:
    """N real-time sessions on one instance, with its sessions in Redis or in memory."""
    redis_port, port = free_ports(2)
    redis = Redis(redis_port, work / "redis-live") if shared else None
    if redis is not None:
        await redis.start()
    serve = Serve(port, redis.url if redis is not None else None, OPTIONS)
    await serve.start()
    client = aioredis.from_url(redis.url) if redis is not None else None
    try:
        assert serve.process is not None
        began = [cpu_seconds(p.pid) for p in processes(serve, redis)]
        began_memory = await used_memory(client)
        url = f"ws://127.0.0.1:{port}/ws/live-listener"
        sessions = [Session(config(url), tone(440, seconds, realtime=True)) for _ in range(count)]
        loop = asyncio.get_running_loop()
        running = [loop.create_task(s.run()) for s in sessions]
        await asyncio.sleep(seconds * 0.8)
        held = await used_memory(client) - began_memory
        reports = await asyncio.gather(*running)
        cpu = [cpu_seconds(p.pid) - b for p, b in zip(processes(serve, redis), began, strict=True)]
        lost = sum(r.frames_lost for r in reports) + sum(r.outcome != "completed" for r in reports)
        per_session_second = count * seconds
        return Live(
            cpu[0] / per_session_second,
            sum(cpu[1:]) / per_session_second,
            max(0, held) // count,
            lost,
        )
    finally:
        if client is not None:
            await client.aclose()
        await serve.stop()
        if redis is not None:
            await redis.stop()


@dataclass
class Live:
    serve_cpu: float  # CPU s of the `serve` process per session-second
    redis_cpu: float  # CPU s of redis-server per session-second (0 in memory)
    held: int  # Redis bytes per live session
    lost: int


def processes(serve: Serve, redis: Redis | None) -> list[Process]:
    return [p for p in (serve.process, redis.process if redis else None) if p is not None]


async def used_memory(client: aioredis.Redis | None) -> int:
    return 0 if client is None else int((await client.info("memory"))["used_memory"])


async def main(smoke: bool) -> None:
    quiet()
    print(f"machine: {machine()}", flush=True)
    kills, count, seconds, rounds = (2, 2, 2.0, 1) if smoke else (10, 8, 8.0, 3)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gaps, reports = await kill_gaps(work, kills)
        lost = sum(r.frames_lost for r in reports)
        resumed = sum(r.resets == 0 and r.resumes >= 1 for r in reports)
        print(f"kill gaps (ms): {[round(g) for g in gaps]}", flush=True)
        redis_cpu: list[float] = []
        server_cpu: list[float] = []
        memory_cpu: list[float] = []
        held: list[int] = []
        for _ in range(rounds):  # alternated, so drift in the machine hits both alike
            live = await live_sessions(work, count, seconds, shared=True)
            redis_cpu.append(live.serve_cpu)
            server_cpu.append(live.redis_cpu)
            held.append(live.held)
            lost += live.lost
            live = await live_sessions(work, count, seconds, shared=False)
            memory_cpu.append(live.serve_cpu)
            lost += live.lost
    ratio = median(redis_cpu) / median(memory_cpu) if median(memory_cpu) else 0.0
    summary(
        f"kill gap p50 {percentile(gaps, 50):.0f} ms, p95 {percentile(gaps, 95):.0f} ms "
        f"over {len(gaps)} kills, {resumed} sessions resumed, {lost} frames lost; "
        f"CPU per session {median(redis_cpu) * 1000:.1f} ms/s with Redis vs "
        f"{median(memory_cpu) * 1000:.1f} ms/s in memory = {ratio:.2f}x, "
        f"and redis-server {median(server_cpu) * 1000:.1f} ms/s; "
        f"Redis memory {median(held) / 1024:.0f} KiB per live session "
        f"over {count} sessions"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a quick run for the tests")
    asyncio.run(main(parser.parse_args().smoke))
