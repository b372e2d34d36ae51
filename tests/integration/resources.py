"""What a process holds that a session could leak: asyncio tasks, Python threads, OS threads
(PortAudio's callback threads among them), open file descriptors (sockets, recordings,
the sound server's socket) and inet sockets."""

from __future__ import annotations

import asyncio
import gc
import threading
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass(frozen=True)
class Snapshot:
    tasks: frozenset[asyncio.Task[Any]] = field(repr=False)
    threads: frozenset[str]
    os_threads: int
    fds: int
    sockets: int

    def beyond(self, baseline: Snapshot, *, threads: bool = True) -> dict[str, Any]:
        """What this snapshot holds that `baseline` did not (empty: nothing leaked);
        `threads=False` leaves threads out (a running backend keeps its ASR pool)."""
        extra: dict[str, Any] = {}
        if self.tasks - baseline.tasks:
            extra["tasks"] = sorted(repr(task.get_coro()) for task in self.tasks - baseline.tasks)
        if threads and self.threads - baseline.threads:
            extra["threads"] = sorted(self.threads - baseline.threads)
        for name in ("os_threads", "fds", "sockets") if threads else ("fds", "sockets"):
            if getattr(self, name) > getattr(baseline, name):
                extra[name] = (getattr(baseline, name), getattr(self, name))
        return extra


def snapshot() -> Snapshot:
    gc.collect()
    process = psutil.Process()
    current = asyncio.current_task()
    return Snapshot(
        tasks=frozenset(t for t in asyncio.all_tasks() if t is not current),
        threads=frozenset(f"{t.name} ({t.ident})" for t in threading.enumerate()),
        os_threads=process.num_threads(),
        fds=process.num_fds(),
        sockets=len(process.net_connections(kind="inet")),
    )


async def leaks_after(
    baseline: Snapshot, *, threads: bool = True, settle: float = 3.0
) -> dict[str, Any]:
    """What is still held beyond `baseline` once things had `settle` seconds to wind down
    (an executor's threads exit shortly after it is shut down, sockets close a tick late)."""
    deadline = asyncio.get_running_loop().time() + settle
    while True:
        extra = snapshot().beyond(baseline, threads=threads)
        if not extra or asyncio.get_running_loop().time() > deadline:
            return extra
        await asyncio.sleep(0.05)
