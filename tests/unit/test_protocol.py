"""The codec: exact encoding, and decoding that never raises."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.audio import AudioFrame
from pipeline.protocol import (
    Ack,
    Analysis,
    AsrFinal,
    AsrPartial,
    ErrorMessage,
    FinalSummary,
    Malformed,
    Metrics,
    ServerEvent,
    Start,
    Status,
    Stop,
    Unknown,
    decode_audio_binary,
    decode_audio_json,
    decode_event,
    encode_audio_binary,
    encode_audio_json,
    encode_start,
    encode_stop,
)


def frame(seq: int = 3, source: str = "mic") -> AudioFrame:
    return AudioFrame(np.arange(320, dtype=np.int16) - 160, source, seq)


def test_start_carries_ids_format_and_v03_fields() -> None:
    v02 = json.loads(encode_start(Start(session_id="s", attempt_id="a", connection_id="c")))
    assert v02["type"] == "start" and v02["sample_rate"] == 16000
    assert v02["format"] == "pcm_s16le" and v02["channels"] == 1
    assert "capabilities" not in v02 and "resume" not in v02
    assert v02["client_features"]["clock_drift_telemetry_enabled"] is True

    v03 = json.loads(
        encode_start(
            Start(
                session_id="s",
                attempt_id="a",
                connection_id="c",
                capabilities=("ack", "resume"),
                resume={"system": 1500},
            )
        )
    )
    assert v03["capabilities"] == ["ack", "resume"] and v03["resume"] == {"system": 1500}


def test_audio_json_round_trips() -> None:
    body = json.loads(encode_audio_json(frame()))
    assert body == {
        "type": "audio",
        "source": "mic",
        "seq": 3,
        "data": base64.b64encode(frame().pcm).decode(),
    }
    payload = decode_audio_json(body)
    assert payload.pcm == frame().pcm and payload.seq == 3 and payload.source == "mic"
    assert "seq" not in json.loads(encode_audio_json(frame(), with_seq=False))


def test_audio_binary_v1_header() -> None:
    data = encode_audio_binary(frame(source="system"))
    assert data[:4] == b"EP\x01\x00" and data[4:] == frame().pcm
    assert encode_audio_binary(frame(source="microphone"))[3] == 1
    assert decode_audio_binary(data).source == "system"
    assert decode_audio_binary(b"\x01\x00\x02\x00").pcm == b"\x01\x00\x02\x00"  # raw PCM


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "audio", "data": "!!!", "seq": 1}, "base64"),
        ({"type": "audio", "data": "AA==", "seq": 1}, "odd"),
        ({"type": "audio", "data": "AAAA", "source": "radio"}, "source"),
        ({"type": "audio", "data": "AAAAAA==", "seq": -1}, "non-negative"),
        ({"type": "audio"}, "data"),
    ],
)
def test_bad_audio_is_refused_with_a_reason(body: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_audio_json(body)


def test_stop_carries_the_session_id() -> None:
    assert json.loads(encode_stop(Stop("s"))) == {"type": "stop", "session_id": "s"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"type":"status","state":"streaming","resumed":true,"next_seq":{"system":12}}',
            Status(state="streaming", resumed=True, next_seq={"system": 12}),
        ),
        (
            '{"type":"status","state":"error","message":"Unauthorized websocket connection"}',
            Status(state="error", message="Unauthorized websocket connection"),
        ),
        (
            '{"type":"asr_final","text":"hi","t0":1.5,"t1":2,"confidence":0.9,'
            '"source":"mic","segment_id":"mic-1","attempt_id":"a"}',
            AsrFinal(
                attempt_id="a",
                text="hi",
                t0=1.5,
                t1=2.0,
                confidence=0.9,
                source="mic",
                segment_id="mic-1",
            ),
        ),
        ('{"type":"asr_partial","text":"h","t0":0,"t1":0.2}', AsrPartial(text="h", t0=0, t1=0.2)),
        ('{"type":"ack","source":"system","seq":1500}', Ack(source="system", seq=1500)),
        (
            '{"type":"metrics","source":"system","queue_depth":3,"realtime_factor":0.2}',
            Metrics(source="system", queue_depth=3, realtime_factor=0.2),
        ),
        (
            '{"type":"error","message":"Unsupported audio format"}',
            ErrorMessage(message="Unsupported audio format"),
        ),
        (
            '{"type":"final_summary","markdown":"# T","json":{"transcript":[]}}',
            FinalSummary(markdown="# T", json={"transcript": []}),
        ),
        ('{"type":"future_thing","x":1}', Unknown(type="future_thing")),
    ],
)
def test_decodes_every_server_message(text: str, expected: ServerEvent) -> None:
    assert decode_event(text) == expected


def test_analysis_updates_pass_through() -> None:
    event = decode_event('{"type":"cards_update","actions":[{"text":"x"}]}')
    assert isinstance(event, Analysis) and event.kind == "cards_update"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1,2,3]",
        '"a string"',
        "{}",
        '{"type":3}',
        '{"type":"status"}',
        '{"type":"status","state":"x","resumed":"yes"}',
        '{"type":"asr_final","text":"hi","t0":"zero","t1":1}',
        '{"type":"asr_final","text":"hi","t0":2,"t1":1}',
        '{"type":"asr_final","text":"hi","t0":NaN,"t1":1}',
        '{"type":"asr_final","text":"hi","t0":1e999,"t1":1}',
        '{"type":"ack","source":"system","seq":-4}',
        '{"type":"ack","source":"system","seq":1.5}',
        '{"type":"ack","source":"system","seq":true}',
        '{"type":"ack","source":"system","seq":' + "9" * 40 + "}",
        '{"type":"metrics","source":"nowhere"}',
        "[" * 100_000,
    ],
)
def test_malformed_input_becomes_a_malformed_event(text: str) -> None:
    assert isinstance(decode_event(text), Malformed)


@given(st.text())
def test_decoding_arbitrary_text_never_raises(text: str) -> None:
    assert isinstance(decode_event(text), ServerEvent)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(
    st.sampled_from(
        ["status", "asr_final", "asr_partial", "ack", "metrics", "final_summary", "error", "x"]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "state",
                "text",
                "t0",
                "t1",
                "seq",
                "source",
                "resumed",
                "next_seq",
                "json",
                "message",
                "attempt_id",
                "queue_depth",
                "confidence",
            ]
        ),
        json_values,
    ),
)
def test_decoding_arbitrary_messages_never_raises(kind: str, fields: dict[str, object]) -> None:
    text = json.dumps({"type": kind, **fields})
    assert isinstance(decode_event(text), ServerEvent)
