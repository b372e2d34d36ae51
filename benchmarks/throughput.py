"""Frames per second through the whole client pipeline, vs bare clients doing the same sends.

    python benchmarks/throughput.py          # ~30 s
    python benchmarks/throughput.py --smoke  # a few seconds (the test suite runs this)

One 16 kHz stream of 20 ms frames, as fast as it is taken, to a counting sink in another
process (benchmarks/sink.py: acks every 50 frames, so flow control keeps moving). Arms,
alternated round by round:
- `pipeline`: a real `Session` with a `realtime=False` source (Rx composition, outbox,
  demand, framing, aiohttp send, acks read and applied);
- `aiohttp`: a hand-written aiohttp loop doing the same encoding and sends (the floor);
- `websockets`: the `websockets` library client doing the same (compression off, as aiohttp).
Every arm uses the framing the session uses: v2 binary frames (the sink offers them), or
JSON with `--json`; every arm cuts its 20 ms frames from the same recording as it sends
them (`operators.rechunk.Frames`, as the session's source does); and every arm runs on
one loop (`--loop`). Each run is timed from
opening the socket to the sink's `final_summary`, and the sink's frame count must equal
what was sent. Figures: median frames/s, x real time (audio seconds
per wall second), client CPU microseconds per frame, and the ratio pipeline / aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import websockets

from benchmarks.measure import (
    FRAME_S,
    Stopwatch,
    add_loop_option,
    alternate,
    loop_name,
    machine,
    median,
    quiet,
    run_on,
    spread,
    summary,
)
from benchmarks.sink import SinkProcess
from operators.rechunk import Frames
from pipeline.audio import AUDIO_FORMAT, CHANNELS, FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.sources import from_samples

TARGET_RATIO = 0.9
TARGET_REALTIME = 1000.0


@dataclass
class Run:
    frames: int
    wall_s: float
    cpu_s: float

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def realtime(self) -> float:
        return self.fps * FRAME_S

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.frames * 1e6


def noise(seconds: float) -> Samples:
    """Audio whose base64 is as long as any: the encoding cost does not depend on content."""
    rng = np.random.default_rng(7)
    return rng.integers(-8000, 8000, round(seconds * SAMPLE_RATE), dtype=np.int16)


def frames_of(samples: Samples) -> Frames:
    """The frames a source cuts, each cut as it is read, as a session's source cuts them:
    the bare clients start from the same recording and do the same work."""
    return Frames(samples)


def start_message(session_id: str, *, binary: bool = False) -> str:
    """A v0.3 `start`; with `binary` it offers the v2 binary audio framing too."""
    capabilities = ["ack", "resume", "binary"] if binary else ["ack", "resume"]
    return json.dumps(
        {
            "type": "start",
            "session_id": session_id,
            "attempt_id": str(uuid.uuid4()),
            "connection_id": str(uuid.uuid4()),
            "sample_rate": SAMPLE_RATE,
            "format": AUDIO_FORMAT,
            "channels": CHANNELS,
            "capabilities": capabilities,
        }
    )


def audio_message(frame: AudioFrame) -> str:
    data = base64.b64encode(frame.samples.tobytes()).decode("ascii")
    return f'{{"type":"audio","source":"{frame.source}","seq":{frame.seq},"data":"{data}"}}'


def audio_binary(frame: AudioFrame) -> bytes:
    """The v2 binary framing by hand: b"EP", 2, source byte 0, seq (uint32 BE), PCM16."""
    return b"EP\x02\x00" + frame.seq.to_bytes(4, "big") + frame.samples.tobytes()


def _checked(summary_json: dict[str, Any], sent: int) -> int:
    received = int(summary_json["frames"])
    if received != sent:
        raise RuntimeError(f"the sink counted {received} frames of {sent} sent")
    return received


# -- the arms -----------------------------------------------------------------------


async def pipeline(url: str, samples: Samples, binary: bool = True) -> Run:
    config = SessionConfig(url=url, binary_seq=binary)
    session = Session(config, from_samples(samples, realtime=False))
    with Stopwatch() as watch:
        report = await session.run()
    counts = report.audio["system"]
    if report.outcome != "completed" or report.frames_lost or counts.acked != counts.captured:
        raise RuntimeError(f"pipeline run failed: {' | '.join(report.lines())}")
    assert report.summary is not None
    return Run(_checked(dict(report.summary.json), counts.sent), watch.wall, watch.cpu)


async def bare_aiohttp(url: str, frames: Sequence[AudioFrame], binary: bool = True) -> Run:
    session_id = str(uuid.uuid4())
    with Stopwatch() as watch:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await _expect(ws.receive_str, "connected")
            await ws.send_str(start_message(session_id, binary=binary))
            await _expect(ws.receive_str, "streaming")

            async def read() -> dict[str, Any]:
                async for msg in ws:
                    body = json.loads(msg.data)
                    if body["type"] == "final_summary":
                        return dict(body["json"])
                raise RuntimeError("closed before final_summary")

            reader = asyncio.create_task(read())
            for frame in frames:
                if binary:
                    await ws.send_bytes(audio_binary(frame))
                else:
                    await ws.send_str(audio_message(frame))
            await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
            done = await reader
    return Run(_checked(done, len(frames)), watch.wall, watch.cpu)


async def bare_websockets(url: str, frames: Sequence[AudioFrame], binary: bool = True) -> Run:
    session_id = str(uuid.uuid4())
    with Stopwatch() as watch:
        async with websockets.connect(url, compression=None, max_size=2**22) as ws:

            async def receive() -> str:
                return str(await ws.recv())

            await _expect(receive, "connected")
            await ws.send(start_message(session_id, binary=binary))
            await _expect(receive, "streaming")

            async def read() -> dict[str, Any]:
                async for text in ws:
                    body = json.loads(text)
                    if body["type"] == "final_summary":
                        return dict(body["json"])
                raise RuntimeError("closed before final_summary")

            reader = asyncio.create_task(read())
            for frame in frames:
                await ws.send(audio_binary(frame) if binary else audio_message(frame))
            await ws.send(json.dumps({"type": "stop", "session_id": session_id}))
            done = await reader
    return Run(_checked(done, len(frames)), watch.wall, watch.cpu)


async def _expect(receive: Callable[[], Awaitable[str]], state: str) -> None:
    body = json.loads(await receive())
    if body.get("state") != state:
        raise RuntimeError(f"expected {state!r}, got {body}")


# -- the report ---------------------------------------------------------------------


async def main(seconds: float, rounds: int, binary: bool = True) -> None:
    quiet()
    samples = noise(seconds)
    frames = frames_of(samples)
    print(f"machine: {machine()}")
    framing = "binary v2" if binary else "JSON"
    print(
        f"stream: {len(frames)} frames of 20 ms ({seconds:.0f} s of audio), {rounds} rounds, "
        f"{framing} audio in every arm, {loop_name()}"
    )
    with SinkProcess() as sink:
        url = sink.url
        await bare_aiohttp(url, frames[:500])  # warm up imports, the sink and the sockets
        await pipeline(url, samples[: 500 * FRAME_SAMPLES])
        runs = await alternate(
            {
                "pipeline": lambda: pipeline(url, samples, binary),
                "aiohttp": lambda: bare_aiohttp(url, frames, binary),
                "websockets": lambda: bare_websockets(url, frames, binary),
            },
            rounds,
        )
    fps = {name: median([r.fps for r in arm]) for name, arm in runs.items()}
    for name, arm in runs.items():
        print(
            f"{name:11s} {fps[name]:9,.0f} frames/s  x{fps[name] * FRAME_S:7,.0f} real time  "
            f"{median([r.cpu_us for r in arm]):5.1f} us CPU/frame  "
            f"(spread {spread([r.fps for r in arm]):.0%} over {len(arm)} runs)"
        )
    ratios = [p.fps / a.fps for p, a in zip(runs["pipeline"], runs["aiohttp"], strict=True)]
    ratio = median(ratios)
    realtime = fps["pipeline"] * FRAME_S
    cpu_realtime = FRAME_S / (median([r.cpu_us for r in runs["pipeline"]]) / 1e6)
    verdict_ratio = "meets" if ratio >= TARGET_RATIO else "misses"
    verdict_rt = "meets" if realtime >= TARGET_REALTIME else "misses"
    print(
        f"targets: pipeline/aiohttp {ratio:.2f} (>= {TARGET_RATIO}: {verdict_ratio}); "
        f"x{realtime:,.0f} real time (>= {TARGET_REALTIME:,.0f}: {verdict_rt}); "
        f"per-round ratios {', '.join(f'{r:.2f}' for r in ratios)}"
    )
    summary(
        f"pipeline {fps['pipeline']:.0f} frames/s = {realtime:.0f}x real time "
        f"({cpu_realtime:.0f}x per CPU second), "
        f"{ratio:.2f}x the aiohttp loop ({fps['aiohttp']:.0f} frames/s), "
        f"{fps['pipeline'] / fps['websockets']:.2f}x websockets "
        f"({fps['websockets']:.0f} frames/s); {framing}, {loop_name()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--seconds", type=float, default=600.0, help="audio per run")
    parser.add_argument(
        "--rounds", type=int, default=15, help="alternated rounds (the median of their ratios)"
    )
    parser.add_argument("--json", action="store_true", help="JSON audio in every arm")
    add_loop_option(parser)
    args = parser.parse_args()
    if args.smoke:
        run_on(args.loop, main(20.0, 1, not args.json))
    else:
        run_on(args.loop, main(args.seconds, args.rounds, not args.json))
