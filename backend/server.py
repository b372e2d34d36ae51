"""Running the backend: in-process for tests, demos and notebooks, or as `live-listener serve`."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from loguru import logger

from backend.access_log import AccessLog
from backend.app import CONFIG, PATH, STORE, create_app
from backend.banner import banner
from backend.config import BackendConfig
from backend.store import SessionStore


class CannotListen(Exception):
    """`serve` cannot listen on the address it was given; the message says why, in one line."""


@dataclass
class RunningBackend:
    host: str
    port: int
    store: SessionStore
    runner: web.AppRunner
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}{PATH}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def start_backend(
    config: BackendConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    store: SessionStore | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningBackend:
    """Start serving on the loop; `port=0` picks a free port; `ssl_context` serves `wss://`."""
    app = create_app(config, store=store)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=1.0,
        access_log_class=AccessLog,
        # aiohttp closes a connection that has not sent a whole request by then, counted
        # from the connection's start: a half-sent upgrade cannot hold a descriptor longer.
        keepalive_timeout=app[CONFIG].handshake_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()  # nothing of a backend that could not listen stays behind
        raise
    bound = port
    server = site._server
    if isinstance(server, asyncio.base_events.Server) and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    return RunningBackend(host, bound, app[STORE], runner, tls=ssl_context is not None)


@asynccontextmanager
async def running_backend(
    config: BackendConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    store: SessionStore | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[RunningBackend]:
    backend = await start_backend(
        config, host=host, port=port, store=store, ssl_context=ssl_context
    )
    try:
        yield backend
    finally:
        await backend.runner.cleanup()


def serve(config: BackendConfig, host: str = "127.0.0.1", port: int = 8765, *, auth: str) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully (the `serve` command)."""
    asyncio.run(_serve(config, host, port, auth))


async def _serve(config: BackendConfig, host: str, port: int, auth: str) -> None:
    try:
        backend = await start_backend(config, host=host, port=port)
    except (OSError, OverflowError) as exc:  # in use, not an address of this machine, no port
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        message = f"cannot listen on {host} port {port}: {reason}"
        raise CannotListen(message) from exc
    print(banner(config, backend.url, auth), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info("shutting down")
    finally:
        await backend.runner.cleanup()
        logger.info("stopped")
