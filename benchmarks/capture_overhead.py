"""CPU cost of the capture -> socket path, per second of real-time audio.

Four ways of putting the same real-time audio onto a WebSocket, measured in one run,
alternating, several times each (medians):

  pipeline (mic)   paplay -> PulseAudio null sink -> PortAudio -> microphone() (soxr,
                   rechunk) -> Session (outbox, level meter, state) -> aiohttp -> backend
  pipeline (file)  wav_file(realtime=True) -> the same Session: the path without a device
  plain loop       the same audio cut into 20 ms frames, paced with asyncio.sleep and
                   written by a bare aiohttp loop in the framing the session uses (v2
                   binary frames with seq; JSON with `--json`): the baseline
  plain mic loop   the microphone without the library: the same device opened the same
                   way through sounddevice, blocks handed to the loop, downmixed and
                   resampled by soxr, cut into frames and written as the plain loop does
                   — the baseline that pays for capturing, as any microphone client does

Every variant runs on one event loop (`--loop`, default uvloop when installed).

The figure is this process's CPU time (every thread, PortAudio's callback thread too)
over a steady-state window, divided by the seconds of audio captured in it: from the first
frame (the device has started; connecting is done) for `--seconds` of audio. Starting the
device is reported on its own: PortAudio's ALSA path over PulseAudio can spin for a second
or two before the first block. The backend runs in a process of its own and the sound
server is one too, so neither is counted.

    python benchmarks/capture_overhead.py            # about 1.5 minutes (4 variants x 3 x 6 s)
    python benchmarks/capture_overhead.py --smoke    # a few seconds, for the test suite
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
import soxr

from benchmarks.measure import add_loop_option, machine, run_on, summary
from benchmarks.throughput import start_message
from pipeline.audio import DEFAULT_FRAME_MS, SAMPLE_RATE, frame_samples, to_int16
from pipeline.capture import list_devices, microphone, sounddevice_module
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.sources import read_wav, wav_file
from tests.audio.pulse import PulseServer, start_pulse

FRAME_S = DEFAULT_FRAME_MS / 1000
DEVICE_WAIT_S = 10.0  # for a block from the device, started or running
Run = Callable[[], Awaitable[tuple[float, float]]]  # -> (CPU seconds, audio seconds sent)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_backend_process(port: int) -> subprocess.Popen[bytes]:
    """The embedded backend, in a process of its own."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the backend did not start within 20 s")


def make_wav(path: Path, seconds: float, rate: int = 44_100) -> Path:
    """Stereo 44.1 kHz audio with some structure: two tones under an envelope, and noise."""
    t = np.arange(round(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.7 * t)
    signal = envelope * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1234 * t))
    signal += 0.05 * np.random.default_rng(1).standard_normal(len(t))
    mono = np.clip(signal * 8000, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(mono[:, None], 2, axis=1).tobytes())
    return path


class Window:
    """CPU time and audio over a steady-state window of a running Session: from its first
    captured frame (the device has started) until `frames` more were captured."""

    def __init__(self, session: Session, source: str, frames: int) -> None:
        self.session, self.source, self.frames = session, source, frames
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.began_cpu = self.start_cpu = time.process_time()
        self.start_thread = time.thread_time()
        self.start_frame = 0
        self.cpu = self.loop_cpu = 0.0
        self.unlisten = session.outbox.listen(self._changed)

    def _captured(self) -> int:
        counts = self.session.outbox.counts().get(self.source)
        return 0 if counts is None else counts.captured

    def _changed(self) -> None:
        captured = self._captured()
        if not self.started.is_set() and captured:
            self.start_cpu, self.start_frame = time.process_time(), captured
            self.start_thread = time.thread_time()  # the outbox calls back on the loop
            self.started.set()
        elif not self.finished.is_set() and captured >= self.start_frame + self.frames:
            self.cpu = time.process_time() - self.start_cpu
            self.loop_cpu = time.thread_time() - self.start_thread
            self.finished.set()
            self.unlisten()

    @property
    def startup_cpu(self) -> float:
        return self.start_cpu - self.began_cpu


async def pipeline_mic(
    url: str,
    pulse: PulseServer,
    wav: Path,
    seconds: float,
    startups: list[float],
    devices: list[float],
    binary: bool,
) -> tuple[float, float]:
    """The microphone path; `devices` gets the CPU per audio second spent outside the
    loop's thread (PortAudio's callback thread, its ALSA-over-PulseAudio client)."""
    session = Session(SessionConfig(url=url, binary_seq=binary), microphone(source="mic"))
    window = Window(session, "mic", round(seconds / FRAME_S))
    player = pulse.play(wav)
    running = asyncio.create_task(session.run())
    try:
        await asyncio.wait_for(window.finished.wait(), seconds + 30)
        await session.stop()
        await asyncio.wait_for(running, 30)
    finally:
        player.kill()
        player.wait()
    startups.append(window.startup_cpu)
    devices.append((window.cpu - window.loop_cpu) / (window.frames * FRAME_S))
    return window.cpu, window.frames * FRAME_S


async def pipeline_file(url: str, wav: Path, seconds: float, binary: bool) -> tuple[float, float]:
    session = Session(SessionConfig(url=url, binary_seq=binary), wav_file(wav, realtime=True))
    window = Window(session, "system", round(seconds / FRAME_S))
    await asyncio.wait_for(session.run(), seconds + 30)
    return window.cpu, window.frames * FRAME_S


async def plain_loop(url: str, frames: list[bytes], binary: bool) -> tuple[float, float]:
    """The least a client can do: connect, start, write paced frames, stop (it reads the
    backend's acks only at the end: they wait in the socket)."""
    session_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await _expect(ws, "connected")
        await ws.send_str(start_message(session_id, binary=binary))
        await _expect(ws, "streaming")
        loop = asyncio.get_running_loop()
        began, cpu = loop.time(), time.process_time()
        for seq, pcm in enumerate(frames):
            delay = began + (seq + 1) * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await _send_frame(ws, seq, pcm, binary)
        spent = time.process_time() - cpu
        await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
        await _until_summary(ws)
    return spent, len(frames) * FRAME_S


async def plain_mic_loop(
    url: str, pulse: PulseServer, wav: Path, seconds: float, binary: bool
) -> tuple[float, float]:
    """What a hand-written microphone client does: the same device opened the same way
    (its own rate and channels, float32, a frame's worth per callback), each block handed
    to the loop, downmixed, resampled by soxr to 16 kHz, made int16 as the session makes
    its samples (`to_int16`), cut into frames and written as `plain_loop` writes them.
    The window starts at its first frame, like the session's."""
    sd = sounddevice_module()
    info = sd.query_devices(None, "input")
    rate, channels = round(info["default_samplerate"]), min(info["max_input_channels"], 2)
    loop = asyncio.get_running_loop()
    blocks: asyncio.Queue[np.ndarray] = asyncio.Queue()

    def callback(indata: np.ndarray, frames: int, _: object, status: object) -> None:
        loop.call_soon_threadsafe(blocks.put_nowait, indata.copy())

    resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
    size = frame_samples() * 2  # bytes of a 16-bit frame
    wanted = round(seconds / FRAME_S)
    session_id = str(uuid.uuid4())
    player = pulse.play(wav)
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await _expect(ws, "connected")
            await ws.send_str(start_message(session_id, binary=binary))
            await _expect(ws, "streaming")
            stream = sd.InputStream(
                channels=channels,
                samplerate=rate,
                dtype="float32",
                blocksize=round(rate * FRAME_S),
                callback=callback,
            )
            with stream:
                pending, seq, cpu = b"", 0, 0.0
                while seq < wanted + 1:
                    try:
                        block = await asyncio.wait_for(blocks.get(), DEVICE_WAIT_S)
                    except TimeoutError:
                        raise RuntimeError(
                            f"the plain mic loop got no audio from {info['name']} "
                            f"within {DEVICE_WAIT_S:.0f} s"
                        ) from None
                    mono = block.mean(axis=1) if channels > 1 else block[:, 0]
                    out = resampler.resample_chunk(mono)
                    pending += to_int16(out).tobytes()
                    while len(pending) >= size and seq < wanted + 1:
                        pcm, pending = pending[:size], pending[size:]
                        if seq == 1:  # the first frame is out: the device has started
                            cpu = time.process_time()
                        await _send_frame(ws, seq, pcm, binary)
                        seq += 1
                spent = time.process_time() - cpu
            await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
            await _until_summary(ws)
    finally:
        player.kill()
        player.wait()
    return spent, wanted * FRAME_S


async def _send_frame(
    ws: aiohttp.ClientWebSocketResponse, seq: int, pcm: bytes, binary: bool
) -> None:
    if binary:  # v2: b"EP", version 2, source 0, seq (uint32 BE), PCM16
        await ws.send_bytes(b"EP\x02\x00" + seq.to_bytes(4, "big") + pcm)
    else:
        data = base64.b64encode(pcm).decode()
        body = {"type": "audio", "source": "system", "seq": seq, "data": data}
        await ws.send_str(json.dumps(body))


async def _until_summary(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for message in ws:
        text = message.data if message.type is aiohttp.WSMsgType.TEXT else "{}"
        if json.loads(text).get("type") == "final_summary":
            return


async def _expect(ws: aiohttp.ClientWebSocketResponse, state: str) -> None:
    while True:
        body = json.loads(await ws.receive_str())
        if body.get("type") == "status" and body.get("state") == state:
            return


async def measure(
    seconds: float,
    repetitions: int,
    work: Path,
    startups: list[float],
    devices: list[float],
    binary: bool,
) -> dict[str, list[float]]:
    pulse = start_pulse(work / "pulse")
    os.environ.update(pulse.env)  # before PortAudio loads: it lists devices once
    port = free_port()
    backend = start_backend_process(port)
    url = f"ws://127.0.0.1:{port}/ws/live-listener"
    try:
        if not list_devices():
            raise RuntimeError("PortAudio sees no input device on the test sound server")
        file_wav = make_wav(work / "audio.wav", seconds + 1)  # the window starts late
        long_wav = make_wav(work / "long.wav", seconds + 6)  # room for the device to start
        samples = read_wav(file_wav)[: round(seconds * SAMPLE_RATE)]
        size = frame_samples()
        frames = [samples[i : i + size].tobytes() for i in range(0, len(samples) - size + 1, size)]
        runs: dict[str, Run] = {
            "pipeline (mic)": lambda: pipeline_mic(
                url, pulse, long_wav, seconds, startups, devices, binary
            ),
            "pipeline (file)": lambda: pipeline_file(url, file_wav, seconds, binary),
            "plain loop": lambda: plain_loop(url, frames, binary),
            "plain mic loop": lambda: plain_mic_loop(url, pulse, long_wav, seconds, binary),
        }
        results: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for repetition in range(repetitions):
            order = names if repetition % 2 == 0 else names[::-1]  # ABC CBA ...
            for name in order:
                cpu, audio = await runs[name]()
                results[name].append(cpu / audio)
                print(
                    f"  run {repetition + 1} {name:<16} {cpu:6.3f} CPU s / {audio:5.2f} audio s"
                    f" = {cpu / audio:.4f}",
                    flush=True,
                )
        return results
    finally:
        backend.terminate()
        backend.wait(10)
        pulse.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="audio per run (default 6)")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--smoke", action="store_true", help="one short run of each variant")
    parser.add_argument("--json", action="store_true", help="JSON audio in every variant")
    add_loop_option(parser)
    args = parser.parse_args(argv)
    framing = "JSON" if args.json else "binary v2"
    seconds, repetitions = (2.0, 1) if args.smoke else (args.seconds, args.repetitions)
    print(f"machine: {machine()}")
    print(
        f"capture overhead: {repetitions} x {seconds:.0f} s of real-time audio per variant, "
        f"{framing} audio, {args.loop}"
    )
    startups: list[float] = []
    devices: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ll-bench-") as work:
        results = run_on(
            args.loop, measure(seconds, repetitions, Path(work), startups, devices, not args.json)
        )
    medians = {name: statistics.median(values) for name, values in results.items()}
    baseline = medians["plain loop"]
    print("median CPU seconds per second of audio:")
    for name, value in medians.items():
        print(f"  {name:<16} {value:.4f}  ({value / baseline:.2f}x the plain loop)")
    print(
        f"start (connecting, device start: before the first frame, not above): "
        f"median {statistics.median(startups):.2f} CPU s, max {max(startups):.2f}"
    )
    mic, file = medians["pipeline (mic)"], medians["pipeline (file)"]
    mic_baseline = medians["plain mic loop"]
    device = statistics.median(devices)
    print(
        f"  of the mic path, outside the loop's thread (PortAudio's callback thread and its "
        f"sound server client): {device:.4f} ({device / baseline:.2f}x the plain loop)"
    )
    summary(
        f"capture->socket {mic:.4f} CPU s per audio s ({mic * 100:.2f}% of a core), "
        f"{mic / baseline:.2f}x the plain loop ({baseline:.4f}), "
        f"{mic / mic_baseline:.2f}x the plain mic loop ({mic_baseline:.4f}); "
        f"of it the device's threads {device:.4f} ({device / baseline:.2f}x); "
        f"without the device {file:.4f} ({file / baseline:.2f}x); {framing}, {args.loop}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
