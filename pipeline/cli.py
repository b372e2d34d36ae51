"""The `live-listener` command: demo, serve."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from backend.asr import ASR_KINDS, DEFAULT_DECODERS
from backend.config import BackendConfig
from backend.server import serve
from pipeline.demo import DemoOptions, run_demo

EXIT_OK, EXIT_USAGE, EXIT_UNAUTHORIZED, EXIT_BAD_CONFIG, EXIT_GAVE_UP = 0, 2, 3, 4, 5
EXIT_INTERRUPTED = 130


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="live-listener",
        description="Stream live audio to a speech-recognition backend; survive faults.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the whole job on embedded defaults")
    demo.add_argument("--file", type=Path, help="a WAV file instead of the bundled recording")
    demo.add_argument("--outage", type=float, default=3.0, help="seconds of outage (default 3)")
    demo.add_argument("--no-outage", action="store_true", help="no injected outage")
    demo.add_argument(
        "--asr",
        choices=ASR_KINDS,
        default="pocketsphinx",
        help="recogniser of the embedded backend",
    )

    srv = commands.add_parser("serve", help="run the embedded backend")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8765)
    srv.add_argument("--token-env", help="environment variable holding the required token")
    srv.add_argument("--record-dir", type=Path, help="write received audio here, per session")
    srv.add_argument("--protocol", choices=("0.2", "0.3"), default="0.3")
    srv.add_argument(
        "--asr",
        choices=ASR_KINDS,
        default="pocketsphinx",
        help="speech recogniser: pocketsphinx (offline English) or none (default pocketsphinx)",
    )
    srv.add_argument(
        "--asr-decoders",
        type=_at_least_one,
        default=DEFAULT_DECODERS,
        help=f"recognisers alive at once, ~125 MB each (default {DEFAULT_DECODERS}); "
        "a source beyond them is recorded but not transcribed",
    )
    srv.add_argument("--resume-window", type=float, default=120.0)
    srv.add_argument("--max-sessions", type=int, default=16)
    limits = BackendConfig
    srv.add_argument(
        "--max-message-bytes",
        type=_at_least_one,
        default=limits.max_message_bytes,
        help=f"largest WebSocket message accepted (default {limits.max_message_bytes})",
    )
    srv.add_argument(
        "--max-message-rate",
        type=float,
        default=limits.max_message_rate,
        help="messages/s per connection; above it reading slows "
        f"(default {limits.max_message_rate:g}, bursts of {limits.message_burst})",
    )
    srv.add_argument(
        "--max-invalid-rate",
        type=float,
        default=limits.max_invalid_rate,
        help="invalid messages/s per connection before it is closed "
        f"(default {limits.max_invalid_rate:g}, bursts of {limits.invalid_burst})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            options = DemoOptions(
                file=args.file, outage=0.0 if args.no_outage else args.outage, asr=args.asr
            )
            report = asyncio.run(run_demo(options))
            return EXIT_OK if report.outcome == "completed" else EXIT_GAVE_UP
        if args.command == "serve":
            import os

            token = os.environ.get(args.token_env) if args.token_env else None
            serve(
                BackendConfig(
                    token=token,
                    protocol=args.protocol,
                    asr=args.asr,
                    asr_decoders=args.asr_decoders,
                    record_dir=args.record_dir,
                    resume_window=args.resume_window,
                    max_sessions=args.max_sessions,
                    max_message_bytes=args.max_message_bytes,
                    max_message_rate=args.max_message_rate,
                    max_invalid_rate=args.max_invalid_rate,
                ),
                host=args.host,
                port=args.port,
            )
            return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
