"""Helpers the notebooks share: record what a session says, measure levels, draw timelines.

Plotting lives here, next to the notebooks, because matplotlib is not a dependency of the
library; the table the timelines are drawn from is the library's (`sinks.phases`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from reactivex import abc

from operators.level import SILENCE_DBFS, frame_level
from pipeline import AppState, AsrFinal, AudioFrame, ServerEvent, Session, StatusEvent
from sinks.phases import PhaseSpan, phase_spans

PHASE_COLOURS = {
    "connecting": "#f2c14e",
    "streaming": "#3d9970",
    "resumed": "#2e86de",
    "reset": "#8e44ad",
    "reconnecting": "#e74c3c",
    "finalizing": "#95a5a6",
    "stopped": "#34495e",
    "failed": "#000000",
}
PHASE_ROWS = ("connecting", "streaming", "resumed", "reset", "reconnecting", "finalizing")


@dataclass
class Levels:
    """Per-frame levels of an audio stream, on the source's timeline (frame start, dBFS)."""

    times: list[float] = field(default_factory=list)
    dbfs: list[float] = field(default_factory=list)

    def add(self, frame: AudioFrame) -> None:
        self.times.append(frame.start)
        self.dbfs.append(frame_level(frame).rms_dbfs)


@dataclass
class Recording:
    """Everything a session emitted, in order: states, status events and server events."""

    states: list[AppState] = field(default_factory=list)
    status: list[StatusEvent] = field(default_factory=list)
    events: list[ServerEvent] = field(default_factory=list)
    subscriptions: list[abc.DisposableBase] = field(default_factory=list)

    @property
    def finals(self) -> list[AsrFinal]:
        return [event for event in self.events if isinstance(event, AsrFinal)]

    @property
    def spans(self) -> list[PhaseSpan]:
        return phase_spans(self.states)


def record(session: Session) -> Recording:
    """Subscribe to a session's three streams (call before `run`)."""
    rec = Recording()
    rec.subscriptions = [
        session.state.subscribe(rec.states.append),
        session.status.subscribe(rec.status.append),
        session.events.subscribe(rec.events.append),
    ]
    return rec


def plot_phases(
    ax: Axes,
    spans: Sequence[PhaseSpan],
    *,
    rows: Sequence[str] = PHASE_ROWS,
    origin: float | None = None,
) -> None:
    """A Gantt chart of phase spans, one row per phase, on seconds since `origin` (default:
    the first span). Each retry's wait is its own bar, so back-to-back attempts stay apart."""
    zero = origin if origin is not None else (spans[0].start if spans else 0.0)
    present = [row for row in rows if any(span.label == row for span in spans)]
    for index, row in enumerate(present):
        bars = [(span.start - zero, span.duration) for span in spans if span.label == row]
        colour = PHASE_COLOURS.get(row, "grey")
        apart = row == "reconnecting"  # white edges part back-to-back waits; others stay visible
        ax.broken_barh(
            bars,
            (index - 0.4, 0.8),
            facecolor=colour,
            edgecolor="white" if apart else colour,
            linewidth=0.6,
        )
    ax.set_yticks(range(len(present)), present)
    ax.set_ylim(-0.6, len(present) - 0.4)
    ax.set_xlabel("session time (s)")
    ax.grid(axis="x", alpha=0.3)


def plot_retry_delays(ax: Axes, spans: Sequence[PhaseSpan], *, origin: float | None = None) -> None:
    """Each retry as a stem at the moment it was scheduled, as tall as the delay chosen."""
    zero = origin if origin is not None else (spans[0].start if spans else 0.0)
    retries = [span for span in spans if span.label == "reconnecting" and span.delay is not None]
    if retries:
        ax.stem(
            [span.start - zero for span in retries],
            [span.delay or 0.0 for span in retries],
            linefmt=PHASE_COLOURS["reconnecting"],
            markerfmt="o",
            basefmt=" ",
        )
        for span in retries:
            ax.annotate(
                str(span.attempt),
                (span.start - zero, span.delay or 0.0),
                xytext=(3, 2),
                textcoords="offset points",
                fontsize=7,
            )
    ax.set_ylabel("retry delay (s)")
    ax.set_xlabel("session time (s)")
    ax.grid(axis="x", alpha=0.3)


def plot_level(
    ax: Axes,
    levels: Levels,
    *,
    finals: Iterable[AsrFinal] = (),
    threshold: float | None = None,
    passed: Iterable[float] = (),
    frame_s: float = 0.02,
) -> None:
    """The level over the recording's time, with transcript segments shaded and labelled,
    an optional gate threshold, and (`passed`) frame start times a gate let through."""
    ax.plot(levels.times, levels.dbfs, lw=0.6, color="#2c3e50", label="RMS level")
    for final in finals:
        ax.axvspan(final.t0, final.t1, color="#3d9970", alpha=0.15)
        words = final.text.split()
        short = " ".join(words[:3]) + (" …" if len(words) > 3 else "")
        ax.text(final.t0, 0.98, short, transform=ax.get_xaxis_transform(), fontsize=6, va="top")
    if threshold is not None:
        ax.axhline(threshold, color="#e74c3c", ls="--", lw=0.8, label=f"gate {threshold:g} dBFS")
    sent = np.asarray(sorted(passed))
    if len(sent):
        ax.eventplot(
            sent + frame_s / 2,
            lineoffsets=SILENCE_DBFS + 4,
            linelengths=6,
            colors="#2e86de",
            linewidths=0.4,
            label="frames sent",
        )
    ax.set_ylim(SILENCE_DBFS - 2, 0)
    ax.set_xlabel("recording time (s)")
    ax.set_ylabel("dBFS")
    ax.legend(loc="lower right", fontsize=7)


def counts_over_time(states: Iterable[AppState], source: str = "system") -> dict[str, Any]:
    """Captured / sent / acked frames of one source after each state change (for plots)."""
    table: dict[str, list[float]] = {"t": [], "captured": [], "sent": [], "acked": []}
    for state in states:
        counts = state.audio.get(source)
        if counts is None:
            continue
        table["t"].append(state.updated_at - (state.started_at or 0.0))
        table["captured"].append(counts.captured)
        table["sent"].append(counts.sent)
        table["acked"].append(counts.acked)
    return table
