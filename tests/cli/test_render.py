"""The pure parts of the command: rendering the state, transcript formats, exit codes,
sources and tokens — functions of their inputs, checked without a terminal or a socket."""

from __future__ import annotations

import argparse
import functools
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cli import build_parser, read_token
from pipeline.cli.exit_codes import ExitCode, ExitError, failure_line, for_report
from pipeline.cli.foreground import closing_lines
from pipeline.cli.listen import SourceSpec, parse_device, parse_source
from pipeline.errors import FailureKind
from pipeline.outbox import SourceCounts
from pipeline.protocol import AsrFinal
from pipeline.report import SessionReport, build_report
from pipeline.state import AppState, reduce
from pipeline.status import (
    AudioCounts,
    AudioLevel,
    Connecting,
    Failed,
    Finalizing,
    Reconnecting,
    Started,
    StatusEvent,
    Stopped,
    Streaming,
    Transcribed,
)
from sinks.console import (
    ConsoleView,
    clock_time,
    level_bar,
    link_text,
    retry_text,
    status_line,
    transcript_line,
    view_text,
)
from sinks.transcript import (
    default_transcript_path,
    json_report,
    json_segment,
    markdown_header,
    markdown_segment,
    transcript_paths,
)

T0 = 1000.0


def state_after(*events: StatusEvent) -> AppState:
    return functools.reduce(reduce, events, AppState())


STREAMING: tuple[StatusEvent, ...] = (
    Started(at=T0, session_id="sid-1234567890", attempt_id="a"),
    Connecting(at=T0 + 0.1, connection_id="c1"),
    Streaming(at=T0 + 0.2, connection_id="c1", protocol="0.3", resumed=None),
    AudioCounts(
        at=T0 + 5,
        counts={"system": SourceCounts(captured=250, sent=248, acked=240, buffered=2)},
    ),
    AudioLevel(at=T0 + 5, source="system", rms_dbfs=-30.0, peak_dbfs=-12.5),
)
OUTAGE = (
    *STREAMING,
    Reconnecting(at=T0 + 6, attempt=1, delay=0.5, cause="connection lost (close 1006)"),
    Connecting(at=T0 + 6.5, connection_id="c2"),
    Reconnecting(at=T0 + 7, attempt=2, delay=1.5, cause="cannot connect: refused"),
)


def final(text: str, t0: float, source: str = "system") -> AsrFinal:
    return AsrFinal(text=text, t0=t0, t1=t0 + 2.0, source=source, confidence=0.9)


def test_status_lines_name_the_phase_and_what_it_waits_for() -> None:
    assert status_line(state_after(*STREAMING)) == "streaming (protocol v0.3)"
    assert status_line(state_after(*OUTAGE)) == (
        "reconnecting: attempt 2 in 1.5 s (cannot connect: refused)"
    )
    assert status_line(state_after(*OUTAGE[:-1])) == "connecting (attempt 1)"
    resumed = state_after(
        *OUTAGE, Streaming(at=T0 + 9, connection_id="c3", protocol="0.3", resumed=True)
    )
    assert status_line(resumed) == "streaming (protocol v0.3, resumed)"
    assert status_line(state_after(*STREAMING, Finalizing(at=T0 + 9))) == (
        "finishing (protocol v0.3)"
    )
    failed = state_after(
        *STREAMING, Failed(at=T0 + 9, reason="unauthorized", kind=FailureKind.ERROR)
    )
    assert status_line(failed) == "failed: unauthorized"


def test_the_retry_countdown_runs_down_with_the_clock() -> None:
    state = state_after(*OUTAGE)  # attempt 2 due at T0 + 8.5
    assert retry_text(state, T0 + 7.0) == "attempt 2 in 1.5 s (cannot connect: refused)"
    assert retry_text(state, T0 + 8.0) == "attempt 2 in 0.5 s (cannot connect: refused)"
    assert retry_text(state, T0 + 9.0) == "attempt 2 in 0.0 s (cannot connect: refused)"
    assert retry_text(state_after(*STREAMING), T0 + 7.0) is None


def test_downtime_grows_during_an_outage_and_stops_when_it_ends() -> None:
    down = state_after(*OUTAGE)  # down since T0 + 6
    assert link_text(down, T0 + 8.0).endswith("downtime 2.0 s")
    assert link_text(down, T0 + 9.0).endswith("downtime 3.0 s")
    back = state_after(
        *OUTAGE, Streaming(at=T0 + 9, connection_id="c3", protocol="0.3", resumed=True)
    )
    assert link_text(back, T0 + 20.0) == (
        "20.0 s · reconnects 1 (resumed 1, reset 0) · downtime 3.0 s"
    )
    ended = state_after(*STREAMING, Stopped(at=T0 + 12))
    assert link_text(ended, T0 + 99.0).startswith("12.0 s ·")


@pytest.mark.parametrize(
    ("dbfs", "bar"),
    [(0.0, "█" * 10), (-30.0, "█" * 5 + "·" * 5), (-60.0, "·" * 10), (-120.0, "·" * 10)],
)
def test_the_level_bar_fills_from_minus_60_dbfs_to_full_scale(dbfs: float, bar: str) -> None:
    assert level_bar(dbfs, width=10) == bar


def test_clock_times_and_transcript_lines() -> None:
    assert clock_time(0.0) == "00:00.0"
    assert clock_time(75.3) == "01:15.3"
    assert clock_time(3725.0) == "1:02:05.0"
    assert transcript_line(final("hello there", 12.34)) == "[00:12.3] hello there"
    assert transcript_line(final("hi", 1.0, "mic"), with_source=True) == "[00:01.0] mic: hi"


def test_the_live_view_shows_phase_retry_level_counts_and_transcript() -> None:
    state = state_after(
        *OUTAGE, Transcribed(at=T0 + 7, source="system", text="and so", partial=True)
    )
    view = ConsoleView(state, (final("the weather is nice", 0.7),), title="live-listener demo")
    lines = view_text(view, T0 + 7.5)
    text = "\n".join(lines)
    assert lines[0] == "live-listener demo"
    assert lines[1].split() == ["phase", "reconnecting"]
    assert "retry       attempt 2 in 1.0 s (cannot connect: refused)" in text
    assert "level       system " + "█" * 12 + "·" * 12 + "  -30.0 dBFS (peak -12.5)" in text
    assert "frames      captured 250 · sent 248 · acked 240 · buffered 2 · dropped 0" in text
    assert "transcript  [00:00.7] the weather is nice" in text
    assert "… and so" in text
    assert view_text(view, T0 + 8.0) != lines  # the countdown moved


def test_the_live_view_labels_sources_only_when_there_are_several() -> None:
    both = (final("from the room", 1.0, "mic"), final("from the call", 2.0, "system"))
    text = "\n".join(view_text(ConsoleView(state_after(*STREAMING), both), T0 + 6))
    assert "[00:01.0] mic: from the room" in text and "[00:02.0] system: from the call" in text
    empty = "\n".join(view_text(ConsoleView(state_after(*STREAMING)), T0 + 6))
    assert "transcript  (nothing yet)" in empty


# -- transcript files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "markdown", "jsonl"),
    [
        ("talk.md", "talk.md", "talk.jsonl"),
        ("talk.jsonl", "talk.md", "talk.jsonl"),
        ("talk", "talk.md", "talk.jsonl"),
        ("talk.v2", "talk.v2.md", "talk.v2.jsonl"),
    ],
)
def test_one_path_names_both_transcript_files(given: str, markdown: str, jsonl: str) -> None:
    paths = transcript_paths(Path("/x") / given)
    assert (paths.markdown, paths.jsonl) == (Path("/x") / markdown, Path("/x") / jsonl)


def test_default_transcripts_go_under_the_data_home() -> None:
    started = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    xdg = default_transcript_path("abcdef123456", started, {"XDG_DATA_HOME": "/data"})
    assert xdg == Path("/data/live-listener/transcripts/20240506-070809-abcdef12")
    home = default_transcript_path("abcdef123456", started, {"HOME": "/home/u"})
    assert home.parent == Path("/home/u/.local/share/live-listener/transcripts")


def test_segments_as_markdown_and_json_lines() -> None:
    segment = AsrFinal(
        text="the weather is nice", t0=62.5, t1=65.0, source="mic", segment_id="mic-3"
    )
    assert markdown_segment(segment) == "**[01:02.5 → 01:05.0]** _mic_ the weather is nice\n\n"
    record = json.loads(json_segment("sid", segment))
    assert record == {
        "type": "final",
        "session_id": "sid",
        "source": "mic",
        "t0": 62.5,
        "t1": 65.0,
        "text": "the weather is nice",
        "confidence": None,
        "segment_id": "mic-3",
    }
    header = markdown_header("sid", datetime(2024, 1, 2, 3, 4, 5), "ws://h/ws", "file a.wav")
    assert header.startswith("# Transcript 2024-01-02 03:04:05\n")
    assert "- session: `sid`" in header and "- audio: file a.wav" in header


# -- exit codes ----------------------------------------------------------------------------


def report_of(*events: StatusEvent, stop_requested: bool = False) -> SessionReport:
    return build_report(state_after(*events), (), None, stop_requested=stop_requested)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("unauthorized", ExitCode.UNAUTHORIZED),
        ("bad_config", ExitCode.BAD_CONFIG),
        ("tls", ExitCode.BAD_CONFIG),
        ("audio", ExitCode.BAD_CONFIG),
        ("gave_up", ExitCode.GAVE_UP),
        ("error", ExitCode.ERROR),
    ],
)
def test_each_failure_has_its_exit_code(kind: str, code: ExitCode) -> None:
    report = report_of(
        *STREAMING, Failed(at=T0 + 9, reason=f"because {kind}", kind=FailureKind(kind))
    )
    assert for_report(report) == code
    line = failure_line(report)
    assert line is not None and line.startswith(f"live-listener: because {kind}")
    assert "\n" not in line


def test_the_exit_codes_of_a_finished_and_an_interrupted_session() -> None:
    done = report_of(*STREAMING, Stopped(at=T0 + 9))
    assert int(for_report(done)) == 0 and failure_line(done) is None
    stopped = report_of(*STREAMING, Stopped(at=T0 + 9), stop_requested=True)
    assert int(for_report(stopped, signalled=signal.SIGINT)) == 130
    assert int(for_report(stopped, signalled=signal.SIGTERM)) == 143
    codes = {code.name: int(code) for code in ExitCode}
    assert codes == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "UNAUTHORIZED": 3,
        "BAD_CONFIG": 4,
        "GAVE_UP": 5,
        "INTERRUPTED": 130,
        "TERMINATED": 143,
    }


def test_the_report_line_says_whether_the_backend_confirmed_the_end() -> None:
    record = json.loads(json_report(report_of(*STREAMING, Stopped(at=T0 + 9))))
    assert record["type"] == "report" and record["outcome"] == "completed"
    assert record["final_summary"] is False
    assert record["frames_lost"] == 2  # the two frames still buffered at the end


# -- sources and tokens --------------------------------------------------------------------


def test_sources_parse_and_name_themselves() -> None:
    assert parse_source("mic") == SourceSpec("mic")
    assert parse_source("system").label == "system"
    assert parse_source("mic").label == "mic"
    assert parse_source("file:a b.wav") == SourceSpec("file", Path("a b.wav"))
    assert parse_source("tone").describe() == "a 440 Hz test tone"
    assert parse_device("3") == 3 and parse_device("USB Mic") == "USB Mic"
    assert parse_device(None) is None
    for bad in ("speaker", "file:", "mic:1"):
        with pytest.raises(ValueError, match="mic, system, file:PATH or tone"):
            parse_source(bad)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for argv in (
        ["listen", "--source", "speaker"],
        ["listen", "--token", "s3cret"],  # tokens never travel in argv
        ["listen", "--max-attempts", "0"],
        ["demo", "--outage", "-1"],
        ["nothing"],
    ):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(argv)
        assert stopped.value.code == ExitCode.USAGE, argv
    err = capsys.readouterr().err
    assert "unknown source 'speaker'" in err
    assert "never taken from the command line" in err and "s3cret" not in err


def _token_args(token_env: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(ask_token=False, token_env=token_env)


def test_tokens_come_from_the_environment() -> None:
    named = read_token(_token_args("MINE"), {"MINE": " abc123 ", "LIVE_LISTENER_TOKEN": "x"})
    assert named is not None and named.reveal() == "abc123" and "abc123" not in repr(named)
    fallback = read_token(_token_args(), {"LIVE_LISTENER_TOKEN": "def456"})
    assert fallback is not None and fallback.reveal() == "def456"
    assert read_token(_token_args(), {}) is None
    with pytest.raises(ExitError, match="MINE") as missing:
        read_token(_token_args("MINE"), {"MINE": ""})
    assert missing.value.code == ExitCode.BAD_CONFIG


def test_the_closing_lines_end_with_where_the_transcript_is() -> None:
    report = report_of(*STREAMING, Stopped(at=T0 + 9))
    paths = transcript_paths("/t/talk")
    lines = closing_lines(report, paths, 3)
    assert lines[0] == "" and lines[1:-1] == report.lines()
    assert lines[-1] == "saved        /t/talk.md (3 segments; JSON lines: talk.jsonl)"
    full = closing_lines(report, paths, 3, OSError(28, "No space left on device"))
    assert full[-1].endswith("; NOT complete, writing failed: [Errno 28] No space left on device")
