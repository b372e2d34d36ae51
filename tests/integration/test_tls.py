"""TLS: `wss://` verifies the server's certificate by default; a certificate that cannot be
verified is a fatal, clearly worded TlsError after exactly one attempt, never a retry loop.
A real TLS aiohttp backend on loopback with a certificate from a `trustme` test CA."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from loguru import logger

from backend.config import BackendConfig
from backend.server import RunningBackend, running_backend
from pipeline.config import InsecureTlsWarning, SessionConfig
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import Connecting, Reconnecting, StatusEvent
from tests.integration.test_session import chirp, fast

TlsBackend = Callable[..., AbstractAsyncContextManager[RunningBackend]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str, expired: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if expired:
        now = datetime.now(UTC)
        cert = ca.issue_cert(
            *names, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
        )
    else:
        cert = ca.issue_cert(*names)
    cert.configure_cert(context)
    return context


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test CA (and nothing else)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_backend(ca: trustme.CA) -> TlsBackend:
    def start(*names: str, expired: bool = False) -> AbstractAsyncContextManager[RunningBackend]:
        context = server_context(ca, *(names or ("127.0.0.1", "localhost")), expired=expired)
        return running_backend(BackendConfig(), ssl_context=context)

    return start


async def run(config: SessionConfig) -> tuple[SessionReport, list[StatusEvent]]:
    events: list[StatusEvent] = []
    session = Session(config, from_samples(chirp(1.0), realtime=False))
    session.status.subscribe(events.append)
    report = await asyncio.wait_for(session.run(), 20)
    return report, events


def attempts(events: list[StatusEvent]) -> tuple[int, int]:
    return (
        sum(isinstance(e, Connecting) for e in events),
        sum(isinstance(e, Reconnecting) for e in events),
    )


async def test_a_client_trusting_the_ca_streams_over_wss(
    tls_backend: TlsBackend, trusting: ssl.SSLContext
) -> None:
    async with tls_backend() as backend:
        assert backend.url.startswith("wss://")
        report, _ = await run(fast(backend.url, verify_tls=trusting))
    assert report.outcome == "completed", report.reason
    assert report.audio["system"].acked == 50 and report.frames_lost == 0


async def test_an_untrusted_certificate_is_fatal_after_one_attempt(
    tls_backend: TlsBackend,
) -> None:
    async with tls_backend() as backend:
        report, events = await run(fast(backend.url))  # the default: verify, system CAs
    assert report.outcome == "failed" and report.failure_kind == "tls"
    assert attempts(events) == (1, 0)
    reason = report.reason or ""
    assert reason.startswith("TLS certificate verification failed")
    assert "unable to get local issuer certificate" in reason
    assert "verify_tls" in reason  # and says what to do about it


async def test_a_certificate_for_another_host_is_fatal(
    tls_backend: TlsBackend, trusting: ssl.SSLContext
) -> None:
    async with tls_backend("asr.example.org") as backend:
        report, events = await run(fast(backend.url, verify_tls=trusting))
    assert report.failure_kind == "tls" and attempts(events) == (1, 0)
    assert "not valid for '127.0.0.1'" in (report.reason or "")


async def test_an_expired_certificate_is_fatal(
    tls_backend: TlsBackend, trusting: ssl.SSLContext
) -> None:
    async with tls_backend(expired=True) as backend:
        report, events = await run(fast(backend.url, verify_tls=trusting))
    assert report.failure_kind == "tls" and attempts(events) == (1, 0)
    assert "certificate has expired" in (report.reason or "")


async def test_a_plain_server_behind_a_wss_url_is_a_tls_error(backend: Any) -> None:
    report, events = await run(fast(backend.url.replace("ws://", "wss://")))
    assert report.failure_kind == "tls" and attempts(events) == (1, 0)
    assert "TLS handshake failed" in (report.reason or "")


async def test_verification_turned_off_warns_and_streams(tls_backend: TlsBackend) -> None:
    lines: list[str] = []
    handler = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        async with tls_backend() as backend:
            with pytest.warns(InsecureTlsWarning, match="verification is disabled"):
                config = fast(backend.url, verify_tls=False)
            report, _ = await run(config)
    finally:
        logger.remove(handler)
    assert report.outcome == "completed", report.reason
    assert sum("TLS certificate verification is disabled" in line for line in lines) == 1


def test_plain_ws_without_verification_is_not_warned_about() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureTlsWarning)
        config = SessionConfig(url="ws://127.0.0.1:9/ws/live-listener", verify_tls=False)
    assert config.tls_warning is None
    assert SessionConfig(url="asr.example.org").url.startswith("wss://")  # remote: TLS
