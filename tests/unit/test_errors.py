"""The one classification of failures, for the socket errors aiohttp raises."""

from __future__ import annotations

import json
import ssl

import aiohttp
import pytest
from aiohttp import WebSocketError
from aiohttp.client_reqrep import ConnectionKey

from operators.backoff import FATAL, RETRY, GaveUp
from pipeline import errors

KEY = ConnectionKey("asr.example.org", 443, True, True, None, None, None)


def ssl_connector_error(inner: ssl.SSLError) -> aiohttp.ClientConnectorSSLError:
    return aiohttp.ClientConnectorSSLError(KEY, inner)


def test_a_message_over_the_clients_limit_is_a_configuration_error() -> None:
    failure = errors.from_exception(WebSocketError(1009, "Message size 5000 exceeds limit 1000"))
    assert isinstance(failure, errors.BadConfig) and errors.decide(failure) == FATAL
    assert "max_message_bytes" in str(failure)


def test_other_protocol_errors_from_the_backend_are_retried() -> None:
    failure = errors.from_exception(WebSocketError(1007, "Invalid UTF-8 text message"))
    assert isinstance(failure, errors.ConnectionLost) and errors.decide(failure) == RETRY
    assert failure.close_code == 1007


def test_a_tls_handshake_refused_is_fatal() -> None:
    inner = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    failure = errors.from_exception(ssl_connector_error(inner))
    assert isinstance(failure, errors.TlsError) and errors.decide(failure) == FATAL
    assert "is the server speaking TLS" in str(failure)


@pytest.mark.parametrize("cut", [ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError])
def test_a_tls_handshake_cut_by_the_network_is_retried(cut: type[ssl.SSLError]) -> None:
    failure = errors.from_exception(ssl_connector_error(cut(8, "EOF occurred")))
    assert isinstance(failure, errors.ConnectionLost) and errors.decide(failure) == RETRY


# -- what decides when a connection ends with more than one signal --------------------------


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013])
def test_a_transient_close_decides_over_an_earlier_error_notice(code: int) -> None:
    notice = errors.from_server("error_message", "Unsupported audio format: got 48000")
    closed = errors.from_close(code, stopping=False)
    settled = errors.settle(notice, closed)
    assert settled is closed and settled is not None
    assert errors.decide(settled) != FATAL


@pytest.mark.parametrize("code", [1000, 1008])
def test_an_error_notice_decides_over_a_normal_or_policy_close(code: int) -> None:
    notice = errors.from_server("error_message", "Unsupported audio format: got 48000")
    settled = errors.settle(notice, errors.from_close(code, stopping=False))
    assert settled is notice and errors.decide(notice) == FATAL


def test_an_unauthorized_status_is_never_overruled_by_the_close() -> None:
    notice = errors.from_server("error", "Unauthorized websocket connection")
    assert errors.settle(notice, errors.from_close(1006, stopping=False)) is notice


def handshake(status: int) -> aiohttp.WSServerHandshakeError:
    return aiohttp.WSServerHandshakeError(None, (), status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [404, 400, 405])
def test_a_not_found_after_streaming_is_retried_before_it_is_fatal(status: int) -> None:
    before = errors.from_exception(handshake(status))
    after = errors.from_exception(handshake(status), streamed=True)
    assert isinstance(before, errors.BadConfig) and errors.decide(before) == FATAL
    assert isinstance(after, errors.ConnectionLost) and errors.decide(after) == RETRY


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_at_the_handshake_are_retried(status: int) -> None:
    assert errors.decide(errors.from_exception(handshake(status))) != FATAL


def test_a_protocol_violation_is_retried() -> None:
    violation = errors.ProtocolViolation("protocol violation: an ack for system seq 9")
    assert errors.decide(violation) == RETRY


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (errors.Unauthorized(), "unauthorized"),
        (errors.BadConfig("format"), "bad_config"),
        (errors.TlsError("cert"), "tls"),
        (errors.AudioDeviceError("no device"), "audio"),
        (GaveUp(errors.ConnectionLost("down"), attempts=3, elapsed=1.0), "gave_up"),
        (errors.ConnectionLost("down"), "error"),
        (errors.ProtocolViolation("ack 9"), "error"),  # a subclass is not its parent's kind
        (RuntimeError("bug"), "error"),
    ],
)
def test_each_failure_has_one_kind_printed_as_before(error: Exception, kind: str) -> None:
    found = errors.FailureKind.of(error)
    assert found == kind and f"{found}" == kind and json.dumps(found) == f'"{kind}"'
    rebuilt = found.exception("why")
    assert errors.FailureKind.of(rebuilt) is found or found is errors.FailureKind.ERROR
    assert str(getattr(rebuilt, "cause", rebuilt)) == "why"


def test_a_kind_is_read_back_from_its_name() -> None:
    assert errors.FailureKind.named("tls") is errors.FailureKind.TLS
    assert errors.FailureKind.named("surprise") is errors.FailureKind.ERROR
    assert errors.FailureKind.named(None) is None


def test_every_failure_kind_has_an_exit_code() -> None:
    from pipeline.cli.exit_codes import _BY_FAILURE, ExitCode

    assert set(_BY_FAILURE) == set(errors.FailureKind)
    assert _BY_FAILURE[errors.FailureKind.ERROR] is ExitCode.ERROR
