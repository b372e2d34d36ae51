"""Settings of the embedded backend, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BackendProtocol = Literal["0.2", "0.3"]


@dataclass(frozen=True)
class BackendConfig:
    """`protocol="0.2"` behaves like the existing backends: no acks, no resume, and
    timestamps that restart on every connection."""

    token: str | None = None
    protocol: BackendProtocol = "0.3"
    asr: str = "none"
    max_sessions: int = 16
    resume_window: float = 120.0
    record_dir: Path | None = None
    heartbeat: float | None = 10.0
    ack_interval: float = 0.1
    ack_every: int = 50  # frames: ack at once after this many, so fast senders flow
    metrics_interval: float = 1.0
    asr_decoders: int = 4  # pocketsphinx decoder processes leased at once (~125 MB each)
    asr_queue_seconds: float = 10.0  # ASR backlog per source before frames are dropped (v0.2)
    # v0.3 clients wait for acks, which stop at what the recogniser took, so the backlog
    # stays within their flow window (10 s for ours); the bound must exceed that.
    asr_queue_seconds_v03: float = 15.0
    max_message_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if self.protocol not in ("0.2", "0.3"):
            raise ValueError(f"protocol must be 0.2 or 0.3, got {self.protocol!r}")
        if self.max_sessions < 1 or self.resume_window < 0 or self.ack_interval <= 0:
            raise ValueError("need max_sessions >= 1, resume_window >= 0, ack_interval > 0")
        if self.asr_decoders < 1 or min(self.asr_queue_seconds, self.asr_queue_seconds_v03) <= 0:
            raise ValueError("need asr_decoders >= 1 and positive ASR queue bounds")
