"""The embedded backend: an aiohttp.web app speaking PROTOCOL.md (v0.2, and v0.3 acks/resume).

app = create_app(BackendConfig(token="s3cret"))
web.run_app(app, port=8765)
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from aiohttp import web
from loguru import logger

from backend.admission import admit
from backend.asr import RecognizerFactory, recognizer_factory
from backend.config import BackendConfig
from backend.connection import ClientConnection
from backend.session_state import session_state
from backend.store import SessionStore
from pipeline.messages import to_wire
from pipeline.protocol import Status

PATH = "/ws/live-listener"
STORE: web.AppKey[SessionStore] = web.AppKey("store", SessionStore)
CONFIG: web.AppKey[BackendConfig] = web.AppKey("config", BackendConfig)
OWNS_STORE: web.AppKey[bool] = web.AppKey("owns_store", bool)  # its sessions end with it
CLIENTS: web.AppKey[set[ClientConnection]] = web.AppKey("clients", set[ClientConnection])


def create_app(
    config: BackendConfig | None = None,
    *,
    store: SessionStore | None = None,
    recognizers: RecognizerFactory | None = None,
    executor: Executor | None = None,
) -> web.Application:
    """The backend app. Pass an existing `store` to keep sessions across a restart."""
    config = config or BackendConfig()
    app = web.Application()
    app[CONFIG] = config
    app[STORE] = store or SessionStore(
        config,
        recognizers or recognizer_factory(config.asr, max_decoders=config.asr_decoders),
        executor,
        session_state(config.store, config.resume_window),
    )
    app[CLIENTS] = set[ClientConnection]()
    app.router.add_get(PATH, _websocket)
    app.router.add_get("/healthz", _health)
    app[OWNS_STORE] = store is None
    app.on_shutdown.append(_drain_clients)
    if store is None:
        app.on_shutdown.append(_close_store)
    return app


async def _drain_clients(app: web.Application) -> None:
    """A graceful shutdown: every client gets the finals of what was acknowledged, then 1012."""
    held: set[ClientConnection] = app[CLIENTS]
    clients = list(held)
    if clients:
        logger.info("shutting down: draining {} connection(s)", len(clients))
    # A store that outlives this app keeps its sessions (and their recognisers) for resume:
    # their utterances stay open, so a sentence spoken across the restart is not cut.
    ending = app[OWNS_STORE]
    await asyncio.gather(*(client.drain(ending) for client in clients), return_exceptions=True)


async def _close_store(app: web.Application) -> None:
    await app[STORE].close()


async def _health(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response({"sessions": len(store.sessions), "connections": store.connections})


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    config, store = request.app[CONFIG], request.app[STORE]
    ws = web.WebSocketResponse(heartbeat=config.heartbeat, max_msg_size=config.max_message_bytes)
    await ws.prepare(request)
    if not await admit(request, ws, config, store):
        return ws
    client = ClientConnection(ws, store, config)
    request.app[CLIENTS].add(client)
    try:
        await ws.send_json(to_wire(Status(state="connected")))
        await client.run()
    finally:
        request.app[CLIENTS].discard(client)
        store.disconnect()
    return ws
