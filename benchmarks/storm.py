"""Reconnection storm: 500 real clients after a backend restart, jitter none vs full.

    python benchmarks/storm.py          # ~1.5 minutes
    python benchmarks/storm.py --smoke  # a few seconds (the test suite runs this)

N real `Session`s (no audio: the storm is about connections, and 500 idle sessions fit
in one process) stream to the embedded backend (asr none) in a child process. Once all
are streaming the backend is SIGKILLed, so every client loses its socket at the same
instant, and a spare backend (already imported) listens `outage` seconds later. Every
client retries with the default backoff (1 s doubling to 10 s) with `jitter="none"` or
`jitter="full"`, alternated run by run.

Figures per run: the peak number of connection attempts (`Connecting` events) in any
100 ms bucket after the kill, all attempts per client, and the time from the backend
listening until the last client is streaming again. Without jitter every client retries
in the same instant, and the listen backlog (128) overflows: dropped SYNs are retried by
the kernel after 1 s, which shows in the time until all stream.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import reactivex

from backend.config import BackendConfig
from benchmarks.backend_process import Rig
from benchmarks.measure import alternate, machine, median, quiet, raise_fd_limit, summary
from operators.backoff import BackoffPolicy, Jitter
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.status import Connecting, StatusEvent, Streaming

BUCKET_S = 0.1


@dataclass
class Storm:
    peak: int  # connection attempts in the busiest 100 ms after the kill
    attempts: int  # all attempts after the kill
    all_streaming_s: float  # backend listening -> last client streaming again


async def storm(rig: Rig, clients: int, jitter: Jitter, outage: float) -> Storm:
    await rig.fresh()
    policy = BackoffPolicy(jitter=jitter)
    config = SessionConfig(url=rig.url, backoff=policy, connect_timeout=30, stop_timeout=10)
    attempts: list[float] = []
    streaming: list[float] = []

    def on_status(event: StatusEvent) -> None:
        if isinstance(event, Connecting):
            attempts.append(time.time())
        elif isinstance(event, Streaming):
            streaming.append(time.time())

    sessions = []
    for _ in range(clients):
        session = Session(config, reactivex.never())
        session.status.subscribe(on_status)
        sessions.append(session)
    runs = [asyncio.create_task(s.run()) for s in sessions]
    try:
        await _until(lambda: len(streaming) >= clients, 60, "every client streaming")
        killed_at = time.time()
        up_at = await rig.restart_after(outage)
        await _until(lambda: len(streaming) >= 2 * clients, 60, "every client back")
        back_at = max(streaming)
    finally:
        await asyncio.gather(*(s.stop(timeout=10) for s in sessions))
        await asyncio.gather(*runs)
    after = [t for t in attempts if t >= killed_at]
    buckets = Counter(int((t - killed_at) / BUCKET_S) for t in after)
    return Storm(max(buckets.values()), len(after), back_at - up_at)


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def main(clients: int, outage: float, rounds: int) -> None:
    quiet()
    raise_fd_limit(4 * clients + 256)
    print(f"machine: {machine()}")
    print(f"{clients} clients, outage {outage:.1f} s, {rounds} rounds per jitter mode")
    rig = Rig(BackendConfig(asr="none", max_sessions=clients + 64))
    try:
        runs = await alternate(
            {
                "none": lambda: storm(rig, clients, "none", outage),
                "full": lambda: storm(rig, clients, "full", outage),
            },
            rounds,
        )
    finally:
        rig.close()
    figures = {}
    for name, results in runs.items():
        peak = median([r.peak for r in results])
        back = median([r.all_streaming_s for r in results])
        per_client = median([r.attempts / clients for r in results])
        figures[name] = (peak, back)
        print(
            f"jitter {name:4s}  peak {peak:5.0f} attempts per 100 ms  all streaming "
            f"{back:5.2f} s after the backend listens  {per_client:.1f} attempts per client  "
            f"(runs: {', '.join(f'{r.peak}/{r.all_streaming_s:.2f}s' for r in results)})"
        )
    (peak_none, back_none), (peak_full, back_full) = figures["none"], figures["full"]
    summary(
        f"{clients} clients after a restart: jitter none peak {peak_none:.0f} attempts per "
        f"100 ms, all streaming in {back_none:.2f} s; jitter full peak {peak_full:.0f}, "
        f"all streaming in {back_full:.2f} s ({peak_none / max(peak_full, 1):.1f}x lower peak)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--outage", type=float, default=1.5, help="seconds the backend is down")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(main(20, 0.5, 1))
    else:
        asyncio.run(main(args.clients, args.outage, args.rounds))
