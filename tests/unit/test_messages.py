"""Backend -> client messages: what `to_wire`/`encode_event` write, `decode_event` reads
back as the same typed event, for every message a server sends; and the exact text of
the messages PROTOCOL.md shows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.audio import SOURCES
from pipeline.messages import encode_event, to_wire
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
    decode_event,
)
from pipeline.redaction import Secret

attempts = st.none() | st.text(max_size=20)
sources = st.sampled_from(SOURCES)
finite = st.floats(allow_nan=False, allow_infinity=False)
int64 = st.integers(-(2**63), 2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | int64 | finite | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def statuses(draw: st.DrawFn) -> Status:
    token = draw(st.none() | st.text(min_size=1, max_size=40))
    return Status(
        attempt_id=draw(attempts),
        state=draw(
            st.sampled_from(["connected", "streaming", "warning", "backpressure", "error"])
            | st.text()
        ),
        message=draw(st.text()),
        resumed=draw(st.none() | st.booleans()),
        next_seq=draw(st.none() | st.dictionaries(sources, st.integers(0, 2**63 - 1))),
        dropped_frames=draw(st.none() | int64),
        resume_token=None if token is None else Secret(token, scrub=False),
        recording=draw(st.none() | st.booleans()),
    )


@st.composite
def segments(draw: st.DrawFn) -> Segment:
    t0, t1 = sorted((draw(finite), draw(finite)))
    kind = draw(st.sampled_from([AsrPartial, AsrFinal]))
    return kind(
        attempt_id=draw(attempts),
        text=draw(st.text()),
        t0=t0,
        t1=t1,
        source=draw(sources),
        confidence=draw(st.none() | finite),
        segment_id=draw(st.none() | st.text()),
    )


@st.composite
def metrics(draw: st.DrawFn) -> Metrics:
    count, ratio = st.none() | int64, st.none() | finite
    return Metrics(
        attempt_id=draw(attempts),
        source=draw(sources),
        queue_depth=draw(count),
        queue_max=draw(count),
        queue_fill_ratio=draw(ratio),
        dropped_total=draw(count),
        dropped_recent=draw(count),
        avg_infer_ms=draw(ratio),
        realtime_factor=draw(ratio),
    )


@st.composite
def analyses(draw: st.DrawFn) -> Analysis:
    """Decoding keeps the whole message as `data`, its `type` and `attempt_id` too."""
    attempt, kind = draw(attempts), draw(st.sampled_from(["entities_update", "cards_update"]))
    keys = st.text(max_size=8).filter(lambda key: key not in ("type", "attempt_id"))
    data: dict[str, Any] = {"type": kind, **draw(st.dictionaries(keys, json_values, max_size=4))}
    if attempt is not None:
        data["attempt_id"] = attempt
    return Analysis(attempt_id=attempt, kind=kind, data=data)


server_events = st.one_of(
    statuses(),
    segments(),
    metrics(),
    st.builds(Ack, attempt_id=attempts, source=sources, seq=st.integers(0, 2**63 - 1)),
    st.builds(
        FinalSummary,
        attempt_id=attempts,
        markdown=st.text(),
        json=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    ),
    st.builds(ErrorMessage, attempt_id=attempts, message=st.text()),
    analyses(),
)


@given(server_events)
def test_every_server_message_decodes_to_the_event_encoded(event: ServerEvent) -> None:
    assert decode_event(encode_event(event)) == event


@given(server_events)
def test_the_wire_dict_is_the_text_frame(event: ServerEvent) -> None:
    assert json.loads(encode_event(event)) == to_wire(event)


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (Status(state="connected"), '{"type":"status","state":"connected"}'),
        (
            Status(state="streaming", resumed=False, next_seq={"system": 0}),
            '{"type":"status","state":"streaming","resumed":false,"next_seq":{"system":0}}',
        ),
        (
            Status(state="backpressure", message="behind", dropped_frames=3),
            '{"type":"status","state":"backpressure","message":"behind","dropped_frames":3}',
        ),
        (
            Status(state="warning", message="recording stopped", recording=False),
            '{"type":"status","state":"warning","message":"recording stopped","recording":false}',
        ),
        (
            AsrFinal(text="hi", t0=0.74, t1=3.12, source="mic", segment_id="mic-1"),
            '{"type":"asr_final","text":"hi","t0":0.74,"t1":3.12,"source":"mic",'
            '"segment_id":"mic-1"}',
        ),
        (
            AsrPartial(text="h", t0=0.0, t1=0.5, confidence=0.9),
            '{"type":"asr_partial","text":"h","t0":0.0,"t1":0.5,"source":"system",'
            '"confidence":0.9}',
        ),
        (Ack(source="system", seq=1500), '{"type":"ack","source":"system","seq":1500}'),
        (ErrorMessage(message="bad"), '{"type":"error","message":"bad"}'),
        (
            FinalSummary(markdown="# T", json={"session_id": "s"}),
            '{"type":"final_summary","markdown":"# T","json":{"session_id":"s"}}',
        ),
    ],
)
def test_messages_are_written_as_the_protocol_shows_them(event: ServerEvent, text: str) -> None:
    assert encode_event(event) == text


def test_the_resume_secret_is_written_out_only_on_the_wire() -> None:
    status = Status(state="streaming", resume_token=Secret("resume-secret-1", scrub=False))
    assert "resume-secret-1" not in repr(status)
    assert to_wire(status)["resume_token"] == "resume-secret-1"


@pytest.mark.parametrize("event", [Unknown(type="x"), Malformed(reason="r"), ServerEvent()])
def test_what_no_server_sends_cannot_be_encoded(event: ServerEvent) -> None:
    with pytest.raises(TypeError):
        to_wire(event)


def test_a_recording_flag_of_another_type_is_ignored_not_the_status() -> None:
    event = decode_event('{"type":"status","state":"warning","message":"m","recording":"no"}')
    assert event == Status(state="warning", message="m")
