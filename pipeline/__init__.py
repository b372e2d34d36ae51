"""live-listener: stream live audio to a speech-recognition backend and survive faults.

The public API, importable from `pipeline` (loaded on first use, so that `operators`
and `pipeline` can import each other's modules without cycles):

    from pipeline import Session, SessionConfig, wav_file
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loguru import logger

# A library stays quiet unless the application asks for its logs (`sinks.log.log_sink`).
logger.disable("pipeline")
logger.disable("operators")

_EXPORTS = {
    "SAMPLE_RATE": "pipeline.audio",
    "AudioFrame": "pipeline.audio",
    "AppState": "pipeline.state",
    "Phase": "pipeline.state",
    "reduce": "pipeline.state",
    "BackoffPolicy": "operators.backoff",
    "GaveUp": "operators.backoff",
    "Retry": "operators.backoff",
    "retry_with_backoff": "operators.backoff",
    "SessionConfig": "pipeline.config",
    "AudioDeviceError": "pipeline.errors",
    "BadConfig": "pipeline.errors",
    "ConnectionLost": "pipeline.errors",
    "LiveListenerError": "pipeline.errors",
    "ServerBusy": "pipeline.errors",
    "TlsError": "pipeline.errors",
    "Unauthorized": "pipeline.errors",
    "SessionIds": "pipeline.ids",
    "InputDevice": "pipeline.capture",
    "find_device": "pipeline.capture",
    "list_devices": "pipeline.capture",
    "microphone": "pipeline.capture",
    "Outbox": "pipeline.outbox",
    "SourceCounts": "pipeline.outbox",
    "Secret": "pipeline.redaction",
    "SessionReport": "pipeline.report",
    "Session": "pipeline.session",
    "from_samples": "pipeline.sources",
    "read_wav": "pipeline.sources",
    "tone": "pipeline.sources",
    "wav_file": "pipeline.sources",
}

__all__ = [
    "SAMPLE_RATE",
    "AppState",
    "AudioDeviceError",
    "AudioFrame",
    "BackoffPolicy",
    "BadConfig",
    "ConnectionLost",
    "GaveUp",
    "InputDevice",
    "LiveListenerError",
    "Outbox",
    "Phase",
    "Retry",
    "Secret",
    "ServerBusy",
    "Session",
    "SessionConfig",
    "SessionIds",
    "SessionReport",
    "SourceCounts",
    "TlsError",
    "Unauthorized",
    "find_device",
    "from_samples",
    "list_devices",
    "microphone",
    "read_wav",
    "reduce",
    "retry_with_backoff",
    "tone",
    "wav_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from operators.backoff import BackoffPolicy, GaveUp, Retry, retry_with_backoff
    from pipeline.audio import SAMPLE_RATE, AudioFrame
    from pipeline.capture import InputDevice, find_device, list_devices, microphone
    from pipeline.config import SessionConfig
    from pipeline.errors import (
        AudioDeviceError,
        BadConfig,
        ConnectionLost,
        LiveListenerError,
        ServerBusy,
        TlsError,
        Unauthorized,
    )
    from pipeline.ids import SessionIds
    from pipeline.outbox import Outbox, SourceCounts
    from pipeline.redaction import Secret
    from pipeline.report import SessionReport
    from pipeline.session import Session
    from pipeline.sources import from_samples, read_wav, tone, wav_file
    from pipeline.state import AppState, Phase, reduce
