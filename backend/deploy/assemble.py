"""One WAV of a session's source from the segments the instances recorded.

    python -m backend.deploy.assemble --session ID [--source system] -o out.wav DIR...

DIR: each instance's `--record-dir` (or the one they share). Exit 1 if the segments
leave a gap (bytes no instance recorded).
"""

from __future__ import annotations

import argparse
import sys
import wave
from pathlib import Path

from backend.recording import RecordingGap, assemble
from pipeline.audio import SAMPLE_RATE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="record dirs of the instances")
    parser.add_argument("--session", required=True, help="the session id")
    parser.add_argument("--source", default="system", help="the source (default: system)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the WAV to write")
    args = parser.parse_args(argv)
    try:
        pcm = assemble(args.dirs, args.session, args.source)
    except RecordingGap as exc:
        print(f"error: recording has a gap: {exc}", file=sys.stderr)
        return 1
    with wave.open(str(args.output), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    print(f"{args.output}: {len(pcm) / (2 * SAMPLE_RATE):.2f} s of {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
