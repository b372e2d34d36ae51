"""The one classification of failures, for the socket errors aiohttp raises."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from aiohttp import WebSocketError
from aiohttp.client_reqrep import ConnectionKey

from operators.backoff import FATAL, RETRY
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
