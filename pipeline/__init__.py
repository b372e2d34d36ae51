"""live-listener: stream live audio to a speech-recognition backend and survive faults.

The public API, importable from `pipeline`:

    from pipeline import Session, SessionConfig, wav_file

`__all__` lists every public name: the session and its front doors, every event, status
and error type, the sources and the operators' building blocks.
"""

from __future__ import annotations

from importlib import metadata

from loguru import logger

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
    SummaryLost,
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

# A library stays quiet unless the application asks for its logs (`sinks.log.log_sink`).
logger.disable("pipeline")
logger.disable("operators")

try:
    __version__ = metadata.version("live-listener")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


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
    "SummaryLost",
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
