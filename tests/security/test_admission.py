"""Authentication fails closed: an empty token configures nothing, an empty or undecodable
presented token is refused cleanly (no traceback), and resume secrets are private."""

from __future__ import annotations

import asyncio

import pytest

from backend.admission import UNAUTHORIZED, digest, may_resume, new_resume_secret
from backend.config import BackendConfig
from tests.conftest import BackendFactory
from tests.integration.tracebacks import tracebacks
from tests.tokens import TOKEN

HANDSHAKE = (
    b"GET /ws/live-listener%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n%s\r\n"
)


CLOSE_1008 = b"\x88\x0e\x03\xf0unauthorized"  # the server's close frame: 1008, a reason


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends up to its close frame (it then waits for ours)."""
    answer = b""
    while CLOSE_1008 not in answer:
        chunk = await reader.read(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_an_empty_token_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="empty token"):
        BackendConfig(token="")


@pytest.mark.parametrize(
    ("query", "header"),
    [
        (b"", b"Authorization: Bearer \xff\xfe\x80\r\n"),
        (b"", b"x-echopanel-token: \xff" + TOKEN.encode() + b"\r\n"),
        (b"?token=", b""),
        (b"", b"Authorization: Bearer \r\n"),
        (b"?token=%ff%fe", b""),
    ],
)
async def test_bad_or_empty_tokens_are_refused_cleanly(
    query: bytes, header: bytes, make_backend: BackendFactory
) -> None:
    async with make_backend(token=TOKEN) as backend:
        with tracebacks() as crashes:
            reader, writer = await asyncio.open_connection(backend.host, backend.port)
            writer.write(HANDSHAKE % (query, header))
            answer = await asyncio.wait_for(until_closed(reader), 10)
            writer.close()
    assert answer.startswith(b"HTTP/1.1 101")
    assert UNAUTHORIZED.encode() in answer and answer.endswith(CLOSE_1008)
    assert crashes == []


def test_a_resume_secret_is_checked_against_its_digest_only() -> None:
    secret, kept = new_resume_secret()
    assert kept == digest(secret) and secret not in kept
    assert may_resume(kept, secret)
    for wrong in (None, "", 42, secret[:-1], secret + "x", "\udcff"):
        assert not may_resume(kept, wrong)
    assert new_resume_secret()[0] != secret
