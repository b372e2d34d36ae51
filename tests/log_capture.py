"""Every log line of the test run, captured to files and scanned for the suite's tokens.

A session-wide fixture turns the library's logs on at DEBUG and writes them three ways:
through the library's own sink (`sinks.log.log_sink`, redacted JSON lines), as raw loguru
records (unredacted, tracebacks with variable values as loguru's default handler shows
them), and every stdlib `logging` record at INFO and above (aiohttp's access and server
logs). When the run ends, a token from tests/tokens.py found in any of them fails the run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from sinks.log import log_sink
from tests.tokens import ALL_TOKENS

_FILES = pytest.StashKey[list[Path]]()
_LOST = pytest.StashKey[bool]()  # a capture handler was removed during the run
RAW_FORMAT = "{time} {level} {name}:{function}:{line} {message} | {extra}"


def leaks(paths: list[Path], tokens: dict[str, str] = ALL_TOKENS) -> list[str]:
    """`file:line: TOKEN_NAME` for every line of `paths` holding one of `tokens`."""
    found: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                found.extend(
                    f"{path.name}:{number}: {name}"
                    for name, value in tokens.items()
                    if value in line
                )
    return found


@pytest.fixture(scope="session", autouse=True)
def suite_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Path]]:
    folder = tmp_path_factory.mktemp("suite-log")
    sink_path, raw_path, std_path = (
        folder / "sink.jsonl",
        folder / "raw-loguru.log",
        folder / "stdlib.log",
    )
    request.config.stash[_FILES] = [sink_path, raw_path, std_path]
    try:
        logger.remove(0)  # loguru's default stderr handler: the logs go to the files instead
        default_removed = True
    except ValueError:
        default_removed = False
    sink = log_sink(sink_path, level="DEBUG")
    raw = logger.add(
        raw_path, level="DEBUG", format=RAW_FORMAT, backtrace=True, diagnose=True, catch=True
    )
    handler = logging.FileHandler(std_path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(previous_level, logging.INFO) or logging.INFO)
    try:
        yield request.config.stash[_FILES]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
        for handler_id in (raw, sink):
            try:
                logger.remove(handler_id)
            except ValueError:  # someone called logger.remove(): later lines went unseen
                request.config.stash[_LOST] = True
        if default_removed:
            logger.add(sys.stderr)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a token of tests/tokens.py reached any captured log line."""
    paths = session.config.stash.get(_FILES, [])
    found = leaks(paths)
    lost = session.config.stash.get(_LOST, False)
    if not found and not lost:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["a test token reached the logs:", *found[:20]] if found else []
    if lost:
        lines.append(
            "the log capture was removed during the run (logger.remove()): not all "
            "log lines were scanned"
        )
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
