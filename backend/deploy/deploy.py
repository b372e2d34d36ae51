"""The tested deployment: a real redis-server, a real HAProxy, and `serve` processes.

Used by the tests and benchmarks; each piece is a subprocess on a loopback port, started
with the same commands and configuration a user would run (see README, "Several
instances behind a load balancer").
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from backend.server import free_port

HAPROXY_TEMPLATE = Path(__file__).with_name("haproxy.cfg")
SERVER_LINE = "    server s{index} 127.0.0.1:{port} check inter 300ms fall 1 rise 1"


async def wait_listening(port: int, process: asyncio.subprocess.Process, timeout: float) -> None:
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


@dataclass
class Redis:
    port: int
    data_dir: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Append-only file on, fsync every write: a restart keeps every acked frame."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir),
            "--daemonize", "no",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await wait_listening(self.port, self.process, 20)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None


@dataclass
class Serve:
    """One `live-listener serve` process (its own port) using the shared store."""

    port: int
    store: str | None  # None: sessions in the process's memory
    options: tuple[str, ...] = ()
    process: asyncio.subprocess.Process | None = None
    log: Path | None = None

    async def start(self) -> None:
        argv = [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(self.port)]
        argv += ["--store", self.store] if self.store is not None else []
        argv += self.options
        err = self.log.open("ab") if self.log is not None else asyncio.subprocess.DEVNULL
        self.process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=err
        )
        await wait_listening(self.port, self.process, 60)

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM: a graceful restart (finals of what was acknowledged, then 1012)."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            await self.process.wait()


@dataclass
class HAProxy:
    port: int
    backends: list[int]
    config_dir: Path
    process: asyncio.subprocess.Process | None = None
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
        self.process = await asyncio.create_subprocess_exec(
            "haproxy", "-f", str(self.config), "-db",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await wait_listening(self.port, self.process, 20)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
