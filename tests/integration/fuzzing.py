"""Hypothesis strategies for what a peer may put on the wire: text and binary frames that are
malformed JSON, JSON of the wrong shape or types, huge numbers, deep nesting, invalid UTF-8,
unknown types, and messages of known types with random fields."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from pipeline.audio import AUDIO_FORMAT, CHANNELS, SAMPLE_RATE, SOURCES


@dataclass(frozen=True)
class Frame:
    """One WebSocket frame: text (`data` is str) or binary; `raw_text` sends bytes as a
    text frame, unchecked (invalid UTF-8 included)."""

    data: str | bytes
    raw_text: bool = False

    def __repr__(self) -> str:
        shown = self.data if len(self.data) <= 120 else self.data[:120]
        return f"Frame({shown!r}{', raw_text' if self.raw_text else ''}, len={len(self.data)})"


huge_ints = st.integers(min_value=2**63, max_value=2**300) | st.integers(
    max_value=-(2**63), min_value=-(2**300)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.just(1e308)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def dumps(value: Any) -> str:
    return json.dumps(value)


deep_nesting = st.integers(min_value=50, max_value=5000).flatmap(
    lambda depth: st.sampled_from(
        ["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth]
    )
)
not_utf8 = st.binary(min_size=1, max_size=200).filter(lambda b: not _utf8(b))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def objects_of(
    kinds: st.SearchStrategy[str], fields: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[str]:
    """JSON objects of the given types with any subset of `fields` (each its own values)."""
    return st.builds(
        lambda kind, chosen, extra: dumps({"type": kind, **chosen, **extra}),
        kinds,
        st.fixed_dictionaries({}, optional=fields),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )


def base64_of(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    return data.map(lambda b: base64.b64encode(b).decode("ascii"))


def frames(texts: st.SearchStrategy[str], *, invalid_utf8: bool = True) -> st.SearchStrategy[Frame]:
    """Typed messages `texts` mixed with every kind of garbage. A text frame that is not
    UTF-8 (`invalid_utf8`) makes the receiver close the connection (1007, RFC 6455)."""
    garbage = [
        texts.map(Frame),
        st.text(max_size=200).map(Frame),
        json_values.map(lambda v: Frame(dumps(v))),
        deep_nesting.map(Frame),
        st.binary(max_size=400).map(Frame),
    ]
    if invalid_utf8:
        garbage.append(not_utf8.map(lambda b: Frame(b, raw_text=True)))
    return st.one_of(garbage)


# -- what a backend might send a client -------------------------------------------------------

SERVER_TYPES = (
    "status",
    "asr_partial",
    "asr_final",
    "metrics",
    "ack",
    "final_summary",
    "entities_update",
    "cards_update",
    "error",
)


def server_messages(attempt_id: str) -> st.SearchStrategy[str]:
    """Backend messages of known (and unknown) types, fields of any type, any attempt id."""
    numbers = st.integers(min_value=-5, max_value=10_000) | huge_ints | json_values
    fields: dict[str, st.SearchStrategy[Any]] = {
        "attempt_id": st.sampled_from([attempt_id, "an-older-attempt"]) | json_values,
        "state": st.sampled_from(
            ["connected", "streaming", "warning", "backpressure", "no_asr_provider", "error"]
        )
        | json_values,
        "message": st.text(max_size=40) | json_values,
        "resumed": st.booleans() | json_values,
        "next_seq": st.dictionaries(st.sampled_from(SOURCES), numbers, max_size=2) | json_values,
        "source": st.sampled_from(SOURCES) | json_values,
        "seq": numbers,
        "text": st.text(max_size=40) | json_values,
        "t0": numbers | st.floats(),
        "t1": numbers | st.floats(),
        "confidence": numbers,
        "segment_id": st.text(max_size=10) | json_values,
        "markdown": st.text(max_size=40) | json_values,
        "json": json_values,
        "queue_depth": numbers,
        "dropped_frames": numbers,
    }
    kinds = st.sampled_from(SERVER_TYPES) | st.text(max_size=20)
    return objects_of(kinds, fields)


# -- what a client might send a backend -------------------------------------------------------

VALID_START: dict[str, Any] = {
    "type": "start",
    "sample_rate": SAMPLE_RATE,
    "format": AUDIO_FORMAT,
    "channels": CHANNELS,
    "capabilities": ["ack", "resume"],
}


def valid_start(
    session_id: str, *, v03: bool = True, resume: dict[str, int] | None = None, secret: str = ""
) -> str:
    """A `start`; with `resume` (and the session's resume `secret`), a v0.3 resume."""
    body = {**VALID_START, "session_id": session_id, "attempt_id": "a", "connection_id": "c"}
    if not v03:
        del body["capabilities"]
    if resume is not None:
        body["resume"] = resume
        body["resume_token"] = secret
    return dumps(body)


def _bad_session_id(value: Any) -> bool:
    return not (isinstance(value, str) and 0 < len(value) <= 128)


@st.composite
def bad_starts(draw: st.DrawFn) -> str:
    """A `start` the backend must refuse: one essential field wrong or missing."""
    body: dict[str, Any] = {**VALID_START, "session_id": draw(st.uuids()).hex}
    key = draw(st.sampled_from(["sample_rate", "format", "channels", "session_id"]))
    if draw(st.booleans()):
        del body[key]
    elif key == "session_id":
        body[key] = draw(json_values.filter(_bad_session_id) | st.text(min_size=129, max_size=300))
    else:
        valid = VALID_START[key]
        body[key] = draw(json_values.filter(lambda v: not (type(v) is type(valid) and v == valid)))
    return dumps(body)


def audio_messages() -> st.SearchStrategy[str]:
    """`audio` with data that may not be base64, PCM of odd length, odd sources and seqs."""
    data = st.text(max_size=60) | base64_of(st.binary(max_size=640)) | json_values
    fields: dict[str, st.SearchStrategy[Any]] = {
        "data": data,
        "source": st.sampled_from(SOURCES) | json_values,
        "seq": st.integers(min_value=-3, max_value=2000) | huge_ints | json_values,
    }
    return objects_of(st.just("audio"), fields)


def other_client_messages(session_id: str | None = None) -> st.SearchStrategy[str]:
    """`stop` for another session, and unknown types with random fields."""
    stop_ids = json_values | st.text(max_size=40)
    if session_id is not None:
        stop_ids = stop_ids.filter(lambda v: v != session_id)
    unknown = st.text(max_size=20).filter(lambda t: t not in ("start", "stop", "audio"))
    return st.one_of(
        stop_ids.map(lambda sid: dumps({"type": "stop", "session_id": sid})),
        objects_of(unknown, {"session_id": json_values, "data": json_values}),
    )
