"""Who may use the backend, and who may take a session back.

A socket is admitted (`admit`) when it presents the deployment's token and the backend
is under its `max_sessions` open sockets; a refused one is told why and closed.

Two secrets, two questions. The deployment's token (one per backend, shared by its
clients) answers "may this connection talk to us at all". A session's resume secret,
handed privately to the connection that started the session, answers "may this
connection take that session over": the public `session_id` never does. The backend keeps
only a digest of each resume secret, and compares both kinds in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from aiohttp import web

from backend.config import BackendConfig
from pipeline.messages import to_wire
from pipeline.protocol import Status

if TYPE_CHECKING:  # the store keeps digests made here: it imports this module
    from backend.store import SessionStore

RESUME_SECRET_BYTES = 32
UNAUTHORIZED = "Unauthorized websocket connection"
AT_CAPACITY = "Server at capacity, please try again later"


def _as_bytes(text: str) -> bytes:
    """Header values arrive as text that may hold undecodable bytes (kept as surrogates)."""
    return text.encode("utf-8", "surrogateescape")


def presented_token(request: web.Request) -> str | None:
    """Bearer header, `x-echopanel-token`, or (v0.2 compatibility) `?token=`."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-echopanel-token") or request.query.get("token")


def authorized(config: BackendConfig, token: str | None) -> bool:
    """The deployment's token, exactly; any value that is not one (bytes, empty) is refused."""
    if config.token is None:
        return True
    if not token:
        return False
    return hmac.compare_digest(_as_bytes(token), _as_bytes(config.token))


async def admit(
    request: web.Request, ws: web.WebSocketResponse, config: BackendConfig, store: SessionStore
) -> bool:
    """Authentication, then capacity. An admitted socket is counted in the store (its
    handler calls `store.disconnect` when it closes); a refused one is told why, closed."""
    if not authorized(config, presented_token(request)):
        await ws.send_json(to_wire(Status(state="error", message=UNAUTHORIZED)))
        await ws.close(code=1008, message=b"unauthorized")
        return False
    if not store.connect(config.max_sessions):
        await ws.send_json(to_wire(Status(state="error", message=AT_CAPACITY)))
        await ws.close(code=1013, message=b"at capacity")
        return False
    return True


def new_resume_secret() -> tuple[str, str]:
    """A fresh resume secret for the client, and the digest the backend keeps of it."""
    secret = secrets.token_urlsafe(RESUME_SECRET_BYTES)
    return secret, digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(_as_bytes(secret)).hexdigest()


def may_resume(kept_digest: str, presented: object) -> bool:
    """True only for the secret the session handed out (constant-time on the digests)."""
    if not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(digest(presented), kept_digest)
