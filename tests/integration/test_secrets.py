"""Secrets stay secret: tokens travel in headers only, and no log, repr, exception or report
carries one. The whole suite's logs are scanned for the tokens of tests/tokens.py when the
run ends (tests/log_capture.py); the first tests here show that scan can fail."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from loguru import logger

from backend.config import BackendConfig
from pipeline.config import SessionConfig
from pipeline.errors import LiveListenerError, Unauthorized, from_exception, from_server
from pipeline.redaction import MASK, Secret
from pipeline.session import Session
from pipeline.sources import from_samples
from sinks.log import log_sink
from tests.conftest import BackendFactory
from tests.integration import rogue
from tests.integration.test_session import chirp, fast
from tests.tokens import TOKEN, WRONG_TOKEN

REPO = Path(__file__).resolve().parents[2]

LEAKY_TESTS = """
import logging
from loguru import logger
from tests.tokens import TOKEN

def test_a_library_logs_a_header():
    logger.info("sending headers {}", {"x-echopanel-token": TOKEN})

def test_a_server_logs_a_query():
    logging.getLogger("aiohttp.access").info("GET /ws/live-listener?token=%s", TOKEN)
"""

REMOVES_THE_CAPTURE = """
from loguru import logger

def test_takes_over_the_logs():
    logger.remove()
"""

CLEAN_TESTS = """
from loguru import logger

def test_logs_nothing_secret():
    logger.info("hello")
"""


@pytest.fixture
def inner_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))

    def run(source: str) -> pytest.RunResult:
        pytester.makepyfile(test_inner=source)
        return pytester.runpytest_subprocess("-p", "tests.log_capture", "-p", "no:cacheprovider")

    return run


def test_the_suite_scan_fails_a_run_whose_logs_carry_a_token(inner_run: Any) -> None:
    result = inner_run(LEAKY_TESTS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "a test token reached the logs" in output
    assert "raw-loguru.log" in output and "stdlib.log" in output  # both leaks, each found
    assert TOKEN not in output  # the report names the token, never shows it


def test_the_suite_scan_fails_a_run_that_removed_the_capture(inner_run: Any) -> None:
    result = inner_run(REMOVES_THE_CAPTURE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "the log capture was removed during the run" in result.stdout.str()


def test_the_suite_scan_passes_a_clean_run(inner_run: Any) -> None:
    result = inner_run(CLEAN_TESTS)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "a test token reached the logs" not in result.stdout.str()


# -- headers, never the URL ----------------------------------------------------------------


async def test_the_token_travels_in_headers_and_never_in_the_url() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def records_then_refuses(request: web.Request) -> web.StreamResponse:
        seen.append((request.path_qs, dict(request.headers)))
        raise web.HTTPUnauthorized()

    async with rogue.serving(records_then_refuses) as url:
        report = await Session(fast(url, token=TOKEN), from_samples(chirp(0.2))).run()

    assert report.failure_kind == "unauthorized"
    (path, headers), *_ = seen
    assert TOKEN not in path and path == "/ws/live-listener"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["x-echopanel-token"] == TOKEN


def test_a_url_with_a_token_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match="travels in a header") as refused:
        SessionConfig(url=f"wss://asr.example.org/ws/live-listener?token={TOKEN}")
    assert TOKEN not in str(refused.value)


async def test_the_backend_access_log_never_shows_a_token(make_backend: BackendFactory) -> None:
    lines: list[str] = []
    handler = logger.add(
        lines.append, format="{message}", filter=lambda r: "component" in r["extra"]
    )
    try:
        async with make_backend(token=TOKEN) as backend, ClientSession() as http:
            # a v0.2 client may put the token in the query; the backend takes it from there
            async with http.ws_connect(f"{backend.url}?token={TOKEN}") as ws:
                first = await ws.receive_json(timeout=5)
            async with http.ws_connect(backend.url, headers={"x-echopanel-token": TOKEN}) as ws:
                second = await ws.receive_json(timeout=5)
            await asyncio.sleep(0.05)  # the access line is written once the response ends
    finally:
        logger.remove(handler)

    assert first["state"] == second["state"] == "connected"  # both were authorized
    access = [line for line in lines if '"GET /ws/live-listener' in line]
    assert len(access) == 2, lines
    assert '"GET /ws/live-listener?<query omitted>" 101' in access[0]
    assert not any(TOKEN in line for line in lines)


# -- reprs, exceptions, the report ------------------------------------------------------------


def test_reprs_of_configs_and_secrets_mask_the_token() -> None:
    config = SessionConfig(token=TOKEN)
    assert TOKEN not in repr(config) and MASK in repr(config)
    assert TOKEN not in repr(BackendConfig(token=TOKEN))
    assert str(Secret(TOKEN)) == repr(Secret(TOKEN)) == f"Secret('{MASK}')"
    with pytest.raises(TypeError):
        json.dumps(Secret(TOKEN))


def test_error_messages_are_redacted_wherever_they_come_from() -> None:
    Secret(WRONG_TOKEN)  # a token the process knows as a secret
    assert WRONG_TOKEN not in str(from_server("error", f"token {WRONG_TOKEN} rejected"))
    error = from_exception(OSError(f"Authorization: Bearer {WRONG_TOKEN}"))
    assert isinstance(error, LiveListenerError) and WRONG_TOKEN not in str(error)
    assert WRONG_TOKEN not in repr(Unauthorized(f"x-echopanel-token: {WRONG_TOKEN}"))


async def echoes_the_token(request: web.Request) -> web.StreamResponse:
    """A backend that quotes the presented token back in a warning and in its refusal."""
    presented = request.headers.get("x-echopanel-token", "")
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json(
        {"type": "status", "state": "warning", "message": f"token {presented} expires"}
    )
    await ws.send_json(
        {"type": "status", "state": "error", "message": f"Unauthorized token {presented}"}
    )
    await ws.close(code=1008)
    return ws


async def test_a_backend_echoing_the_token_leaks_it_nowhere() -> None:
    stream = io.StringIO()
    handler = log_sink(stream, level="DEBUG")
    try:
        async with rogue.serving(echoes_the_token) as url:
            session = Session(fast(url, token=TOKEN), from_samples(chirp(0.2)))
            seen: list[object] = []
            session.events.subscribe(seen.append)
            session.state.subscribe(seen.append)
            report = await session.run()
    finally:
        logger.remove(handler)

    assert report.failure_kind == "unauthorized"
    assert MASK in (report.reason or "")  # the server's words, with the token masked
    shown = [repr(report), json.dumps(report.to_dict()), *report.lines(), *map(repr, seen)]
    assert all(TOKEN not in text for text in shown)
    logged = stream.getvalue()
    assert MASK in logged and TOKEN not in logged
