"""benchmarks/asr_rtf.py runs and reports (figures are for reading, not asserted on)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "asr_rtf.py"


def figure(pattern: str, line: str) -> float:
    found = re.search(pattern, line)
    assert found is not None, f"no {pattern!r} in {line!r}"
    return float(found.group(1))


def test_the_asr_benchmark_smoke_run_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--smoke"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    summary = lines[-1]
    assert summary.startswith("summary: pocketsphinx backend RTF ")
    assert figure(r"RTF ([\d.]+) wall", summary) > 0
    assert figure(r"bare decoder ([\d.]+) CPU", summary) > 0
    assert figure(r"; (\d+) MB per session", summary) > 0  # a decoder process was running
    assert any(line.startswith("loop lag  decoding in a process") for line in lines)
    assert any("0 frames dropped" in line for line in lines)
