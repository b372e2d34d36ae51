"""The transcript sink on real files: each final is on disk the moment it arrives."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest
from reactivex.subject import Subject

from pipeline.protocol import AsrFinal, AsrPartial, ServerEvent
from pipeline.report import build_report
from pipeline.state import AppState
from sinks.transcript import TranscriptSink


def sink_on(path: Path, events: Subject[ServerEvent], session_id: str = "sid-1") -> TranscriptSink:
    return TranscriptSink(
        path, session_id=session_id, events=events, backend="ws://b/ws", audio="a tone"
    )


def test_each_final_is_written_through_before_the_session_ends(tmp_path: Path) -> None:
    events: Subject[ServerEvent] = Subject()
    sink = sink_on(tmp_path / "out" / "talk.md", events)
    sink.open()
    markdown, jsonl = sink.paths.markdown, sink.paths.jsonl
    assert markdown.read_text().startswith("# Transcript")
    events.on_next(AsrPartial(text="the wea", t0=0.5, t1=1.0))
    events.on_next(AsrFinal(text="the weather is nice", t0=0.5, t1=2.0))
    # read through other handles, with the sink's files still open: nothing is held back
    assert "the weather is nice" in markdown.read_text()
    assert "the wea\n" not in markdown.read_text()  # partials are not transcript
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["text"] for r in records] == ["the weather is nice"]
    events.on_next(AsrFinal(text="and sunny", t0=3.0, t1=4.0, source="mic"))
    assert "_mic_ and sunny" in markdown.read_text()
    sink.close(build_report(AppState(session_id="sid-1"), (), None))
    events.on_next(AsrFinal(text="too late", t0=5.0, t1=6.0))
    assert "too late" not in markdown.read_text()
    assert markdown.read_text().rstrip().endswith("```")  # the summary block
    last = json.loads(jsonl.read_text().splitlines()[-1])
    assert last["type"] == "report" and last["session_id"] == "sid-1"
    assert sink.segments == 2
    sink.close()  # idempotent


def test_a_second_session_on_the_same_path_appends(tmp_path: Path) -> None:
    for session_id, text in (("first", "one"), ("second", "two")):
        events: Subject[ServerEvent] = Subject()
        with sink_on(tmp_path / "talk", events, session_id):
            events.on_next(AsrFinal(text=text, t0=0.0, t1=1.0))
    markdown = (tmp_path / "talk.md").read_text()
    assert markdown.count("# Transcript") == 2 and markdown.index("one") < markdown.index("two")
    sessions = [json.loads(line)["session_id"] for line in (tmp_path / "talk.jsonl").open()]
    assert sessions == ["first", "second"]


def test_an_unwritable_place_fails_at_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match=re.escape(str(blocker))):
        sink_on(blocker / "talk", Subject()).open()


def test_a_full_disk_stops_the_files_but_not_the_session(tmp_path: Path) -> None:
    (tmp_path / "talk.jsonl").symlink_to("/dev/full")  # every flush: no space left
    events: Subject[ServerEvent] = Subject()
    sink = sink_on(tmp_path / "talk", events)
    sink.open()
    events.on_next(AsrFinal(text="kept in markdown", t0=0.0, t1=1.0))  # does not raise
    events.on_next(AsrFinal(text="never written", t0=1.0, t1=2.0))
    sink.close(build_report(AppState(session_id="sid-1"), (), None))
    assert isinstance(sink.error, OSError) and sink.error.errno == errno.ENOSPC
    markdown = (tmp_path / "talk.md").read_text()
    assert "kept in markdown" in markdown and "never written" not in markdown
