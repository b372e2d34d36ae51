"""The `live-listener` command: demo, listen, devices, serve.

The application layer: it composes the core (`pipeline`), the sinks and the embedded
backend, and nothing below imports it — `import pipeline` never loads `pipeline.cli`.

Exit codes are defined in `pipeline.cli.exit_codes`; a failure prints one line on stderr
that says why and what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from loguru import logger

from backend.asr import ASR_KINDS
from pipeline import __version__, event_loop
from pipeline.capture import NO_DEVICES, list_devices
from pipeline.cli.demo import DemoOptions, run_demo
from pipeline.cli.exit_codes import ExitCode, ExitError, failure_line
from pipeline.cli.foreground import Outcome
from pipeline.cli.listen import ListenOptions, SourceSpec, listen, parse_source
from pipeline.cli.serve import add_serve_options, run_serve
from pipeline.config import DEFAULT_URL, SessionConfig
from pipeline.errors import AudioDeviceError
from pipeline.redaction import Secret
from sinks.log import log_sink

FLOW_WINDOW_S = SessionConfig.flow_window
TOKEN_ENV = "LIVE_LISTENER_TOKEN"  # read when --token-env is not given
# Options a user sets once (in a shell profile or a service unit) instead of on every call.
ENV_OPTIONS = {
    "LIVE_LISTENER_URL": "--url",
    "LIVE_LISTENER_SOURCE": "--source (comma-separated for several)",
    "LIVE_LISTENER_DEVICE": "--device",
    "LIVE_LISTENER_PROTOCOL": "--protocol",
    "LIVE_LISTENER_TRANSCRIPT": "--transcript",
    "LIVE_LISTENER_FLOW_WINDOW": "--flow-window",
}
ENV_HELP = "environment (a flag given on the command line wins):\n" + "\n".join(
    [f"  {TOKEN_ENV:<26}the token, when --token-env is not given"]
    + [f"  {name:<26}{flag}" for name, flag in ENV_OPTIONS.items()]
)


def _speed(text: str) -> float | str:
    if text == "max":
        return "max"
    try:
        return _positive(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number or max, got {text}") from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _source(text: str) -> SourceSpec:
    try:
        return parse_source(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _RefuseToken(argparse.Action):
    """`--token VALUE` is a usage error that does not repeat the value."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "a token is never taken from the command line (process lists and shell "
            "history keep it): use --token-env VAR or --ask-token"
        )


class _Parser(argparse.ArgumentParser):
    """Never repeats arguments it did not understand: a mistyped option's value may be a
    secret, and the error line lands in terminals and logs."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            message = "unrecognized arguments (not repeated: one may be a secret); see --help"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="live-listener",
        description="Stream live audio to a speech-recognition backend; survive faults.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"live-listener {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_listen(commands)
    commands.add_parser("devices", help="list audio input devices", allow_abbrev=False)
    _add_serve(commands)
    return parser


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
    demo = commands.add_parser(
        "demo",
        allow_abbrev=False,
        help="the whole job on embedded defaults: a recording, an outage, the live view",
    )
    demo.add_argument(
        "--file", type=Path, metavar="PATH", help="a WAV file instead of the bundled recording"
    )
    demo.add_argument(
        "--outage",
        type=_positive,
        default=4.0,
        metavar="SECONDS",
        help="seconds the network is down mid-way (default 4)",
    )
    demo.add_argument("--no-outage", action="store_true", help="no injected outage")
    demo.add_argument(
        "--asr",
        choices=ASR_KINDS,
        default="pocketsphinx",
        help="recogniser of the embedded backend (default pocketsphinx)",
    )
    _add_output_flags(demo)


def _add_listen(commands: argparse._SubParsersAction[_Parser]) -> None:
    # No abbreviations: `--token VALUE` must be an error, not `--token-env VALUE`.
    listen = commands.add_parser(
        "listen",
        help="stream live audio to a backend",
        allow_abbrev=False,
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ
    _add_backend_options(listen, env)
    _add_stream_options(listen, env)
    _add_limit_options(listen, env)
    _add_timing_options(listen, env)
    _add_output_flags(listen)
    if env.get("LIVE_LISTENER_TRANSCRIPT"):
        listen.set_defaults(transcript=Path(env["LIVE_LISTENER_TRANSCRIPT"]).expanduser())


def _add_backend_options(listen: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Where the backend is, and the token it wants (never from the command line)."""
    listen.add_argument(
        "--url",
        default=env.get("LIVE_LISTENER_URL") or DEFAULT_URL,
        help=f"the backend's address (default {DEFAULT_URL})",
    )
    listen.add_argument(
        "--token-env",
        metavar="VAR",
        help=f"environment variable holding the token (default: {TOKEN_ENV}, if set)",
    )
    listen.add_argument(
        "--ask-token", action="store_true", help="prompt for the token (on a terminal)"
    )
    listen.add_argument("--token", action=_RefuseToken, help=argparse.SUPPRESS)


def _add_stream_options(listen: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """What is streamed, from which device, and how fast."""
    listen.add_argument(
        "--source",
        type=_source,
        action="append",
        metavar="mic|system|file:PATH|tone",
        help="what to stream (default mic); repeat for several, each its own stream and "
        "transcript label (mic or system; name one with mic=... or system=...)",
    )
    listen.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="N|max",
        help="file sources: N times real time, or max: as fast as the backend confirms (default 1)",
    )
    listen.add_argument(
        "--events",
        choices=("jsonl",),
        help="write one JSON object per event to stdout (the view goes to stderr; "
        "schema in the README)",
    )
    listen.add_argument(
        "--device",
        default=env.get("LIVE_LISTENER_DEVICE") or None,
        metavar="NAME",
        help="input device: any unique part of its name, or its index (default: the "
        "default input; for system, the monitor of the default output)",
    )


def _add_limit_options(listen: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The protocol level, and when the session stops or gives up."""
    listen.add_argument(
        "--protocol",
        choices=("auto", "0.2", "0.3"),
        default=env.get("LIVE_LISTENER_PROTOCOL") or "auto",
        help="protocol level: auto uses v0.3 (acks, resume) when the backend has it (default auto)",
    )
    listen.add_argument(
        "--duration", type=_positive, metavar="SECONDS", help="stop after this long"
    )
    listen.add_argument(
        "--max-attempts",
        type=_at_least_one,
        metavar="N",
        help="give up after N failed reconnection attempts in a row (default: never)",
    )
    listen.add_argument(
        "--give-up-after",
        type=_positive,
        metavar="SECONDS",
        help="give up when an outage lasts this long (default: never)",
    )


def _add_timing_options(listen: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Heartbeat, stop wait, buffering, flow control and TLS verification."""
    listen.add_argument(
        "--heartbeat",
        type=_positive,
        default=5.0,
        metavar="SECONDS",
        help="ping interval; a silent connection is declared lost after it (default 5)",
    )
    listen.add_argument(
        "--stop-timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="how long Ctrl-C waits for the final summary (default 10)",
    )
    listen.add_argument(
        "--buffer-seconds",
        type=_positive,
        default=120.0,
        metavar="SECONDS",
        help="audio kept per source while the backend is unreachable (default 120)",
    )
    listen.add_argument(
        "--flow-window",
        type=_positive,
        default=env.get("LIVE_LISTENER_FLOW_WINDOW") or FLOW_WINDOW_S,
        metavar="SECONDS",
        help="audio per source sent but not yet confirmed before the sender waits; keep it "
        f"below the backend's queue (default {FLOW_WINDOW_S:g})",
    )
    listen.add_argument(
        "--insecure", action="store_true", help="do not verify the TLS certificate (wss://)"
    )


def _add_serve(commands: argparse._SubParsersAction[_Parser]) -> None:
    add_serve_options(
        commands.add_parser(
            "serve",
            allow_abbrev=False,
            help="run the embedded backend",
            description="Run the embedded backend: a WebSocket speech-recognition server. "
            "Without a token it listens on loopback only.",
        ),
        refuse_token=_RefuseToken,
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transcript",
        type=Path,
        metavar="PATH",
        help="write the transcript to PATH.md and PATH.jsonl "
        "(default: a new file under $XDG_DATA_HOME/live-listener/transcripts)",
    )
    parser.add_argument(
        "--log-json", type=Path, metavar="PATH", help="JSON-lines log file (- for stderr)"
    )
    parser.add_argument("--plain", action="store_true", help="plain lines instead of the live view")


def read_token(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Secret | None:
    """The token from the environment or a prompt — never from the command line."""
    env = os.environ if environ is None else environ
    if args.ask_token:
        if not sys.stdin.isatty():
            raise ExitError(
                ExitCode.USAGE,
                "--ask-token needs a terminal; put the token in an environment variable "
                "and pass --token-env VAR",
            )
        typed = getpass.getpass("token: ").strip()
        return Secret(typed) if typed else None
    if args.token_env:
        value = env.get(args.token_env, "").strip()
        if not value:
            raise ExitError(
                ExitCode.BAD_CONFIG,
                f"the environment variable {args.token_env} (--token-env) is not set or empty",
            )
        return Secret(value)
    value = env.get(TOKEN_ENV, "").strip()
    return Secret(value) if value else None


def _finish(outcome: Outcome) -> int:
    line = failure_line(outcome.report)
    if line is not None:
        print(line, file=sys.stderr, flush=True)
    return outcome.exit_code


def need_recogniser(asr: str) -> None:
    """The embedded recogniser comes with the `backend` extra: say how to get it."""
    if asr == "pocketsphinx" and importlib.util.find_spec("pocketsphinx") is None:
        raise ExitError(
            ExitCode.BAD_CONFIG,
            "the embedded backend's recogniser (pocketsphinx) is not installed: "
            "pip install 'live-listener[backend]' (or pass --asr none to run without it)",
        )


def _demo(args: argparse.Namespace) -> int:
    need_recogniser(args.asr)
    options = DemoOptions(
        file=args.file,
        outage=0.0 if args.no_outage else args.outage,
        asr=args.asr,
        transcript=args.transcript,
        live=False if args.plain else None,
    )
    # the standard loop: the demo's in-process chaos proxy resets every connection on uvloop
    return _finish(asyncio.run(run_demo(options)))


def _sources(args: argparse.Namespace) -> tuple[SourceSpec, ...]:
    """--source flags, else LIVE_LISTENER_SOURCE (comma-separated), else the microphone."""
    if args.source:
        return tuple(args.source)
    listed = [part.strip() for part in os.environ.get("LIVE_LISTENER_SOURCE", "").split(",")]
    try:
        return tuple(parse_source(part) for part in listed if part) or (SourceSpec("mic"),)
    except ValueError as exc:
        raise ExitError(ExitCode.USAGE, f"LIVE_LISTENER_SOURCE: {exc}") from exc


def listen_options(args: argparse.Namespace) -> ListenOptions:
    """What `listen` was asked to do, from its parsed arguments."""
    return ListenOptions(
        url=args.url,
        token=read_token(args),
        sources=_sources(args),
        speed=args.speed,
        events=sys.stdout if args.events == "jsonl" else None,
        device=args.device,
        protocol=args.protocol,
        transcript=args.transcript,
        duration=args.duration,
        heartbeat=args.heartbeat,
        max_attempts=args.max_attempts,
        give_up_after=args.give_up_after,
        stop_timeout=args.stop_timeout,
        buffer_seconds=args.buffer_seconds,
        flow_window=args.flow_window,
        verify_tls=not args.insecure,
        live=False if args.plain else None,
    )


def _listen(args: argparse.Namespace) -> int:
    options = listen_options(args)
    events = options.events
    return _finish(event_loop.run(listen(options, sys.stderr if events is not None else None)))


def _devices() -> int:
    try:
        devices = list_devices()
    except AudioDeviceError as exc:
        raise ExitError(ExitCode.BAD_CONFIG, str(exc)) from exc
    if not devices:
        raise ExitError(ExitCode.BAD_CONFIG, NO_DEVICES)
    for device in devices:
        print(device.describe())
    print("(* marks the default; pick one with --device NAME or --device INDEX)")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("demo", "listen", "devices"):
            _logs(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "listen":
            return _listen(args)
        if args.command == "devices":
            return _devices()
        if args.command == "serve":
            need_recogniser(args.asr)
            return run_serve(args)
    except ExitError as exc:
        print(f"live-listener: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return ExitCode.USAGE


def _logs(args: argparse.Namespace) -> None:
    """Library logs stay off the terminal (the live view owns it); --log-json keeps them."""
    logger.remove()
    if getattr(args, "log_json", None) is not None:
        try:
            log_sink(sys.stderr if str(args.log_json) == "-" else args.log_json)
        except OSError as exc:
            raise ExitError(
                ExitCode.BAD_CONFIG,
                f"cannot write the log {args.log_json} ({exc.strerror}); "
                "pass --log-json with a writable path, or - for stderr",
            ) from exc
