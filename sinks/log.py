"""Structured logs: loguru records as JSON lines, correlation ids bound, secrets redacted.

handler = log_sink("session.jsonl")      # or log_sink(sys.stderr)
log_status(session)                       # one line per status event
"""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from loguru import logger
from reactivex import abc

from pipeline.redaction import redact
from pipeline.status import AudioCounts, AudioLevel, StatusEvent

if TYPE_CHECKING:
    from loguru import Message

    from pipeline.session import Session

PACKAGES = ("pipeline", "operators", "sinks", "backend")
_SECRET_KEYS = frozenset({"authorization", "token", "x-echopanel-token", "password"})


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def json_line(record: dict[str, Any]) -> str:
    """One log record as a redacted JSON object."""
    entry: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    for key, value in record["extra"].items():
        entry[key] = "********" if key.lower() in _SECRET_KEYS else _plain(value)
    if record["exception"] is not None:
        error = record["exception"]
        entry["exception"] = "".join(
            traceback.format_exception(error.type, error.value, error.traceback)
        )
    return redact(json.dumps(entry, default=str, ensure_ascii=False))


class _JsonLines:
    """A loguru sink writing JSON lines to a stream it may own."""

    def __init__(self, stream: IO[str], owned: bool) -> None:
        self.stream, self.owned = stream, owned

    def write(self, message: Message) -> None:
        self.stream.write(json_line(dict(message.record)) + "\n")

    def flush(self) -> None:
        self.stream.flush()

    def stop(self) -> None:
        if self.owned:
            self.stream.close()


def log_sink(target: str | Path | IO[str] = sys.stderr, *, level: str = "INFO") -> int:
    """Enable the library's logs and write them to `target` as JSON lines.

    Returns the loguru handler id (`logger.remove(id)` to stop).
    """
    for package in PACKAGES:
        logger.enable(package)
    if isinstance(target, str | Path):
        stream = Path(target).open("a", encoding="utf-8")  # noqa: SIM115 - loguru closes it
        sink = _JsonLines(stream, owned=True)
    else:
        sink = _JsonLines(target, owned=False)
    return logger.add(sink, level=level, format="{message}", enqueue=False, catch=True)


def describe(event: StatusEvent) -> dict[str, Any]:
    fields = {k: _plain(v) for k, v in dataclasses.asdict(event).items() if k != "at"}
    return {"event": type(event).__name__, **fields}


def log_status(session: Session) -> abc.DisposableBase:
    """Log every status event of `session` as one line, bound to its ids.

    Audio counts and levels change many times a second, so they go at DEBUG.
    """
    bound = logger.bind(session_id=session.ids.session_id, attempt_id=session.ids.attempt_id)
    connection: dict[str, str] = {}

    def on_event(event: StatusEvent) -> None:
        cid = getattr(event, "connection_id", None)
        if isinstance(cid, str):
            connection["id"] = cid
        level = "DEBUG" if isinstance(event, AudioCounts | AudioLevel) else "INFO"
        fields = {"connection_id": connection.get("id"), **describe(event)}
        bound.bind(**fields).log(level, "{}", type(event).__name__)

    return session.status.subscribe(on_event)
