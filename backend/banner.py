"""What `serve` says when it starts: where it listens, who may connect, and its limits."""

from __future__ import annotations

from urllib.parse import urlsplit

from backend.config import BackendConfig


def banner(config: BackendConfig, url: str, auth: str) -> str:
    """The start-up lines; `auth` says where the token comes from (never the token)."""
    record = str(config.record_dir) if config.record_dir is not None else "off"
    asr = config.asr if config.asr == "none" else f"{config.asr}, {config.asr_decoders} decoders"
    lines = [
        f"live-listener backend on {url} (protocol v{config.protocol})",
        f"  auth:        {auth}",
        f"  recogniser:  {asr}",
        f"  record dir:  {record}",
        f"  sessions:    {_store(config.store)}",
        "  limits:      "
        f"{config.max_sessions} connections, start within {config.start_timeout:g} s, "
        f"request within {config.handshake_timeout:g} s, "
        f"{config.max_message_bytes} bytes/message, {config.max_audio_bytes} bytes audio/message",
        "               "
        f"resume window {config.resume_window:g} s, {config.max_detached} detached sessions, "
        f"{config.max_detached_bytes} bytes held detached, "
        f"ASR queue {config.asr_queue_seconds_v03:g} s (v0.3) / {config.asr_queue_seconds:g} s "
        "(v0.2) per source",
        "  Ctrl-C or SIGTERM: finish what was acknowledged, close clients with 1012, exit",
    ]
    return "\n".join(lines)


def _store(url: str | None) -> str:
    """Where session state lives; a password in the URL is never shown."""
    if url is None:
        return "this process's memory (a restart loses them)"
    parts = urlsplit(url)
    return f"Redis at {parts.hostname}:{parts.port or 6379}{parts.path or '/0'} (shared)"
