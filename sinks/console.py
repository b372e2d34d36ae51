"""The session on a terminal: a live view that updates in place, or plain lines for logs.

On a terminal, a `rich` Live display shows the phase, the attempt and countdown to the
next retry, the audio level, the frame counts and the transcript as it arrives. Anywhere
else (a pipe, a CI log) the same session prints one line per phase change and one per
final segment — lines that read well in a log file.

Rendering is pure: `status_line`, `live_view` and their helpers are functions of the
state (and the clock, for countdowns); `ConsoleSink` only subscribes and writes.

    with ConsoleSink(session, title=url):
        report = await session.run()
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import IO, TYPE_CHECKING, cast

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from operators.clock import seconds_of
from pipeline.protocol import AsrFinal
from pipeline.state import AppState, Phase

if TYPE_CHECKING:
    from pipeline.session import Session

LEVEL_FLOOR_DBFS = -60.0  # the meter's empty end; full scale (0 dBFS) fills it
LEVEL_WIDTH = 24
TRANSCRIPT_LINES = 6  # finals the live view keeps on screen
REFRESH_S = 0.25

_PHASE_STYLE = {
    Phase.IDLE: "dim",
    Phase.CONNECTING: "cyan",
    Phase.STREAMING: "bold green",
    Phase.RECONNECTING: "bold yellow",
    Phase.FINALIZING: "cyan",
    Phase.STOPPED: "bold",
    Phase.FAILED: "bold red",
}


# -- pure rendering ----------------------------------------------------------------------


def phase_key(state: AppState) -> tuple[object, ...]:
    return (state.phase, state.attempt, state.connection_id, state.last_resume, state.untranscribed)


def status_line(state: AppState) -> str:
    """The state in one human line, e.g. "reconnecting: attempt 1 in 0.7 s (...)"."""
    match state.phase:
        case Phase.CONNECTING:
            return "connecting" + (f" (attempt {state.attempt})" if state.attempt else "")
        case Phase.STREAMING | Phase.FINALIZING if state.streaming_since is not None:
            how = f", {state.last_resume}" if state.last_resume and state.reconnects else ""
            word = "finishing" if state.phase is Phase.FINALIZING else "streaming"
            missing = f"; not transcribed: {state.untranscribed}" if state.untranscribed else ""
            return f"{word} (protocol v{state.protocol}{how}){missing}"
        case Phase.FINALIZING:
            return "finishing: audio ended, waiting to deliver the rest"
        case Phase.RECONNECTING:
            return (
                f"reconnecting: attempt {state.attempt} in {state.retry_delay or 0:.1f} s"
                f" ({state.cause})"
            )
        case Phase.STOPPED:
            return "stopped"
        case Phase.FAILED:
            return f"failed: {state.failure}"
    return state.phase.value


def clock_time(seconds: float) -> str:
    """Seconds into the audio as mm:ss.s (h:mm:ss.s past an hour)."""
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60.0)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60.0)
        return f"{hours:.0f}:{minutes:02.0f}:{rest:04.1f}"
    return f"{minutes:02.0f}:{rest:04.1f}"


def transcript_line(final: AsrFinal, *, with_source: bool = False) -> str:
    """A final segment as one line: "[00:12.3] the weather is nice"."""
    source = f" {final.source}:" if with_source else ""
    return f"[{clock_time(final.t0)}]{source} {final.text}"


def level_bar(dbfs: float, width: int = LEVEL_WIDTH) -> str:
    """A meter: `width` cells, empty at `LEVEL_FLOOR_DBFS` and below, full at 0 dBFS."""
    fraction = min(1.0, max(0.0, (dbfs - LEVEL_FLOOR_DBFS) / -LEVEL_FLOOR_DBFS))
    filled = round(fraction * width)
    return "█" * filled + "·" * (width - filled)


def retry_text(state: AppState, now: float) -> str | None:
    """The pending reconnection: attempt, countdown and cause; None when none is pending."""
    remaining = state.retry_in(now)
    if state.phase is not Phase.RECONNECTING or remaining is None:
        return None
    return f"attempt {state.attempt} in {remaining:.1f} s ({state.cause})"


_HINTS = (
    ("DNS lookup failed", "the host name does not resolve: check its spelling in the URL"),
    (
        "cannot connect",
        "nothing answers at that address: is the backend running (`live-listener serve` "
        "starts one), and are the host and port right?",
    ),
    ("timed out", "no answer in time: check the host, the port and any firewall"),
    ("handshake failed", "something answers but is not a live-listener backend: check the path"),
)


def never_connected_hint(state: AppState) -> str | None:
    """While the session has never streamed: what the last error suggests to check."""
    if state.phase is not Phase.RECONNECTING or state.protocol is not None:
        return None
    cause = state.cause or ""
    for marker, hint in _HINTS:
        if marker in cause:
            return hint
    return "never connected: check the URL and the network"


def counts_text(state: AppState) -> str:
    totals = state.totals()
    text = (
        f"captured {totals.captured} · sent {totals.sent} · acked {totals.acked} · "
        f"buffered {totals.buffered} · dropped {totals.dropped}"
    )
    if state.backend_dropped:
        text += f" · dropped by backend {state.backend_dropped}"
    if totals.unconfirmed:
        text += f" · unconfirmed {totals.unconfirmed}"
    return text


def link_text(state: AppState, now: float) -> str:
    """Time so far, reconnects and how they went, and time spent without a connection."""
    elapsed = 0.0 if state.started_at is None else now - state.started_at
    if state.ended_at is not None and state.started_at is not None:
        elapsed = state.ended_at - state.started_at
    down = state.downtime
    if state.down_since is not None and state.ended_at is None:
        down += now - state.down_since
    return (
        f"{elapsed:.1f} s · reconnects {state.reconnects} (resumed {state.resumes}, "
        f"reset {state.resets}) · downtime {down:.1f} s"
    )


@dataclass(frozen=True, slots=True)
class ConsoleView:
    """What the live view shows: the state and the latest finals (oldest first)."""

    state: AppState
    finals: tuple[AsrFinal, ...] = ()
    title: str = ""


def _phase_text(state: AppState) -> Text:
    line = "reconnecting" if state.phase is Phase.RECONNECTING else status_line(state)
    text = Text(line, style=_PHASE_STYLE.get(state.phase, ""))
    if state.backend_busy:
        text.append(f"  backend {state.backend_state}", style="yellow")
    return text


def live_view(view: ConsoleView, now: float) -> RenderableType:
    """The live display for `view` at time `now` (the session's clock, in seconds)."""
    state = view.state
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("phase", _phase_text(state))
    retry = retry_text(state, now)
    if retry is not None:
        grid.add_row("retry", Text(retry, style="yellow"))
    hint = never_connected_hint(state)
    if hint is not None:
        grid.add_row("hint", Text(hint, style="yellow"))
    for source, level in sorted(state.levels.items()):
        meter = Text(f"{source:<6} ")
        meter.append(level_bar(level.rms_dbfs), style="green")
        meter.append(f" {level.rms_dbfs:6.1f} dBFS (peak {level.peak_dbfs:.1f})")
        grid.add_row("level", meter)
    buffered = state.totals().buffered
    grid.add_row("frames", Text(counts_text(state), style="yellow" if buffered > 50 else ""))
    grid.add_row("session", link_text(state, now))
    sources = {final.source for final in view.finals}
    lines = [transcript_line(final, with_source=len(sources) > 1) for final in view.finals]
    transcript = Text("\n".join(lines) if lines else "(nothing yet)", style="" if lines else "dim")
    if state.partial_text:
        transcript.append(f"\n… {state.partial_text}", style="dim italic")
    grid.add_row("transcript", transcript)
    parts: list[RenderableType] = []
    if view.title:
        parts.append(Text(view.title, style="bold"))
    parts.append(grid)
    return Group(*parts)


def view_text(view: ConsoleView, now: float, width: int = 100) -> list[str]:
    """The live view as lines of plain text, `width` columns wide."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(live_view(view, now))
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


# -- the sink ------------------------------------------------------------------------------


def _active(state: AppState) -> bool:
    return state.phase is not Phase.IDLE


def phase_changes(states: Observable[AppState]) -> Observable[str]:
    """One status line per change of phase (or attempt, connection, resume outcome)."""
    return states.pipe(
        ops.filter(_active),
        ops.distinct_until_changed(phase_key),
        ops.map(status_line),
        ops.distinct_until_changed(),
    )


class ConsoleSink:
    """Shows a session on `out`: a live view on a terminal, plain lines elsewhere.

    `live=None` decides from `out` (a terminal that understands escape codes gets the
    live view). Use as a context manager around `session.run()`.
    """

    def __init__(
        self,
        session: Session,
        out: IO[str] | None = None,
        *,
        title: str = "",
        live: bool | None = None,
        refresh: float = REFRESH_S,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.session = session
        self.console = Console(file=out or sys.stdout, highlight=False)
        self.live = (
            self.console.is_terminal and not self.console.is_dumb_terminal if live is None else live
        )
        self.title = title
        self.refresh = refresh
        self._scheduler = scheduler
        self._finals: deque[AsrFinal] = deque(maxlen=TRANSCRIPT_LINES)
        self._sources: set[str] = set()
        self._display: Live | None = None
        self._subscriptions = CompositeDisposable()
        self._clock: Callable[[], float] = lambda: 0.0

    def __enter__(self) -> ConsoleSink:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def view(self) -> ConsoleView:
        return ConsoleView(self.session.current, tuple(self._finals), self.title)

    def start(self) -> None:
        """Subscribe to the session (call on the running loop, before `session.run()`)."""
        scheduler = self._scheduler or AsyncIOScheduler(asyncio.get_running_loop())
        self._clock = seconds_of(scheduler)
        finals = self.session.events.pipe(
            ops.filter(lambda event: isinstance(event, AsrFinal)),
            ops.map(lambda event: cast(AsrFinal, event)),
        )
        if self.live:
            self._display = Live(
                console=self.console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
                vertical_overflow="visible",
            )
            self._display.start()
            ticks: Observable[object] = reactivex.merge(
                reactivex.interval(self.refresh, scheduler),
                self.session.state.pipe(ops.distinct_until_changed(phase_key)),
                finals,
            )
            self._subscriptions.add(finals.subscribe(self._finals.append))
            self._subscriptions.add(ticks.subscribe(lambda _: self._draw(), scheduler=scheduler))
        else:
            self._subscriptions.add(phase_changes(self.session.state).subscribe(self.print))
            hints: Observable[str | None] = self.session.state.pipe(
                ops.map(never_connected_hint),
                ops.filter(lambda hint: hint is not None),
                ops.distinct_until_changed(),
            )
            self._subscriptions.add(hints.subscribe(self._print_hint))
            self._subscriptions.add(finals.subscribe(self._print_final))

    def note(self, text: str) -> None:
        """A message of the application (e.g. the demo's outage), above the live view."""
        if self._display is not None:
            self.console.print(Text(text, style="magenta"))
        else:
            self.print(text)

    def print(self, line: str) -> None:
        """A line of the application's own (a header, the report)."""
        if self._display is not None:
            self.console.print(Text(line))
            return
        file = self.console.file
        file.write(line + "\n")
        file.flush()

    def print_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.print(line)

    def close(self) -> None:
        """Stop updating; the live view stays on screen with the final state."""
        self._subscriptions.dispose()
        if self._display is not None:
            self._draw()
            self._display.stop()
            self._display = None

    def _draw(self) -> None:
        if self._display is not None:
            self._display.update(live_view(self.view, self._clock()), refresh=True)

    def _print_hint(self, hint: str | None) -> None:
        if hint is not None:
            self.print(f"hint: {hint}")

    def _print_final(self, final: AsrFinal) -> None:
        self._sources.add(final.source)
        self.print(transcript_line(final, with_source=len(self._sources) > 1))
