"""Catching up after an outage: how long until the backlog is acknowledged and the
transcript current, against the floor the recogniser's speed sets.

    python benchmarks/backlog.py          # outages of 10, 30, 60 and 110 s: ~1.5 minutes
    python benchmarks/backlog.py --smoke  # 2 and 4 s (the test suite runs this)

A live-like source (the bundled recording, looped) is paced at `--speed` times real time
(10x by default) so that an outage of 110 s of audio takes 11 s of wall time: the proxy
between client and backend (backend/chaos.py) refuses every connection while the source
produces the outage's audio, which waits in the client's outbox. The outage ends as the
audio does; the session reconnects, resumes, and drains the backlog through the embedded
backend with pocketsphinx, flow-controlled by acks.

Figures per outage:
- backlog: the audio held by the outbox when the session resumed (seconds);
- acked: from the resume until every frame is acknowledged;
- current: from the resume until the final summary (every final delivered);
- floor (the baseline, measured right before each outage so both meet the same load on a
  shared machine): backlog x the bare recogniser's wall seconds per audio second (one
  decoder in this process, on up to 15 s of the same audio): no client could make the
  transcript current sooner on one decoder. current / floor is the cost of everything
  else (reconnecting, resending, flow control, the decoder process, the final flush);
- the backend's own `realtime_factor` metric for the session, beside it;
- peak held: the most audio the outbox held (exact), and this process's peak RSS
  (client and backend; the decoder is a process of its own) above its level before.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass

import numpy as np

from backend.chaos import ChaosProxy, Fault
from backend.config import BackendConfig
from backend.pocketsphinx_asr import PocketsphinxRecognizer, build_decoder
from backend.server import running_backend
from backend.stream import BATCH_SECONDS
from benchmarks.asr_rtf import load_speech
from benchmarks.measure import MB, machine, quiet, rss, summary
from operators.backoff import BackoffPolicy
from pipeline.audio import BYTES_PER_SECOND, FRAME_BYTES, FRAME_SAMPLES, FRAMES_PER_SECOND
from pipeline.config import SessionConfig
from pipeline.protocol import FinalSummary, Metrics, ServerEvent
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import AudioCounts, StatusEvent, Streaming

LEAD_S = 2.0  # audio streamed before the outage
BATCH = round(BATCH_SECONDS * BYTES_PER_SECOND)  # bytes: what the backend hands its recogniser


def looped_speech(seconds: float) -> bytes:
    pcm = load_speech(None)
    needed = round(seconds * FRAMES_PER_SECOND) * FRAME_BYTES
    return (pcm * (needed // len(pcm) + 1))[:needed]


def bare_wall_per_audio_s(pcm: bytes) -> float:
    """The baseline: one decoder in this process, 0.5 s batches as the backend sends."""
    recognizer = PocketsphinxRecognizer(build_decoder)
    recognizer.process(pcm[:BATCH])  # built before timing
    began = time.perf_counter()
    for offset in range(BATCH, len(pcm), BATCH):
        recognizer.process(pcm[offset : offset + BATCH])
    recognizer.finish()
    recognizer.close()
    return (time.perf_counter() - began) / ((len(pcm) - BATCH) / BYTES_PER_SECOND)


class PeakRss:
    """This process's RSS, sampled every 50 ms on a thread, keeping the peak."""

    def __init__(self) -> None:
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Run:
    outage_s: float
    backlog_s: float
    acked_s: float
    current_s: float
    frames: int
    acked: int
    lost: int
    unconfirmed: int
    backend_dropped: int
    resumes: int
    rtf: float
    peak_held_s: float
    peak_mb: float

    bare_rtf: float = float("nan")

    @property
    def floor_s(self) -> float:
        return self.backlog_s * self.bare_rtf


async def one_outage(outage_s: float, speed: float) -> Run:
    pcm = looped_speech(LEAD_S + outage_s)
    samples = np.frombuffer(pcm, dtype="<i2")
    config = BackendConfig(asr="pocketsphinx", asr_decoders=1, metrics_interval=0.2)
    fault = Fault(at=LEAD_S / speed, kind="reset", duration=outage_s / speed)
    marks: dict[str, float] = {"held": 0.0, "rtf": float("nan")}
    async with running_backend(config) as backend, ChaosProxy(backend.port, [fault]) as proxy:
        session = Session(
            SessionConfig(
                url=proxy.url,
                backoff=BackoffPolicy(initial=0.05, max_delay=0.2),
                stop_timeout=60.0,
            ),
            from_samples(samples, realtime=speed),
        )
        loop = asyncio.get_running_loop()

        def on_status(event: StatusEvent) -> None:
            marks["held"] = max(marks["held"], session.outbox.held * 0.02)
            if isinstance(event, Streaming) and event.resumed and "resumed" not in marks:
                marks["resumed"] = loop.time()
                marks["backlog"] = session.outbox.held * 0.02
            if isinstance(event, AudioCounts) and "resumed" in marks and "acked" not in marks:
                counts = event.counts.get("system")
                if counts is not None and counts.acked == len(samples) // FRAME_SAMPLES:
                    marks["acked"] = loop.time()

        def on_event(event: ServerEvent) -> None:
            if isinstance(event, FinalSummary):
                marks["current"] = loop.time()
            if isinstance(event, Metrics) and event.realtime_factor:
                marks["rtf"] = event.realtime_factor

        session.status.subscribe(on_status)
        session.events.subscribe(on_event)
        before = rss()
        with PeakRss() as peak:
            report = await session.run()
    counts = report.audio["system"]
    resumed = marks.get("resumed", float("nan"))
    return Run(
        outage_s=outage_s,
        backlog_s=marks.get("backlog", float("nan")),
        acked_s=marks.get("acked", float("nan")) - resumed,
        current_s=marks.get("current", float("nan")) - resumed,
        frames=len(samples) // FRAME_SAMPLES,
        acked=counts.acked,
        lost=report.frames_lost,
        unconfirmed=report.frames_unconfirmed,
        backend_dropped=report.backend_dropped,
        resumes=report.resumes,
        rtf=marks["rtf"],
        peak_held_s=marks["held"],
        peak_mb=(peak.peak - before) / MB,
    )


async def main(outages: list[float], speed: float) -> None:
    quiet()
    print(f"machine: {machine()}", flush=True)
    runs = []
    for outage in outages:
        bare = bare_wall_per_audio_s(looped_speech(min(15.0, outage + LEAD_S)))
        print(f"baseline bare recogniser {bare:.3f} wall s per audio s", flush=True)
        run = await one_outage(outage, speed)
        run.bare_rtf = bare
        runs.append(run)
        floor = run.floor_s
        print(
            f"outage {run.outage_s:g} s: backlog {run.backlog_s:.1f} s, acked in "
            f"{run.acked_s:.2f} s, current in {run.current_s:.2f} s, floor {floor:.2f} s "
            f"({run.current_s / floor:.2f}x; backend RTF {run.rtf:.3f}), peak held "
            f"{run.peak_held_s:.1f} s, RSS +{run.peak_mb:.1f} MB; frames {run.frames} "
            f"acked {run.acked} lost {run.lost} unconfirmed {run.unconfirmed} "
            f"dropped by backend {run.backend_dropped} resumes {run.resumes}",
            flush=True,
        )
    summary(
        "; ".join(
            f"{r.outage_s:g} s outage current in {r.current_s:.2f} s = "
            f"{r.current_s / r.floor_s:.2f}x the floor, "
            f"peak held {r.peak_held_s:.1f} s"
            for r in runs
        )
        + f" (floor: backlog x the bare recogniser's wall s per audio s, measured before "
        f"each; source at {speed:g}x real time)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="2 and 4 s outages")
    parser.add_argument("--speed", type=float, default=10.0, help="source pace, x real time")
    args = parser.parse_args()
    asyncio.run(main([2.0, 4.0] if args.smoke else [10.0, 30.0, 60.0, 110.0], args.speed))
