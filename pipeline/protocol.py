"""The wire protocol (PROTOCOL.md v0.2 and v0.3) as typed messages and a codec.

Encoding is exact; decoding never raises: anything a server sends becomes a typed event,
and what cannot be understood becomes `Malformed` or `Unknown`, to be logged and skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.audio import AUDIO_FORMAT, CHANNELS, SAMPLE_RATE, SOURCES, AudioFrame
from pipeline.redaction import Secret

CORE_CAPABILITIES: Final = ("ack", "resume")
CAPABILITIES: Final = (*CORE_CAPABILITIES, "binary")  # what a v0.3 client offers by default
BINARY_MAGIC: Final = b"EP"
BINARY_VERSION: Final = 1
BINARY_SEQ_VERSION: Final = 2  # v0.3: the header carries the frame's seq
BINARY_SOURCE_CODES: Final = {"system": 0, "mic": 1, "microphone": 1}
_BINARY_SEQ_HEADER: Final = struct.Struct(">2sBBI")  # b"EP", 2, source byte, seq (uint32 BE)
_SOURCE_OF_CODE: Final = ("system", "mic")

# ---------------------------------------------------------------------------------------
# Client -> backend


@dataclass(frozen=True, slots=True)
class ClientFeatures:
    clock_drift_compensation_enabled: bool = False
    client_vad_enabled: bool = False
    clock_drift_telemetry_enabled: bool = True
    client_vad_telemetry_enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """First message on every connection; `capabilities`/`resume` only when speaking v0.3."""

    session_id: str
    attempt_id: str
    connection_id: str
    sample_rate: int = SAMPLE_RATE
    format: str = AUDIO_FORMAT
    channels: int = CHANNELS
    client_features: ClientFeatures = field(default_factory=ClientFeatures)
    capabilities: tuple[str, ...] | None = None
    resume: Mapping[str, int] | None = None
    resume_token: Secret | None = None  # the session's private secret, beside `resume`
    # v0.3, on a resume: finals per source received on this session (the backend sends
    # again only those after them)
    finals_received: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    session_id: str


def encode_start(start: Start) -> str:
    features = start.client_features
    body: dict[str, Any] = {
        "type": "start",
        "session_id": start.session_id,
        "attempt_id": start.attempt_id,
        "connection_id": start.connection_id,
        "sample_rate": start.sample_rate,
        "format": start.format,
        "channels": start.channels,
        "client_features": {
            "clock_drift_compensation_enabled": features.clock_drift_compensation_enabled,
            "client_vad_enabled": features.client_vad_enabled,
            "clock_drift_telemetry_enabled": features.clock_drift_telemetry_enabled,
            "client_vad_telemetry_enabled": features.client_vad_telemetry_enabled,
        },
    }
    if start.capabilities is not None:
        body["capabilities"] = list(start.capabilities)
    if start.resume:
        body["resume"] = dict(start.resume)
    if start.resume_token is not None:
        body["resume_token"] = start.resume_token.reveal()
    if start.finals_received is not None:
        body["finals_received"] = dict(start.finals_received)
    return json.dumps(body, separators=(",", ":"))


def encode_stop(stop: Stop) -> str:
    return json.dumps({"type": "stop", "session_id": stop.session_id}, separators=(",", ":"))


def encode_audio_json(frame: AudioFrame, *, with_seq: bool = True) -> str:
    """The preferred framing: a JSON text frame with base64 PCM (and `seq` in v0.3)."""
    data = binascii.b2a_base64(frame.pcm, newline=False).decode("ascii")
    # `source` is one of SOURCES, so the string needs no escaping; this is the hot path.
    if with_seq:
        return f'{{"type":"audio","source":"{frame.source}","seq":{frame.seq},"data":"{data}"}}'
    return f'{{"type":"audio","source":"{frame.source}","data":"{data}"}}'


def encode_audio_binary(frame: AudioFrame) -> bytes:
    """The v1 binary framing: b"EP", version 1, source byte, then PCM16 LE."""
    return BINARY_MAGIC + bytes((BINARY_VERSION, BINARY_SOURCE_CODES[frame.source])) + frame.pcm


def encode_audio_binary_seq(frame: AudioFrame) -> bytes:
    """The v2 binary framing (v0.3, when `streaming` says `"binary": 2`): b"EP", version 2,
    source byte, seq as uint32 big-endian, then PCM16 LE — JSON audio without base64."""
    code = BINARY_SOURCE_CODES[frame.source]
    return _BINARY_SEQ_HEADER.pack(BINARY_MAGIC, BINARY_SEQ_VERSION, code, frame.seq) + frame.pcm


# ---------------------------------------------------------------------------------------
# Backend -> client


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent:
    """Base of everything a backend sends; `attempt_id` is set when the backend echoes one."""

    attempt_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(ServerEvent):
    state: str
    message: str = ""
    resumed: bool | None = None
    next_seq: Mapping[str, int] | None = None
    dropped_frames: int | None = None
    resume_token: Secret | None = None  # v0.3, on a session's first `streaming`
    recording: bool | None = None  # False on the warning that a source's recording stopped
    binary: int | None = None  # v0.3: the binary audio framing the backend takes (2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment(ServerEvent):
    """An ASR hypothesis; `t0`/`t1` are seconds from the start of the source's audio."""

    text: str
    t0: float
    t1: float
    source: str = "system"
    confidence: float | None = None
    segment_id: str | None = None

    def shifted(self, offset: float) -> Segment:
        """The same hypothesis on a timeline that starts `offset` seconds earlier."""
        if not offset:
            return self
        return type(self)(
            attempt_id=self.attempt_id,
            text=self.text,
            t0=self.t0 + offset,
            t1=self.t1 + offset,
            source=self.source,
            confidence=self.confidence,
            segment_id=self.segment_id,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AsrPartial(Segment):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AsrFinal(Segment):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics(ServerEvent):
    source: str = "system"
    queue_depth: int | None = None
    queue_max: int | None = None
    queue_fill_ratio: float | None = None
    dropped_total: int | None = None
    dropped_recent: int | None = None
    avg_infer_ms: float | None = None
    realtime_factor: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(ServerEvent):
    source: str
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalSummary(ServerEvent):
    markdown: str = ""
    json: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis(ServerEvent):
    """`entities_update` or `cards_update`: passed through as data."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage(ServerEvent):
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(ServerEvent):
    """A well-formed message of a type this client does not know; ignored."""

    type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed(ServerEvent):
    """Something that is not a valid message; logged and skipped."""

    reason: str
    text: str = ""


class _Invalid(Exception):
    pass


def _reject_constant(name: str) -> float:
    raise _Invalid(f"non-finite number {name}")


# one decoder for every message: `json.loads` with an option builds a new decoder per call
# (6.5 us for an ack against 2.0 us for `decode` on this one)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _opt_str(body: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None or isinstance(value, str):
        return value
    raise _Invalid(f"{key} must be a string")


def _str(body: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = _opt_str(body, key, default)
    if value is None:
        raise _Invalid(f"missing {key}")
    return value


def _opt_secret(body: Mapping[str, Any], key: str) -> Secret | None:
    value = _opt_str(body, key)
    return Secret(value) if value else None


def _opt_bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _Invalid(f"{key} must be a boolean")


def _opt_num(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{key} must be a number")
    try:
        number = float(value)
    except OverflowError as exc:
        raise _Invalid(f"{key} is out of range") from exc
    if not math.isfinite(number):
        raise _Invalid(f"{key} must be finite")
    return number


def _num(body: Mapping[str, Any], key: str) -> float:
    value = _opt_num(body, key)
    if value is None:
        raise _Invalid(f"missing {key}")
    return value


def _opt_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{key} must be an integer")
    if not -(2**63) <= value < 2**63:
        raise _Invalid(f"{key} is out of range")
    return value


def _source(body: Mapping[str, Any]) -> str:
    source = _str(body, "source", "system")
    if source not in SOURCES:
        raise _Invalid(f"unknown source {source[:40]!r}")
    return source


def _seq_map(body: Mapping[str, Any], key: str) -> dict[str, int] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f"{key} must be an object")
    result: dict[str, int] = {}
    for source, seq in value.items():
        checked = _opt_int({"seq": seq}, "seq")
        if source in SOURCES and checked is not None and checked >= 0:
            result[source] = checked
    return result


def _segment(cls: type[Segment], body: Mapping[str, Any], attempt: str | None) -> Segment:
    t0, t1 = _num(body, "t0"), _num(body, "t1")
    if t1 < t0:
        raise _Invalid("t1 before t0")
    return cls(
        attempt_id=attempt,
        text=_str(body, "text"),
        t0=t0,
        t1=t1,
        source=_source(body),
        confidence=_opt_num(body, "confidence"),
        segment_id=_opt_str(body, "segment_id"),
    )


def _decode_object(body: Mapping[str, Any]) -> ServerEvent:
    kind = body.get("type")
    if not isinstance(kind, str):
        raise _Invalid("missing type")
    attempt = _opt_str(body, "attempt_id")
    if kind == "status":
        return Status(
            attempt_id=attempt,
            state=_str(body, "state"),
            message=_str(body, "message", ""),
            resumed=_opt_bool(body, "resumed"),
            next_seq=_seq_map(body, "next_seq"),
            dropped_frames=_opt_int(body, "dropped_frames"),
            resume_token=_opt_secret(body, "resume_token"),
            # informational only: a value of another type is ignored, not the message
            recording=recording if isinstance(recording := body.get("recording"), bool) else None,
            binary=_opt_int(body, "binary"),
        )
    if kind == "asr_partial":
        return _segment(AsrPartial, body, attempt)
    if kind == "asr_final":
        return _segment(AsrFinal, body, attempt)
    if kind == "metrics":
        return Metrics(
            attempt_id=attempt,
            source=_source(body),
            queue_depth=_opt_int(body, "queue_depth"),
            queue_max=_opt_int(body, "queue_max"),
            queue_fill_ratio=_opt_num(body, "queue_fill_ratio"),
            dropped_total=_opt_int(body, "dropped_total"),
            dropped_recent=_opt_int(body, "dropped_recent"),
            avg_infer_ms=_opt_num(body, "avg_infer_ms"),
            realtime_factor=_opt_num(body, "realtime_factor"),
        )
    if kind == "ack":
        seq = _opt_int(body, "seq")
        if seq is None or seq < 0:
            raise _Invalid("ack needs a non-negative seq")
        return Ack(attempt_id=attempt, source=_source(body), seq=seq)
    if kind == "final_summary":
        summary = body.get("json", {})
        if not isinstance(summary, dict):
            raise _Invalid("json must be an object")
        return FinalSummary(attempt_id=attempt, markdown=_str(body, "markdown", ""), json=summary)
    if kind in ("entities_update", "cards_update"):
        return Analysis(attempt_id=attempt, kind=kind, data=dict(body))
    if kind == "error":
        return ErrorMessage(attempt_id=attempt, message=_str(body, "message", "error"))
    return Unknown(attempt_id=attempt, type=kind[:64])


def decode_event(text: str | bytes) -> ServerEvent:
    """Decode one text frame. Never raises: bad input becomes `Malformed`."""
    snippet = text[:200] if isinstance(text, str) else repr(text[:200])
    try:
        # bytes: `json.loads` detects their encoding (UTF-8, -16 or -32) as it always did
        body = (
            _DECODER.decode(text)
            if isinstance(text, str)
            else json.loads(text, parse_constant=_reject_constant)
        )
    except (ValueError, RecursionError, _Invalid) as exc:
        return Malformed(reason=f"not JSON: {type(exc).__name__}", text=snippet)
    if not isinstance(body, dict):
        return Malformed(reason=f"not an object: {type(body).__name__}", text=snippet)
    try:
        return _decode_object(body)
    except (_Invalid, RecursionError) as exc:
        return Malformed(reason=str(exc), text=snippet)


# ---------------------------------------------------------------------------------------
# Parsing client messages (for backends)


@dataclass(frozen=True, slots=True)
class AudioPayload:
    source: str
    pcm: bytes
    seq: int | None


def decode_finals_received(body: Mapping[str, Any]) -> dict[str, int] | None:
    """A resume's `finals_received`: per source, how many finals the client has. None
    when absent or not a map of sources to non-negative integers: the backend then sends
    again, as a client that does not count finals needs, what the lost socket carried."""
    value = body.get("finals_received")
    if not isinstance(value, dict):
        return None
    counts: dict[str, int] = {}
    for source, count in value.items():
        try:
            checked = _opt_int({"count": count}, "count")
        except _Invalid:
            return None
        if checked is None or checked < 0:
            return None
        if source in SOURCES:
            counts["mic" if source == "microphone" else source] = checked
    return counts


def decode_audio_json(body: Mapping[str, Any]) -> AudioPayload:
    """Parse an `audio` message; raises ValueError with a reason a client can read."""
    try:
        source = _source(body)
        data = _str(body, "data")
        seq = _opt_int(body, "seq")
    except _Invalid as exc:
        raise ValueError(str(exc)) from exc
    try:
        pcm = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("data is not valid base64") from exc
    if len(pcm) % 2:
        raise ValueError("PCM16 data has an odd number of bytes")
    if seq is not None and seq < 0:
        raise ValueError("seq must be non-negative")
    return AudioPayload(source, pcm, seq)


def decode_audio_binary(data: bytes) -> AudioPayload:
    """Binary audio: the v2 header (b"EP", 2, source byte, uint32 BE seq), the v1 header
    (b"EP", 1, source byte) or raw PCM16 of `system`."""
    seq: int | None = None
    if (
        data[:2] == BINARY_MAGIC
        and len(data) >= 4
        and data[2] in (BINARY_VERSION, BINARY_SEQ_VERSION)
    ):
        if data[3] not in (0, 1):
            raise ValueError(f"unknown source byte {data[3]}")
        source, pcm = _SOURCE_OF_CODE[data[3]], data[4:]
        if data[2] == BINARY_SEQ_VERSION:
            if len(data) < _BINARY_SEQ_HEADER.size:
                raise ValueError("binary audio header too short for its seq")
            seq = _BINARY_SEQ_HEADER.unpack_from(data)[3]
            pcm = data[_BINARY_SEQ_HEADER.size :]
    else:
        source, pcm = "system", data
    if len(pcm) % 2:
        raise ValueError("PCM16 data has an odd number of bytes")
    return AudioPayload(source, bytes(pcm), seq)
