"""Real-time factor and memory of the embedded pocketsphinx backend, per session.

    python benchmarks/asr_rtf.py          # ~1 minute
    python benchmarks/asr_rtf.py --smoke  # a few seconds (the test suite runs this)

Measured in the same run, on the bundled recording (backend/samples/speech.wav):
- baseline: the bare recogniser (Endpointer + Decoder) in this process, CPU s per audio s;
- the `none` backend: a Session streaming the file as fast as it is taken, no recognition;
- the `pocketsphinx` backend: the same session, one and then two at once; wall s per
  audio s, the backend's own realtime_factor metric, and memory per session;
- event-loop lag while decoding: on a thread of this process vs in a decoder process,
  and (full run) two streams decoded at once on two threads vs in two processes.

A real-time factor below 1 means faster than real time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import wave
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.asr import Recognizer
from backend.config import BackendConfig
from backend.decoder_pool import DecoderPool, PocketsphinxRecognizers, PooledRecognizer
from backend.pocketsphinx_asr import PocketsphinxRecognizer, build_decoder
from backend.server import running_backend
from backend.stream import BATCH_SECONDS
from benchmarks.measure import MB, percentile, rss
from pipeline.audio import BYTES_PER_SECOND, FRAME_BYTES, FRAMES_PER_SECOND
from pipeline.config import SessionConfig
from pipeline.protocol import Metrics, ServerEvent
from pipeline.session import Session
from pipeline.sources import from_samples

SPEECH = Path(__file__).resolve().parent.parent / "backend" / "samples" / "speech.wav"
BATCH = round(BATCH_SECONDS * BYTES_PER_SECOND)  # bytes: what the backend hands its recogniser


def load_speech(seconds: float | None) -> bytes:
    with wave.open(str(SPEECH), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    return pcm if seconds is None else pcm[: round(seconds * FRAMES_PER_SECOND) * FRAME_BYTES]


# -- baseline: the bare recogniser in this process ---------------------------------


@dataclass
class Bare:
    build_s: float
    decoder_mb: float
    cpu_rtf: float
    text: str


def bare_recogniser(pcm: bytes) -> Bare:
    before = rss()
    began = time.perf_counter()
    decoder = build_decoder()
    build_s = time.perf_counter() - began
    decoder_mb = (rss() - before) / MB
    recognizer = PocketsphinxRecognizer(lambda: decoder)
    cpu = time.process_time()
    finals = []
    for offset in range(0, len(pcm), BATCH):  # 0.5 s batches, as the backend sends
        finals += [h for h in recognizer.process(pcm[offset : offset + BATCH]) if h.final]
    finals += recognizer.finish()
    cpu_rtf = (time.process_time() - cpu) / (len(pcm) / BYTES_PER_SECOND)
    recognizer.close()
    return Bare(build_s, decoder_mb, cpu_rtf, " ".join(h.text for h in finals))


# -- the backend, through real sessions --------------------------------------------


@dataclass
class BackendRun:
    sessions: int
    wall_s: float
    audio_s: float  # per session
    metric_rtf: float  # the backend's realtime_factor metric (mean over sessions)
    decoder_mb: float  # resident memory per decoder process (0 for `none`)
    backend_mb: float  # growth of this process (backend + client) per session
    segments: int
    dropped: int

    @property
    def wall_rtf(self) -> float:
        """Wall seconds per second of audio, per session."""
        return self.wall_s / self.audio_s


def _collect_metrics(into: list[Metrics]) -> Callable[[ServerEvent], None]:
    def collect(event: ServerEvent) -> None:
        if isinstance(event, Metrics):
            into.append(event)

    return collect


async def backend_run(asr: str, pcm: bytes, sessions: int) -> BackendRun:
    audio = np.frombuffer(pcm, dtype="<i2")
    config = BackendConfig(asr=asr, asr_decoders=max(1, sessions))
    before = rss()
    async with running_backend(config) as backend:
        metrics: list[list[Metrics]] = [[] for _ in range(sessions)]
        runs = []
        for seen in metrics:
            session = Session(SessionConfig(url=backend.url), from_samples(audio, realtime=False))
            session.events.subscribe(_collect_metrics(seen))
            runs.append(session.run())
        began = time.perf_counter()
        reports = await asyncio.gather(*runs)
        wall = time.perf_counter() - began
        grown = (rss() - before) / MB
        recognizers = backend.store.recognizers
        pids: list[int] = []
        if isinstance(recognizers, PocketsphinxRecognizers):
            # a finished session hands its decoder back from a closing task: wait for it
            for _ in range(200):
                if pids := recognizers.pool.worker_pids():
                    break
                await asyncio.sleep(0.025)
        decoder_mb = statistics.mean(rss(pid) for pid in pids) / MB if pids else 0.0
    rtfs = [m[-1].realtime_factor or 0.0 for m in metrics if m]
    return BackendRun(
        sessions=sessions,
        wall_s=wall,
        audio_s=len(pcm) / BYTES_PER_SECOND,
        metric_rtf=statistics.mean(rtfs) if rtfs else 0.0,
        decoder_mb=decoder_mb,
        backend_mb=grown / sessions,
        segments=sum(len(r.transcript) for r in reports),
        dropped=sum(
            r.summary.json["sources"]["system"]["dropped_frames"] for r in reports if r.summary
        ),
    )


# -- event-loop lag while decoding -------------------------------------------------


@dataclass
class Lag:
    p50_ms: float
    p99_ms: float
    max_ms: float


Work = Callable[[], Coroutine[Any, Any, None]]


async def loop_lag(work: Work | None, idle_s: float = 1.0) -> Lag:
    """How late a 5 ms timer fires on the loop while `work` runs (or for `idle_s`)."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    task = loop.create_task(work() if work else asyncio.sleep(idle_s))
    while not task.done():
        began = loop.time()
        await asyncio.sleep(0.005)
        lags.append((loop.time() - began - 0.005) * 1000)
    await task
    return Lag(percentile(lags, 50), percentile(lags, 99), max(lags))


async def decode_on(
    executor: ThreadPoolExecutor, make: Callable[[], Recognizer], pcm: bytes
) -> None:
    """Feed `pcm` to a recogniser in 0.5 s batches, each call on `executor` (as the backend)."""
    loop = asyncio.get_running_loop()
    recognizer = await loop.run_in_executor(executor, make)
    for offset in range(0, len(pcm), BATCH):
        await loop.run_in_executor(executor, recognizer.process, pcm[offset : offset + BATCH])
    await loop.run_in_executor(executor, recognizer.finish)
    await loop.run_in_executor(executor, recognizer.close)


# -- the report --------------------------------------------------------------------


async def main(smoke: bool) -> None:
    pcm = load_speech(6.0 if smoke else None)
    lag_pcm = load_speech(6.0 if smoke else 15.0)
    audio_s = len(pcm) / BYTES_PER_SECOND
    print(f"audio: {SPEECH.name}, {audio_s:.1f} s{' (smoke)' if smoke else ''}")

    bare = bare_recogniser(pcm)
    print(
        f"baseline  bare recogniser in-process: {bare.cpu_rtf:.3f} CPU s per audio s; "
        f"decoder build {bare.build_s:.2f} s, +{bare.decoder_mb:.0f} MB"
    )

    none = await backend_run("none", pcm, 1)
    print(
        f"backend   --asr none:          wall RTF {none.wall_rtf:.3f} "
        f"({none.wall_s:.2f} s), backend +{none.backend_mb:.1f} MB"
    )
    one = await backend_run("pocketsphinx", pcm, 1)
    print(
        f"backend   --asr pocketsphinx:  wall RTF {one.wall_rtf:.3f} ({one.wall_s:.2f} s), "
        f"metric realtime_factor {one.metric_rtf:.3f}, {one.segments} segments, "
        f"{one.dropped} frames dropped"
    )
    print(
        f"memory    per session: decoder process {one.decoder_mb:.0f} MB RSS, "
        f"backend process +{one.backend_mb:.1f} MB"
    )
    two = None
    if not smoke:
        two = await backend_run("pocketsphinx", pcm, 2)
        print(
            f"backend   2 sessions at once:  wall RTF {two.wall_rtf:.3f} per session "
            f"({two.wall_s:.2f} s), metric realtime_factor {two.metric_rtf:.3f}, "
            f"decoder processes {two.decoder_mb:.0f} MB each, {two.dropped} frames dropped"
        )

    idle = await loop_lag(None)
    decoder = build_decoder()
    with ThreadPoolExecutor(1) as threads:
        on_thread = await loop_lag(
            lambda: decode_on(threads, lambda: PocketsphinxRecognizer(lambda: decoder), lag_pcm)
        )
        pool = DecoderPool(1)
        await asyncio.get_running_loop().run_in_executor(threads, _warm, pool)
        in_process = await loop_lag(
            lambda: decode_on(threads, lambda: PooledRecognizer(pool), lag_pcm)
        )
        pool.close()
    lags = (
        ("idle", idle),
        ("decoding on a thread", on_thread),
        ("decoding in a process", in_process),
    )
    for name, lag in lags:
        print(
            f"loop lag  {name:22s} p50 {lag.p50_ms:7.2f} ms  p99 {lag.p99_ms:7.2f} ms  "
            f"max {lag.max_ms:7.2f} ms"
        )
    if not smoke:
        threads_s, processes_s = await two_streams(lag_pcm, decoder)
        print(
            f"2 streams {len(lag_pcm) / BYTES_PER_SECOND:.0f} s each at once: on 2 threads "
            f"{threads_s:.2f} s, in 2 processes {processes_s:.2f} s "
            f"({threads_s / processes_s:.2f}x)"
        )

    print(
        f"summary: pocketsphinx backend RTF {one.wall_rtf:.3f} wall per session "
        f"(bare decoder {bare.cpu_rtf:.3f} CPU, none {none.wall_rtf:.3f})"
        + (f", 2 at once {two.wall_rtf:.3f}" if two else "")
        + f"; {one.decoder_mb:.0f} MB per session; loop lag max {in_process.max_ms:.0f} ms "
        f"decoding in a process vs {on_thread.max_ms:.0f} ms on a thread"
    )


async def two_streams(pcm: bytes, decoder: object) -> tuple[float, float]:
    """Wall time of decoding two streams at once: two threads (one GIL) vs two processes."""
    second = build_decoder()
    with ThreadPoolExecutor(2) as threads:
        began = time.perf_counter()
        await asyncio.gather(
            decode_on(threads, lambda: PocketsphinxRecognizer(lambda: decoder), pcm),
            decode_on(threads, lambda: PocketsphinxRecognizer(lambda: second), pcm),
        )
        on_threads = time.perf_counter() - began
        pool = DecoderPool(2)
        await asyncio.gather(
            *(asyncio.get_running_loop().run_in_executor(threads, _warm, pool) for _ in range(2))
        )
        began = time.perf_counter()
        await asyncio.gather(
            *(decode_on(threads, lambda: PooledRecognizer(pool), pcm) for _ in range(2))
        )
        in_processes = time.perf_counter() - began
        pool.close()
    return on_threads, in_processes


def _warm(pool: DecoderPool) -> None:
    """Start the decoder process before measuring (its start is not decoding)."""
    recognizer = PooledRecognizer(pool)
    recognizer.process(bytes(FRAME_BYTES))
    recognizer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    asyncio.run(main(parser.parse_args().smoke))
