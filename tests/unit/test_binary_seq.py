"""The v2 binary audio framing (seq in the header) and its negotiation in the handshake."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds
from pipeline.link import Carryover, LinkProtocol, SendStart
from pipeline.outbox import Outbox
from pipeline.protocol import (
    CORE_CAPABILITIES,
    Status,
    decode_audio_binary,
    decode_event,
    encode_audio_binary_seq,
)


def frame(seq: int, source: str = "system", samples: int = 320) -> AudioFrame:
    return AudioFrame(np.arange(samples, dtype=np.int16) - 160, source, seq)


def test_the_v2_header_is_magic_version_source_and_a_big_endian_seq() -> None:
    data = encode_audio_binary_seq(frame(0x01020304, "mic"))
    assert data[:8] == b"EP\x02\x01\x01\x02\x03\x04"
    assert data[8:] == frame(0).pcm and len(data) == 8 + 640


@given(
    seq=st.integers(min_value=0, max_value=2**32 - 1),
    source=st.sampled_from(["system", "mic"]),
    samples=st.integers(min_value=1, max_value=800),
)
def test_v2_frames_decode_to_what_was_encoded(seq: int, source: str, samples: int) -> None:
    original = frame(seq, source, samples)
    payload = decode_audio_binary(encode_audio_binary_seq(original))
    assert (payload.source, payload.seq, payload.pcm) == (source, seq, original.pcm)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"EP\x02\x00\x00\x00", "too short"),
        (b"EP\x02\x07\x00\x00\x00\x01\x00\x00", "source byte"),
        (b"EP\x02\x00\x00\x00\x00\x01\x00", "odd"),
    ],
)
def test_a_broken_v2_frame_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_audio_binary(data)


def test_the_backend_offer_is_read_from_streaming() -> None:
    status = decode_event('{"type":"status","state":"streaming","resumed":false,"binary":2}')
    assert isinstance(status, Status) and status.binary == 2
    assert isinstance(decode_event('{"type":"status","state":"streaming"}'), Status)


def handshake(config: SessionConfig, streaming: Status) -> tuple[SendStart, LinkProtocol]:
    proto = LinkProtocol(
        config,
        SessionIds.new(),
        Outbox(),
        Carryover(),
        connection_id="c",
        clock=lambda: 0.0,
    )
    proto.opened()
    _, send = proto.event_received(Status(state="connected"))
    assert isinstance(send, SendStart)
    proto.event_received(streaming)
    return send, proto


def test_binary_goes_only_to_a_v03_backend_that_answers_the_offer() -> None:
    url = "ws://127.0.0.1:1/ws"
    offered = Status(state="streaming", resumed=False, next_seq={}, binary=2)
    send, proto = handshake(SessionConfig(url=url), offered)
    assert send.start.capabilities is not None and "binary" in send.start.capabilities
    assert proto.binary_seq

    silent = Status(state="streaming", resumed=False, next_seq={})  # a v0.3 backend of old
    assert not handshake(SessionConfig(url=url), silent)[1].binary_seq
    v02 = Status(state="streaming", binary=2)  # no `resumed`: v0.2, whatever else it says
    assert not handshake(SessionConfig(url=url), v02)[1].binary_seq

    send, proto = handshake(SessionConfig(url=url, binary_seq=False), offered)
    assert send.start.capabilities == CORE_CAPABILITIES and not proto.binary_seq
    send, proto = handshake(SessionConfig(url=url, binary=True), offered)  # v1 pinned
    assert send.start.capabilities == CORE_CAPABILITIES and not proto.binary_seq
    send, proto = handshake(SessionConfig(url=url, protocol="0.2"), offered)
    assert send.start.capabilities is None and not proto.binary_seq
