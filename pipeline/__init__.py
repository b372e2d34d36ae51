"""live-listener: stream live audio to a speech-recognition backend and survive faults.

The public API, importable from `pipeline` (loaded on first use, so that `operators`
and `pipeline` can import each other's modules without cycles):

    from pipeline import Session, SessionConfig, wav_file

`__all__` lists every public name: the session and its front doors, every event, status
and error type, the sources and the operators' building blocks.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from loguru import logger

# A library stays quiet unless the application asks for its logs (`sinks.log.log_sink`).
logger.disable("pipeline")
logger.disable("operators")

try:
    __version__ = metadata.version("live-listener")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "SAMPLE_RATE": "pipeline.audio",
    "AudioFrame": "pipeline.audio",
    "to_int16": "pipeline.audio",
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
    "BlockingSession": "pipeline.blocking",
    "Ended": "pipeline.events",
    "EventQueue": "pipeline.events",
    "Missed": "pipeline.events",
    "PhaseChanged": "pipeline.events",
    "SessionEvent": "pipeline.events",
    "STATE_EVERY_S": "pipeline.display",
    "countdown": "pipeline.display",
    "Level": "pipeline.state",
    "AudioCounts": "pipeline.status",
    "AudioLevel": "pipeline.status",
    "BackendStatus": "pipeline.status",
    "Connected": "pipeline.status",
    "Connecting": "pipeline.status",
    "Failed": "pipeline.status",
    "Finalizing": "pipeline.status",
    "Reconnecting": "pipeline.status",
    "Started": "pipeline.status",
    "StatusEvent": "pipeline.status",
    "Stopped": "pipeline.status",
    "Streaming": "pipeline.status",
    "Transcribed": "pipeline.status",
    "Ack": "pipeline.protocol",
    "Analysis": "pipeline.protocol",
    "AsrFinal": "pipeline.protocol",
    "AsrPartial": "pipeline.protocol",
    "ErrorMessage": "pipeline.protocol",
    "FinalSummary": "pipeline.protocol",
    "Malformed": "pipeline.protocol",
    "Metrics": "pipeline.protocol",
    "Segment": "pipeline.protocol",
    "ServerEvent": "pipeline.protocol",
    "Status": "pipeline.protocol",
    "Unknown": "pipeline.protocol",
    "Decision": "operators.backoff",
    "from_samples": "pipeline.sources",
    "read_wav": "pipeline.sources",
    "tone": "pipeline.sources",
    "wav_file": "pipeline.sources",
}

__all__ = [
    "SAMPLE_RATE",
    "STATE_EVERY_S",
    "Ack",
    "Analysis",
    "AppState",
    "AsrFinal",
    "AsrPartial",
    "AudioCounts",
    "AudioDeviceError",
    "AudioFrame",
    "AudioLevel",
    "BackendStatus",
    "BackoffPolicy",
    "BadConfig",
    "BlockingSession",
    "Connected",
    "Connecting",
    "ConnectionLost",
    "Decision",
    "Ended",
    "ErrorMessage",
    "EventQueue",
    "Failed",
    "FinalSummary",
    "Finalizing",
    "GaveUp",
    "InputDevice",
    "Level",
    "LiveListenerError",
    "Malformed",
    "Metrics",
    "Missed",
    "Outbox",
    "Phase",
    "PhaseChanged",
    "Reconnecting",
    "Retry",
    "Secret",
    "Segment",
    "ServerBusy",
    "ServerEvent",
    "Session",
    "SessionConfig",
    "SessionEvent",
    "SessionIds",
    "SessionReport",
    "SourceCounts",
    "Started",
    "Status",
    "StatusEvent",
    "Stopped",
    "Streaming",
    "TlsError",
    "Transcribed",
    "Unauthorized",
    "Unknown",
    "__version__",
    "countdown",
    "find_device",
    "from_samples",
    "list_devices",
    "microphone",
    "read_wav",
    "reduce",
    "retry_with_backoff",
    "to_int16",
    "tone",
    "wav_file",
]


def __dir__() -> list[str]:
    """The public names, for completion (IPython, editors)."""
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from operators.backoff import BackoffPolicy, Decision, GaveUp, Retry, retry_with_backoff
    from pipeline.audio import SAMPLE_RATE, AudioFrame, to_int16
    from pipeline.blocking import BlockingSession
    from pipeline.capture import InputDevice, find_device, list_devices, microphone
    from pipeline.config import SessionConfig
    from pipeline.display import STATE_EVERY_S, countdown
    from pipeline.errors import (
        AudioDeviceError,
        BadConfig,
        ConnectionLost,
        LiveListenerError,
        ServerBusy,
        TlsError,
        Unauthorized,
    )
    from pipeline.events import Ended, EventQueue, Missed, PhaseChanged, SessionEvent
    from pipeline.ids import SessionIds
    from pipeline.outbox import Outbox, SourceCounts
    from pipeline.protocol import (
        Ack,
        Analysis,
        AsrFinal,
        AsrPartial,
        ErrorMessage,
        FinalSummary,
        Malformed,
        Metrics,
        Segment,
        ServerEvent,
        Status,
        Unknown,
    )
    from pipeline.redaction import Secret
    from pipeline.report import SessionReport
    from pipeline.session import Session
    from pipeline.sources import from_samples, read_wav, tone, wav_file
    from pipeline.state import AppState, Level, Phase, reduce
    from pipeline.status import (
        AudioCounts,
        AudioLevel,
        BackendStatus,
        Connected,
        Connecting,
        Failed,
        Finalizing,
        Reconnecting,
        Started,
        StatusEvent,
        Stopped,
        Streaming,
        Transcribed,
    )
