"""The capture-overhead benchmark runs end to end (a few seconds) and reports its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"^summary: capture->socket (?P<mic>[\d.]+) CPU s per audio s .*?"
    r"(?P<ratio>[\d.]+)x the plain loop \((?P<plain>[\d.]+)\), "
    r"(?P<mic_ratio>[\d.]+)x the plain mic loop \((?P<plain_mic>[\d.]+)\); "
    r"of it the device's threads (?P<device>[\d.]+) ",
    re.MULTILINE,
)


def test_capture_overhead_smoke_run_prints_its_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "capture_overhead.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = SUMMARY.search(done.stdout)
    assert found, done.stdout
    mic = float(found["mic"])
    assert mic > 0
    # each printed ratio agrees with its figures, up to their rounding (4 decimals, the
    # ratio 2): against the loop that only sends, and the one that also captures
    half, half_ratio = 0.00005, 0.005
    for ratio, baseline in (("ratio", "plain"), ("mic_ratio", "plain_mic")):
        base = float(found[baseline])
        assert base > 0
        low, high = (mic - half) / (base + half), (mic + half) / (base - half)
        assert low - half_ratio <= float(found[ratio]) <= high + half_ratio
    assert "pipeline (file)" in done.stdout and "plain mic loop" in done.stdout
    # PortAudio's threads are part of the process: a share of the mic path, never more
    assert 0 <= float(found["device"]) <= mic
