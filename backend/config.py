"""Settings of the embedded backend, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.audio import BYTES_PER_SECOND
from pipeline.redaction import Secret

BackendProtocol = Literal["0.2", "0.3"]


STORE_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class BackendConfig:
    """`protocol="0.2"` behaves like the existing backends: no acks, no resume, and
    timestamps that restart on every connection.

    Limits (per connection unless said otherwise): `max_sessions` sockets at once;
    `max_message_bytes` per WebSocket message (larger: close 1009); `max_message_rate`
    messages a second sustained, `message_burst` at once: over it the backend reads more
    slowly (TCP holds the sender back, nothing is dropped) and says so once in a while;
    `max_invalid_rate`/`invalid_burst` for messages it rejects or ignores: over it the
    connection is closed (1008) with the reason; `resume_window` seconds a detached v0.3
    session is kept.

    Bounds on what a client can hold (README, "Limits"): `start_timeout` seconds to send
    `start` after the socket opens; `handshake_timeout` seconds to send a whole HTTP
    request (the upgrade) after connecting; `max_detached` sessions and
    `max_detached_bytes` of their unrecognised audio kept for resume (over either, the
    oldest detached session ends); `max_audio_bytes` of PCM in one audio message;
    `shutdown_grace` seconds a graceful shutdown spends transcribing what it acknowledged.
    """

    token: str | None = field(default=None, repr=False)
    protocol: BackendProtocol = "0.3"
    asr: str = "none"
    max_sessions: int = 16
    resume_window: float = 120.0
    record_dir: Path | None = None
    store: str | None = None  # redis://HOST:PORT/DB: sessions shared by every instance
    heartbeat: float | None = 10.0
    ack_interval: float = 0.1
    ack_every: int = 50  # frames: ack at once after this many, so fast senders flow
    metrics_interval: float = 1.0
    asr_decoders: int = 4  # pocketsphinx decoder processes leased at once (~125 MB each)
    # ASR backlog per source (in frames and bytes): over it the legacy v0.2 mode drops
    # (and counts); otherwise the connection stops reading until the recogniser catches up.
    asr_queue_seconds: float = 10.0
    # v0.3 clients wait for acks, which stop at what the recogniser took, so the backlog
    # stays within their flow window (10 s for ours); the bound must exceed that.
    asr_queue_seconds_v03: float = 15.0
    max_message_bytes: int = 1024 * 1024
    # 1000 messages/s is 20x real time for one 20 ms source: above what pocketsphinx takes
    # (acks pace v0.3 clients to it), so only a file sent to a backend without ASR slows.
    max_message_rate: float = 1000.0
    message_burst: int = 2000  # a resumed connection resends its backlog at once
    max_invalid_rate: float = 5.0
    invalid_burst: int = 50
    start_timeout: float = 10.0
    handshake_timeout: float = 10.0
    max_detached: int = 64
    max_detached_bytes: int = 64 * 1024 * 1024
    max_audio_bytes: int = BYTES_PER_SECOND  # 1 s; our client sends 20 ms (FRAME_BYTES)
    shutdown_grace: float = 1.5

    def __post_init__(self) -> None:
        if self.protocol not in ("0.2", "0.3"):
            raise ValueError(f"protocol must be 0.2 or 0.3, got {self.protocol!r}")
        if self.store is not None and not self.store.startswith(STORE_SCHEMES):
            raise ValueError("--store takes a redis://HOST:PORT/DB URL")
        if self.max_sessions < 1 or self.resume_window < 0 or self.ack_interval <= 0:
            raise ValueError("need max_sessions >= 1, resume_window >= 0, ack_interval > 0")
        if self.asr_decoders < 1 or min(self.asr_queue_seconds, self.asr_queue_seconds_v03) <= 0:
            raise ValueError("need asr_decoders >= 1 and positive ASR queue bounds")
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes below 1024 cannot carry a start message")
        if min(self.max_message_rate, self.max_invalid_rate) <= 0:
            raise ValueError("message rates must be positive")
        if min(self.message_burst, self.invalid_burst) < 1:
            raise ValueError("bursts must be at least 1")
        if min(self.start_timeout, self.handshake_timeout, self.shutdown_grace) <= 0:
            raise ValueError("start, handshake and shutdown timeouts must be positive")
        if self.max_detached < 0 or self.max_detached_bytes < 0 or self.max_audio_bytes < 2:
            raise ValueError(
                "need max_detached >= 0, max_detached_bytes >= 0, max_audio_bytes >= 2"
            )
        if self.token is not None and not self.token:
            raise ValueError("an empty token would let anyone in: pass None for no authentication")
        if self.token:
            Secret(self.token)  # registers it: redacted wherever it would be logged
