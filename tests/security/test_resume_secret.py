"""The client keeps the session's resume secret to itself: it presents it on resume (and
resumes), and it appears in no log line — raw loguru records included — nor in the report."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loguru import logger

from backend.asr import NullRecognizer
from backend.config import BackendConfig
from backend.server import free_port, start_backend
from backend.store import Opened, SessionStore
from pipeline.session import Session
from pipeline.sources import from_samples
from sinks.log import log_sink
from tests.integration.test_session import chirp, fast
from tests.tokens import TOKEN


class TappedStore(SessionStore):
    """The real store, noting each resume secret it creates (the test's only way to know it:
    the backend keeps a digest, the client keeps it private)."""

    handed: list[str]

    def open(self, session_id: str, resume_secret: object, wants_resume: bool) -> Opened:
        opened = super().open(session_id, resume_secret, wants_resume)
        if opened.session.resume_secret is not None:
            self.handed = [*getattr(self, "handed", []), opened.session.resume_secret]
        return opened


async def test_the_resume_secret_is_presented_and_never_logged(tmp_path: Path) -> None:
    config = BackendConfig(token=TOKEN, record_dir=tmp_path / "rec")
    store = TappedStore(config, NullRecognizer)
    port = free_port()
    raw: list[str] = []
    handlers = [
        log_sink(tmp_path / "sink.jsonl", level="DEBUG"),
        logger.add(raw.append, level="DEBUG", format="{message} | {extra} | {exception}"),
    ]
    try:
        first = await start_backend(config, port=port, store=store)
        session = Session(fast(f"ws://127.0.0.1:{port}", token=TOKEN), from_samples(chirp(2.0)))
        running = asyncio.get_running_loop().create_task(session.run())
        await asyncio.sleep(0.5)  # mid-stream (2 s of audio in real time)
        await first.runner.cleanup()  # graceful: the shared store keeps the session
        second = await start_backend(config, port=port, store=store)
        try:
            report = await asyncio.wait_for(running, 30)
        finally:
            await second.runner.cleanup()
            await store.close()
    finally:
        for handler in handlers:
            logger.remove(handler)

    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    assert report.resumes == 1 and report.resets == 0  # the secret was presented, and right
    assert len(store.handed) == 1  # one session: resumed, not started afresh
    value = store.handed[0]
    logged = [*raw, (tmp_path / "sink.jsonl").read_text()]
    assert len(raw) > 10 and not [line for line in logged if value in line]
    assert value not in repr(report) and value not in "\n".join(report.lines())
