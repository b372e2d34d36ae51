"""When the backend has no recogniser for some audio, the state, the live view's status
line (and so the plain lines) and the report say so."""

from __future__ import annotations

from functools import reduce as fold

from pipeline.report import build_report
from pipeline.state import AppState, reduce
from pipeline.status import BackendStatus, Connected, Connecting, Started, Stopped, Streaming
from sinks.console import phase_key, status_line

WHY = "all 4 speech recognisers are in use; this source is recorded but not transcribed"


def test_no_recogniser_reaches_the_state_the_status_line_and_the_report() -> None:
    streaming = fold(
        reduce,
        [
            Started(at=0.0, session_id="s", attempt_id="a"),
            Connecting(at=0.1, connection_id="c"),
            Connected(at=0.2, connection_id="c"),
            Streaming(at=0.3, connection_id="c", protocol="0.3", resumed=None),
        ],
        AppState(),
    )
    told = reduce(streaming, BackendStatus(at=0.4, state="no_asr_provider", message=WHY))
    assert (streaming.untranscribed, told.untranscribed) == ("", WHY)
    assert status_line(told) == f"streaming (protocol v0.3); not transcribed: {WHY}"
    assert phase_key(told) != phase_key(streaming)  # plain output prints a line for it
    # a later, unrelated status does not make it forgotten
    later = reduce(told, BackendStatus(at=0.5, state="warning", message="behind"))
    report = build_report(reduce(later, Stopped(at=1.0)), (), None)
    assert report.untranscribed == WHY and report.to_dict()["untranscribed"] == WHY
    assert report.lines()[-1] == f"not transcribed: {WHY}"
    assert build_report(reduce(streaming, Stopped(at=1.0)), (), None).untranscribed is None
