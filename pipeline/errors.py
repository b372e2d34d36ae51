"""Every way a session can fail, and the one place that says which failures are retried.

The connection turns raw faults (handshake statuses, close codes, server error messages,
socket errors) into these typed exceptions with :func:`from_close`, :func:`from_server`
and :func:`from_exception`; the retry operator asks :func:`decide` what to do with them.
"""

from __future__ import annotations

import asyncio
import ssl
from enum import StrEnum

import aiohttp
from aiohttp import WebSocketError

from operators.backoff import FATAL, RETRY, Decision, GaveUp
from pipeline.redaction import redact

# Close codes (RFC 6455 and PROTOCOL.md).
NORMAL, GOING_AWAY, POLICY, TOO_BIG = 1000, 1001, 1008, 1009
ABNORMAL, INTERNAL, RESTART, TRY_LATER = 1006, 1011, 1012, 1013
BUSY_FLOOR = 5.0


class LiveListenerError(Exception):
    """Base of all session failures. Messages are redacted: they never carry a secret.

    Whether one is retried is decided by `decide` below, and nowhere else.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def reason(self) -> str:
        return str(self)


class Unauthorized(LiveListenerError):
    """The backend rejected the token. Retrying with the same token can never succeed."""

    def __init__(self, message: str = "unauthorized", *, refreshed: bool = False) -> None:
        super().__init__(message)
        self.refreshed = refreshed  # a token provider supplied a new token: worth one retry


class BadConfig(LiveListenerError):
    """The backend refused the session's configuration (audio format, bad start)."""


class TlsError(LiveListenerError):
    """TLS failed: the server's certificate could not be verified, or the server does not
    speak TLS. Fatal, never retried: the next attempt would meet the same certificate."""


class ServerBusy(LiveListenerError):
    """The backend is at capacity: retry, but never sooner than a floor."""


class ConnectionLost(LiveListenerError):
    """A transient network or server fault: refused, reset, timeout, abnormal close."""

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class ProtocolViolation(ConnectionLost):
    """The backend confirmed frames never written (an ack or `next_seq` in the future).
    Nothing is released; the connection is dropped and, like any transient fault, retried."""


class SummaryLost(LiveListenerError):
    """The connection closed after `stop`, and the backend reached next no longer knows the
    session: it had ended it, so its final summary, and any finals sent with it, were lost
    with the connection. Fatal: a stopped session is never resumed, and a new one would
    answer a second `stop` with a summary of nothing."""


class AudioDeviceError(LiveListenerError):
    """Audio capture cannot start or has stopped. The message names the cause and the fix
    (install PortAudio, start a sound server, pick another device)."""


def decide(error: Exception, *, busy_floor: float = BUSY_FLOOR) -> Decision:
    """Retry or give up: the single classification of failures."""
    if isinstance(error, Unauthorized):
        return Decision(retry=True, floor=0.0, immediate=True) if error.refreshed else FATAL
    if isinstance(error, ServerBusy):
        return Decision(retry=True, floor=busy_floor)
    if isinstance(error, ConnectionLost):
        return RETRY
    return FATAL


class FailureKind(StrEnum):
    """How a session failed: what the report and its JSON print, and what the CLI's exit
    code is chosen by. The one classification of a session's failure."""

    UNAUTHORIZED = "unauthorized"
    BAD_CONFIG = "bad_config"
    TLS = "tls"
    AUDIO = "audio"
    GAVE_UP = "gave_up"
    ERROR = "error"

    @classmethod
    def of(cls, error: BaseException) -> FailureKind:
        """The kind of the error that ended a session (its exact type: a subclass, such as
        a `ProtocolViolation`, is a plain error unless listed)."""
        return _KIND_OF.get(type(error), cls.ERROR)

    @classmethod
    def named(cls, name: str | None) -> FailureKind | None:
        """The kind printed as `name` (an unknown name is a plain error); None for None."""
        if name is None:
            return None
        return cls(name) if name in cls._value2member_map_ else cls.ERROR

    def exception(self, message: str) -> Exception:
        """A typed exception of this kind, for a failure known only by kind and reason."""
        if self is FailureKind.GAVE_UP:
            return GaveUp(ConnectionLost(message), attempts=0, elapsed=0.0)
        return _ERROR_OF.get(self, LiveListenerError)(message)


_ERROR_OF: dict[FailureKind, type[LiveListenerError]] = {
    FailureKind.UNAUTHORIZED: Unauthorized,
    FailureKind.BAD_CONFIG: BadConfig,
    FailureKind.TLS: TlsError,
    FailureKind.AUDIO: AudioDeviceError,
}
_KIND_OF: dict[type[BaseException], FailureKind] = {
    **{error: kind for kind, error in _ERROR_OF.items()},
    GaveUp: FailureKind.GAVE_UP,
}


def from_server(state: str, message: str) -> LiveListenerError:
    """A `status`/`error` message that announces the end of the connection."""
    lowered = message.lower()
    if "unauthorized" in lowered or "forbidden" in lowered:
        return Unauthorized(f"unauthorized: {message}")
    if "capacity" in lowered or "try again" in lowered or "busy" in lowered:
        return ServerBusy(f"server busy: {message}")
    if state == "error_message":  # {"type":"error"}: bad start or unsupported format
        return BadConfig(f"rejected by the backend: {message}")
    return ConnectionLost(f"server error: {message}")


TRANSIENT_CLOSES = frozenset({GOING_AWAY, ABNORMAL, INTERNAL, RESTART, TRY_LATER})


def settle(
    notice: LiveListenerError | None, closed: LiveListenerError | None
) -> LiveListenerError | None:
    """What ended a connection: the error message it got (`notice`), else its close.

    A one-off `{"type":"error"}` notice (a BadConfig) does not outlive a transient close
    that follows it (1001, 1006, 1011-1013): the backend went on and then restarted or
    died, which is what decides.
    """
    if notice is None:
        return closed
    transient = isinstance(closed, ConnectionLost | ServerBusy) and (
        isinstance(closed, ServerBusy) or closed.close_code in TRANSIENT_CLOSES
    )
    if isinstance(notice, BadConfig) and transient:
        return closed
    return notice


def from_close(code: int | None, *, stopping: bool) -> LiveListenerError | None:
    """What a close with no preceding error message means; None for a normal end."""
    if code == POLICY:
        return Unauthorized("unauthorized (close 1008)")
    if code == TOO_BIG:
        return BadConfig("the backend refused a message as too big (close 1009)")
    if code == NORMAL and stopping:
        return None
    if code == NORMAL:
        return ConnectionLost("the backend closed the connection", close_code=code)
    if code == TRY_LATER:
        return ServerBusy("server busy (close 1013)")
    described = {
        GOING_AWAY: "the backend is going away",
        ABNORMAL: "connection lost without a close frame",
        INTERNAL: "the backend hit an internal error",
        RESTART: "the backend is restarting",
    }.get(code or ABNORMAL, "connection closed")
    return ConnectionLost(f"{described} (close {code or ABNORMAL})", close_code=code or ABNORMAL)


def from_exception(error: Exception, *, streamed: bool = False) -> Exception:
    """Map a socket-level exception to a typed failure; anything else (a bug) stays as is.

    `streamed`: the session has streamed on this endpoint before, so an HTTP 4xx that
    says "not a live-listener endpoint" is a proxy mid-deploy, retried, not a wrong URL.
    """
    if isinstance(error, LiveListenerError):
        return error
    if isinstance(error, aiohttp.WSServerHandshakeError):
        if error.status in (401, 403):
            return Unauthorized(f"unauthorized (HTTP {error.status} at the handshake)")
        if error.status in (429, 503):
            return ServerBusy(f"server busy (HTTP {error.status})")
        if error.status in (400, 404, 405, 426) and streamed:
            return ConnectionLost(f"handshake failed (HTTP {error.status}) after streaming")
        if error.status in (400, 404, 405, 426):
            return BadConfig(f"not a live-listener endpoint (HTTP {error.status})")
        return ConnectionLost(f"handshake failed (HTTP {error.status})")
    if isinstance(error, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return TlsError(
            f"TLS certificate verification failed ({_ssl_reason(error)}): the server's "
            "certificate is not trusted. Trust its CA (SessionConfig.verify_tls=<ssl.SSLContext>) "
            "or, for testing only, turn verification off (verify_tls=False, --insecure)"
        )
    if isinstance(error, aiohttp.ClientConnectorSSLError) and not _ssl_cut(error):
        return TlsError(
            f"TLS handshake failed ({_ssl_reason(error)}): is the server speaking TLS? "
            "Use ws:// for a plain server"
        )
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return ConnectionLost(f"DNS lookup failed: {error}")
    if isinstance(error, aiohttp.ClientConnectorError):
        return ConnectionLost(f"cannot connect: {error}")
    if isinstance(error, aiohttp.ServerTimeoutError):
        return ConnectionLost(f"heartbeat timeout: {error}")
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return ConnectionLost("timed out")
    if isinstance(error, WebSocketError):
        if error.code == TOO_BIG:
            return BadConfig(
                f"the backend sent a message over the size limit ({error}); "
                "raise SessionConfig.max_message_bytes if the backend is right to"
            )
        return ConnectionLost(f"protocol error from the backend: {error}", close_code=error.code)
    if isinstance(error, aiohttp.ClientError | ConnectionError | OSError):
        return ConnectionLost(f"{type(error).__name__}: {error}")
    return error


def _ssl_error(error: BaseException) -> BaseException:
    """The ssl module's error inside an aiohttp connector error (or the error itself)."""
    for name in ("certificate_error", "os_error"):
        inner = getattr(error, name, None)
        if isinstance(inner, ssl.SSLError):
            return inner
    return error


def _ssl_reason(error: BaseException) -> str:
    inner = _ssl_error(error)
    reason = getattr(inner, "verify_message", None) or getattr(inner, "reason", None)
    return str(reason or inner)


def _ssl_cut(error: BaseException) -> bool:
    """The TLS handshake was cut by the network (EOF, reset): transient, not a TLS problem."""
    cut = ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError
    return isinstance(_ssl_error(error), cut)
