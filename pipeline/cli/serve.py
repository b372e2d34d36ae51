"""The `serve` command's options, and the checks that make it fail closed.

Without a token the backend listens on loopback only; a wider `--host` needs a token or an
explicit `--no-auth`. A `--token-env` variable that is unset or empty is a refusal to
start (exit 4), never a server without authentication.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from loguru import logger

from backend.asr import ASR_KINDS, DEFAULT_DECODERS
from backend.config import BackendConfig
from backend.server import CannotListen, serve
from pipeline.cli.exit_codes import ExitCode, ExitError

DEFAULTS = BackendConfig()


def _number(
    kind: Callable[[str], float], minimum: float, *, strict: bool
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(
                f"must be {'above' if strict else 'at least'} {minimum:g}, got {text}"
            )
        return value

    return parse


_positive = _number(float, 0, strict=True)
_count = _number(int, 1, strict=False)
_amount = _number(int, 0, strict=False)


def add_serve_options(
    parser: argparse.ArgumentParser, *, refuse_token: type[argparse.Action]
) -> None:
    """The `serve` options, in `--help` order, each with its default from `BackendConfig`.

    Long, but a flat list of declarations without logic: one option per call, so an option
    is added or changed in one place that reads like the help it prints."""
    add = parser.add_argument
    d = DEFAULTS
    add(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); "
        "another than loopback needs --token-env or --no-auth",
    )
    add("--port", type=int, default=8765, help="port to listen on (default 8765)")
    add(
        "--token-env",
        metavar="VAR",
        help="environment variable holding the token every "
        "client must present (default: none; unset or empty refuses to start)",
    )
    add(
        "--no-auth",
        action="store_true",
        help="serve a non-loopback --host without any authentication (default: refused)",
    )
    add("--token", action=refuse_token, help=argparse.SUPPRESS)
    add(
        "--record-dir",
        type=Path,
        metavar="DIR",
        help="write received audio here, one directory per session (default: not recorded)",
    )
    add(
        "--store",
        metavar="URL",
        help="keep session state in Redis (redis://HOST:PORT/DB), so that any instance "
        "behind a load balancer can resume any session (default: this process's memory)",
    )
    add(
        "--protocol",
        choices=("0.2", "0.3"),
        default=d.protocol,
        help=f"highest protocol level offered; 0.3 adds acks and resume (default {d.protocol})",
    )
    add(
        "--asr",
        choices=ASR_KINDS,
        default="pocketsphinx",
        help="speech recogniser: pocketsphinx (offline English) or none (default pocketsphinx)",
    )
    add(
        "--asr-decoders",
        type=_count,
        default=DEFAULT_DECODERS,
        help="recognisers alive at "
        f"once, ~125 MB each; a source beyond them is recorded, not transcribed "
        f"(default {DEFAULT_DECODERS})",
    )
    add(
        "--resume-window",
        type=_number(float, 0, strict=False),
        default=d.resume_window,
        metavar="SECONDS",
        help="how long a v0.3 session that lost its socket is kept for "
        f"resume (default {d.resume_window:g})",
    )
    add(
        "--max-sessions",
        type=_count,
        default=d.max_sessions,
        metavar="N",
        help=f"connections served at once; more are refused (default {d.max_sessions})",
    )
    add(
        "--max-detached",
        type=_amount,
        default=d.max_detached,
        metavar="N",
        help="sessions kept for resume at once; over it the oldest ends "
        f"(default {d.max_detached})",
    )
    add(
        "--max-detached-bytes",
        type=_amount,
        default=d.max_detached_bytes,
        metavar="BYTES",
        help="unrecognised audio held by sessions kept for resume; over it the oldest ends "
        f"(default {d.max_detached_bytes})",
    )
    add(
        "--start-timeout",
        type=_positive,
        default=d.start_timeout,
        metavar="SECONDS",
        help=f"a socket that sends no start by then is closed (default {d.start_timeout:g})",
    )
    add(
        "--handshake-timeout",
        type=_positive,
        default=d.handshake_timeout,
        metavar="SECONDS",
        help="a connection that has not sent its whole HTTP request by then is closed "
        f"(default {d.handshake_timeout:g})",
    )
    add(
        "--max-message-bytes",
        type=_number(int, 1024, strict=False),
        default=d.max_message_bytes,
        metavar="BYTES",
        help=f"largest WebSocket message accepted (default {d.max_message_bytes})",
    )
    add(
        "--max-audio-bytes",
        type=_number(int, 2, strict=False),
        default=d.max_audio_bytes,
        metavar="BYTES",
        help="most PCM in one audio message; larger ones are refused "
        f"(default {d.max_audio_bytes}, 1 s)",
    )
    add(
        "--queue-seconds",
        type=_positive,
        default=d.asr_queue_seconds_v03,
        metavar="SECONDS",
        help="audio queued per source for the recogniser, v0.3 clients "
        f"(default {d.asr_queue_seconds_v03:g})",
    )
    add(
        "--queue-seconds-v02",
        type=_positive,
        default=d.asr_queue_seconds,
        metavar="SECONDS",
        help="the same for v0.2 clients, past which their frames are dropped "
        f"(default {d.asr_queue_seconds:g})",
    )
    add(
        "--max-message-rate",
        type=_positive,
        default=d.max_message_rate,
        metavar="N",
        help="messages/s per connection; above it reading slows "
        f"(default {d.max_message_rate:g}, bursts of {d.message_burst})",
    )
    add(
        "--max-invalid-rate",
        type=_positive,
        default=d.max_invalid_rate,
        metavar="N",
        help="invalid messages/s per connection before it is closed "
        f"(default {d.max_invalid_rate:g}, bursts of {d.invalid_burst})",
    )
    add(
        "--shutdown-grace",
        type=_positive,
        default=d.shutdown_grace,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, time spent transcribing what was acknowledged "
        f"(default {d.shutdown_grace:g})",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_mode(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The token (None: no authentication) and how the banner describes it."""
    if args.token_env is not None:
        if args.no_auth:
            raise ExitError(ExitCode.USAGE, "--no-auth and --token-env contradict each other")
        token = environ.get(args.token_env, "").strip()
        if not token:
            raise ExitError(
                ExitCode.BAD_CONFIG,
                f"the environment variable {args.token_env} (--token-env) is not set or "
                "empty: refusing to start without authentication",
            )
        return token, f"token from ${args.token_env}"
    if is_loopback(args.host):
        return None, "no authentication (loopback only)"
    if not args.no_auth:
        raise ExitError(
            ExitCode.BAD_CONFIG,
            f"--host {args.host} is reachable from other machines: give --token-env VAR, "
            "or --no-auth to serve it without authentication",
        )
    return None, "no authentication (--no-auth)"


def run_serve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    token, auth = auth_mode(args, os.environ if environ is None else environ)
    try:
        config = BackendConfig(
            token=token,
            protocol=args.protocol,
            asr=args.asr,
            asr_decoders=args.asr_decoders,
            record_dir=args.record_dir,
            store=args.store,
            resume_window=args.resume_window,
            max_sessions=args.max_sessions,
            max_detached=args.max_detached,
            max_detached_bytes=args.max_detached_bytes,
            start_timeout=args.start_timeout,
            handshake_timeout=args.handshake_timeout,
            max_message_bytes=args.max_message_bytes,
            max_audio_bytes=args.max_audio_bytes,
            asr_queue_seconds_v03=args.queue_seconds,
            asr_queue_seconds=args.queue_seconds_v02,
            max_message_rate=args.max_message_rate,
            max_invalid_rate=args.max_invalid_rate,
            shutdown_grace=args.shutdown_grace,
        )
    except ValueError as exc:
        raise ExitError(ExitCode.USAGE, str(exc)) from exc
    _operator_log()
    try:
        serve(config, args.host, args.port, auth=auth)
    except CannotListen as exc:
        raise ExitError(ExitCode.BAD_CONFIG, str(exc)) from exc
    return ExitCode.OK


def _operator_log() -> None:
    """One plain line per event (session start, resume, end; shutdown) on stderr."""
    logger.remove()
    logger.enable("backend")
    logger.add(sys.stderr, level="INFO", format="{time:YYYY-MM-DD HH:mm:ss} {level} {message}")
