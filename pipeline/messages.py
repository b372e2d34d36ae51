"""Backend -> client messages on the wire: the encoding of the typed events that
`pipeline.protocol.decode_event` decodes, so that both ends speak one vocabulary.

A backend builds every message it sends with `to_wire` (a JSON-ready dict: it is kept,
replayed and stored before it is sent) or `encode_event` (the text frame). Optional
fields that are unset (`None`, or an empty status message) are left out, as PROTOCOL.md
shows them; `decode_event(encode_event(event)) == event` for every event a server sends.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.protocol import (
    Ack,
    Analysis,
    AsrFinal,
    ErrorMessage,
    FinalSummary,
    Metrics,
    Segment,
    ServerEvent,
    Status,
)

_METRICS_FIELDS = (
    "queue_depth",
    "queue_max",
    "queue_fill_ratio",
    "dropped_total",
    "dropped_recent",
    "avg_infer_ms",
    "realtime_factor",
)


def _with(body: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """`body` and each optional field that is set, in the order given."""
    body.update((key, value) for key, value in optional.items() if value is not None)
    return body


def _head(kind: str, event: ServerEvent) -> dict[str, Any]:
    return _with({"type": kind}, attempt_id=event.attempt_id)


def _status(event: Status) -> dict[str, Any]:
    token = event.resume_token.reveal() if event.resume_token is not None else None
    return _with(
        _head("status", event),
        state=event.state,
        message=event.message or None,
        resumed=event.resumed,
        next_seq=dict(event.next_seq) if event.next_seq is not None else None,
        resume_token=token,
        dropped_frames=event.dropped_frames,
        recording=event.recording,
        binary=event.binary,
    )


def _segment(event: Segment) -> dict[str, Any]:
    kind = "asr_final" if isinstance(event, AsrFinal) else "asr_partial"
    return _with(
        _head(kind, event),
        text=event.text,
        t0=event.t0,
        t1=event.t1,
        source=event.source,
        confidence=event.confidence,
        segment_id=event.segment_id,
    )


def _metrics(event: Metrics) -> dict[str, Any]:
    fields = {name: getattr(event, name) for name in _METRICS_FIELDS}
    return _with(_head("metrics", event), source=event.source, **fields)


def to_wire(event: ServerEvent) -> dict[str, Any]:
    """The message as a JSON-ready dict; raises TypeError for what no server sends."""
    match event:
        case Status():
            return _status(event)
        case Segment():
            return _segment(event)
        case Metrics():
            return _metrics(event)
        case Ack():
            return _with(_head("ack", event), source=event.source, seq=event.seq)
        case FinalSummary():
            return _with(_head("final_summary", event), markdown=event.markdown, json=event.json)
        case ErrorMessage():
            return _with(_head("error", event), message=event.message)
        case Analysis():
            data = {key: value for key, value in event.data.items() if key != "type"}
            return {**_head(event.kind, event), **data}
    raise TypeError(f"{type(event).__name__} is not a message a server sends")


def encode_event(event: ServerEvent) -> str:
    """The message as a compact JSON text frame."""
    return json.dumps(to_wire(event), separators=(",", ":"))
