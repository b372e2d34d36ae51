"""The embedded backend in a child process that can be killed, and a spare that is ready first.

A restart is measured from the moment the new backend listens, so the spare is spawned
(interpreter start, imports) ahead of time and waits for `go` before binding the port:

    spare = BackendProcess(port, config)   # spawning: imports while the old one serves
    old.kill()                             # SIGKILL: the kernel resets every socket
    await asyncio.sleep(outage)
    up_at = await spare.go()               # wall-clock time at which it accepts again
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from backend.config import BackendConfig
from backend.server import free_port
from benchmarks.measure import quiet


def _main(conn: Connection, port: int, config: BackendConfig) -> None:
    import time

    from backend.server import start_backend

    quiet()
    conn.send("ready")
    if conn.recv() != "go":
        return

    async def serve() -> None:
        await start_backend(config, port=port)
        conn.send(time.time())
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to end

    asyncio.run(serve())


class BackendProcess:
    """One backend process on a fixed port (spawned at construction, listening after `go`)."""

    def __init__(self, port: int, config: BackendConfig | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process: Any = context.Process(
            target=_main, args=(theirs, port, config or BackendConfig()), daemon=True
        )
        self._process.start()
        self.port = port
        self._ready = False

    async def ready(self) -> None:
        """Wait until the child has imported everything and waits for `go`."""
        if self._ready:
            return
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._conn.poll, 60):
            raise RuntimeError("the backend process did not start")
        if self._conn.recv() != "ready":
            raise RuntimeError("unexpected message from the backend process")
        self._ready = True

    async def go(self) -> float:
        """Bind and serve; returns the wall-clock time (time.time()) at which it listens."""
        await self.ready()
        self._conn.send("go")
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._conn.poll, 30):
            raise RuntimeError("the backend process did not start listening")
        return float(self._conn.recv())

    def kill(self) -> None:
        """SIGKILL: no close frames, no flush; the kernel closes the sockets."""
        self._process.kill()
        self._process.join()

    def close(self) -> None:
        if self._process.is_alive():
            self.kill()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live-listener"


class Rig:
    """A port, the backend serving on it, and a spare ready to take over."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.port = free_port()
        self.current: BackendProcess | None = None
        self.spare = BackendProcess(self.port, config)

    async def fresh(self) -> None:
        """Make the spare the serving backend; the next spare starts spawning."""
        if self.current is not None:
            self.current.kill()
        await self.spare.go()
        self.current, self.spare = self.spare, BackendProcess(self.port, self.config)

    async def restart_after(self, outage: float) -> float:
        """Kill the serving backend, wait `outage` s, start the spare; when it listens."""
        assert self.current is not None
        await self.spare.ready()  # spawned before the kill, so it loads nothing in the outage
        self.current.kill()
        await asyncio.sleep(outage)
        up_at = await self.spare.go()
        self.current, self.spare = self.spare, BackendProcess(self.port, self.config)
        return up_at

    def close(self) -> None:
        for process in (self.current, self.spare):
            if process is not None:
                process.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live-listener"
