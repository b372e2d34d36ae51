"""The tested deployment: a real redis-server, a real HAProxy, and `serve` processes.

Used by the tests and benchmarks; each piece is a subprocess on a loopback port, started
with the same commands and configuration a user would run (see README, "Several
instances behind a load balancer").
"""

from __future__ import annotations

import asyncio
import signal
import sys
from asyncio.subprocess import Process
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.server import free_port

HAPROXY_TEMPLATE = Path(__file__).with_name("haproxy.cfg")
SERVER_LINE = "    server s{index} 127.0.0.1:{port} check inter 300ms fall 1 rise 1"


async def wait_listening(port: int, process: Process, timeout: float) -> None:
    """Until something accepts on the loopback port (or the process exits)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


async def spawn(port: int, timeout: float, *argv: str, stderr: Any = None) -> Process:
    """Start a server process and wait until it listens on `port`."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL if stderr is None else stderr,
    )
    await wait_listening(port, process, timeout)
    return process


async def terminate(process: Process | None) -> None:
    """SIGTERM (after SIGCONT, should it be frozen), and wait for the exit."""
    if process is not None and process.returncode is None:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        await process.wait()


@dataclass
class Redis:
    port: int
    data_dir: Path
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Append-only file on, fsync every write: a restart keeps every acked frame."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = await spawn(
            self.port, 20,
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir),
            "--daemonize", "no",
        )  # fmt: skip

    async def stop(self) -> None:
        await terminate(self.process)
        self.process = None


@dataclass
class Serve:
    """One `live-listener serve` process (its own port) using the shared store."""

    port: int
    store: str | None  # None: sessions in the process's memory
    options: tuple[str, ...] = ()
    process: Process | None = None
    log: Path | None = None
    record_dir: Path | None = None

    async def start(self) -> None:
        argv = [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(self.port)]
        argv += ["--store", self.store] if self.store is not None else []
        argv += ["--record-dir", str(self.record_dir)] if self.record_dir is not None else []
        argv += self.options
        if self.log is None:
            self.process = await spawn(self.port, 60, *argv)
            return
        with self.log.open("ab") as err:  # the child has its own descriptor
            self.process = await spawn(self.port, 60, *argv, stderr=err)

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM: a graceful restart (finals of what was acknowledged, then 1012)."""
        await terminate(self.process)


@dataclass
class HAProxy:
    port: int
    backends: list[int]
    config_dir: Path
    process: Process | None = None
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        servers = "\n".join(
            SERVER_LINE.format(index=i, port=port) for i, port in enumerate(self.backends)
        )
        text = HAPROXY_TEMPLATE.read_text().format(bind=f"127.0.0.1:{self.port}", servers=servers)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config = self.config_dir / "haproxy.cfg"
        self.config.write_text(text)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live-listener"

    async def start(self) -> None:
        self.process = await spawn(self.port, 20, "haproxy", "-f", str(self.config), "-db")

    async def stop(self) -> None:
        await terminate(self.process)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
