"""Measuring on a noisy shared machine: alternating A/B runs, medians, percentiles, CPU, RSS.

Every benchmark reports a figure next to a baseline measured in the same run. Arms run
in rotating order (A B C, B C A, C A B, ...) so a neighbour's burst of load hits each
arm alike, and a figure is the median over rounds with its spread beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
from loguru import logger

from pipeline.audio import DEFAULT_FRAME_MS
from pipeline.event_loop import loop_factory

FRAME_S = DEFAULT_FRAME_MS / 1000  # the default frame: 20 ms
MB = 1024 * 1024

_T = TypeVar("_T")


def rss(pid: int | None = None) -> int:
    """Resident memory of a process (this one by default), in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default), all threads."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, `q` in [0, 100] (p99 of 100 values is the 99th smallest+1)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how far the repetitions of one figure disagree."""
    middle = median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


async def alternate(
    arms: Mapping[str, Callable[[], Awaitable[_T]]], rounds: int
) -> dict[str, list[_T]]:
    """Run every arm once per round, rotating the order each round; results per arm."""
    names = list(arms)
    results: dict[str, list[_T]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(await arms[name]())
    return results


def quiet() -> None:
    """Drop loguru's default stderr handler: benchmarks time the code, not the terminal."""
    logger.remove()


def raise_fd_limit(needed: int) -> None:
    """Many sockets in one process: lift the soft open-files limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def machine() -> str:
    """What the figures came from: cores, CPU model, Python."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load avg {load}"


class Stopwatch:
    """Wall and CPU time of this process over a `with` block."""

    def __enter__(self) -> Stopwatch:
        self.wall = self.cpu = 0.0
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def summary(text: str) -> None:
    """The last line of every benchmark: one line, figures and ratios, parsed by the tests."""
    print(f"summary: {text}", flush=True)


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    """`--loop asyncio|uvloop`: the loop every arm runs on (default: the command line's)."""
    default = "uvloop" if loop_factory() is not None else "asyncio"
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default=default,
        help=f"event loop for every arm, baseline included (default here: {default})",
    )


def run_on(loop: str, main: Coroutine[Any, Any, _T]) -> _T:
    """Run `main` on the named loop (uvloop must be installed: the `fast` extra)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def loop_name() -> str:
    """The running loop: `uvloop` or `asyncio` (printed beside every figure)."""
    return "uvloop" if "uvloop" in type(asyncio.get_running_loop()).__module__ else "asyncio"
