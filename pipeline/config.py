"""Everything a session can be told, with defaults that work against the embedded backend."""

from __future__ import annotations

import ipaddress
import re
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from operators.backoff import BackoffPolicy
from pipeline.audio import DEFAULT_FRAME_MS, frame_samples
from pipeline.protocol import ClientFeatures
from pipeline.redaction import Secret

ProtocolLevel = Literal["auto", "0.2", "0.3"]
DEFAULT_PATH = "/ws/live-listener"
DEFAULT_URL = "ws://127.0.0.1:8765" + DEFAULT_PATH


def is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.IGNORECASE)


def check_host(host: str) -> str:
    """A host name or IP address, or `ValueError` naming what is wrong with it."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    labels = ascii_host.rstrip(".").split(".")
    if not ascii_host or len(ascii_host) > 253 or not all(map(_HOST_LABEL.match, labels)):
        raise ValueError(f"{host!r} is not a host name or IP address")
    return host


def resolve_url(url: str) -> str:
    """A backend address as a WebSocket URL.

    No scheme: `ws://` for loopback hosts, `wss://` for anything else; `http(s)` maps to
    `ws(s)`; an empty path becomes `/ws/live-listener`. A token in the query string is
    refused: URLs end up in logs, so tokens travel in headers only.
    """
    if "://" not in url:
        host = urlsplit("//" + url).hostname or ""
        url = ("ws://" if is_local(host) else "wss://") + url
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}: use ws://, wss:// or a host")
    if not parts.hostname:
        raise ValueError(f"no host in URL {url!r}")
    check_host(parts.hostname)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # the URL itself is not repeated: it may carry a secret
        raise ValueError(f"bad port for {parts.hostname}: a port is a number from 1 to 65535")
    if any(key.lower() in ("token", "access_token") for key, _ in parse_qsl(parts.query)):
        raise ValueError(
            "the URL carries a token; pass it with --token-env (or SessionConfig.token) "
            "so it travels in a header and never lands in a log"
        )
    path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


TokenProvider = Callable[[], Awaitable[str | None]]


class InsecureTlsWarning(UserWarning):
    """A `wss://` session that does not verify the server's certificate."""


@dataclass(frozen=True)
class SessionConfig:
    """Knobs of a session. Every field has a default; see the README for each.

    `token` may be given as a str; it is wrapped in a `Secret` at once.
    """

    url: str = DEFAULT_URL
    token: Secret | str | None = None
    token_provider: TokenProvider | None = None
    protocol: ProtocolLevel = "auto"
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    busy_floor: float = 5.0
    heartbeat: float = 5.0
    connect_timeout: float = 10.0
    close_timeout: float = 2.0
    stop_timeout: float = 10.0
    buffer_seconds: float = 120.0
    flow_window: float = 10.0  # seconds of audio per source written but not yet confirmed
    frame_ms: int = DEFAULT_FRAME_MS
    binary: bool = False  # v1 binary frames (no seq), for v0.2 backends that want them
    binary_seq: bool = True  # v0.3: binary frames with seq when the backend offers them
    # seconds between level events per source (0: every frame): the display's rate
    # (pipeline.display.STATE_EVERY_S); faster levels were never shown, and at 0.1 s the
    # meter was a sixth of a real-time session's CPU. None: no meter, for sessions nobody
    # watches (a bot, a load generator), which would pay for levels no one shows
    level_interval: float | None = 0.25
    verify_tls: bool | ssl.SSLContext = True
    max_message_bytes: int = 4 * 1024 * 1024
    client_features: ClientFeatures = field(default_factory=ClientFeatures)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", resolve_url(self.url))
        if isinstance(self.token, str):
            object.__setattr__(self, "token", Secret(self.token) if self.token else None)
        if self.protocol not in ("auto", "0.2", "0.3"):
            raise ValueError(f"protocol must be auto, 0.2 or 0.3, got {self.protocol!r}")
        if self.heartbeat <= 0 or self.connect_timeout <= 0 or self.buffer_seconds <= 0:
            raise ValueError("heartbeat, connect_timeout and buffer_seconds must be positive")
        if self.flow_window <= 0:
            raise ValueError("flow_window must be positive")
        if self.level_interval is not None and self.level_interval < 0:
            raise ValueError("level_interval must be >= 0 (or None: no levels)")
        frame_samples(self.frame_ms)
        if self.tls_warning is not None:
            warnings.warn(self.tls_warning, InsecureTlsWarning, stacklevel=3)

    @property
    def tls_warning(self) -> str | None:
        """Why this configuration is unsafe, when `verify_tls=False` on a `wss://` URL."""
        if not self.url.startswith("wss:") or self.verify_tls is not False:
            return None
        return (
            f"TLS certificate verification is disabled for {self.url}: anyone on the network "
            "path can read the audio and the token. Use it only for testing"
        )

    @property
    def secret(self) -> Secret | None:
        return self.token if isinstance(self.token, Secret) else None

    @property
    def max_frames(self) -> int:
        """The outbox bound per source, in frames."""
        return max(1, round(self.buffer_seconds * 1000 / self.frame_ms))

    @property
    def window_frames(self) -> int:
        """The flow window per source, in frames."""
        return max(1, round(self.flow_window * 1000 / self.frame_ms))

    @property
    def frame_seconds(self) -> float:
        return self.frame_ms / 1000
