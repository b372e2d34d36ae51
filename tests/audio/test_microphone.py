"""Real capture: PulseAudio null sink -> PortAudio -> microphone() -> Session -> backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops

from backend.recording import recorded_pcm
from pipeline import (
    AudioDeviceError,
    AudioFrame,
    Session,
    SessionConfig,
    find_device,
    list_devices,
    microphone,
    read_wav,
    wav_file,
)
from pipeline.audio import SAMPLE_RATE
from pipeline.status import AudioLevel
from tests.audio.pulse import PulseServer
from tests.audio.signals import active_span, similarity
from tests.conftest import BackendFactory


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


def pcm_array(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


async def test_played_speech_is_captured_and_delivered_intact(
    pulse: PulseServer, speech_wav: Path, make_backend: BackendFactory, record_dir: Path
) -> None:
    """paplay -> null sink -> its monitor -> PortAudio -> microphone() -> Session -> the
    embedded backend, next to a file streamed as `system` in the same session."""
    played = read_wav(speech_wav).astype(np.float64)
    system_frames: list[AudioFrame] = []
    levels: list[AudioLevel] = []
    audio: Observable[AudioFrame] = reactivex.merge(
        microphone(source="mic"),
        wav_file(speech_wav, source="system").pipe(ops.do_action(system_frames.append)),
    )
    async with make_backend() as backend:
        session = Session(SessionConfig(url=backend.url), audio)
        session.status.subscribe(
            lambda event: levels.append(event) if isinstance(event, AudioLevel) else None
        )
        running = asyncio.create_task(session.run())
        began = asyncio.get_running_loop().time()

        def mic_captured() -> int:
            counts = session.outbox.counts().get("mic")
            return 0 if counts is None else counts.captured

        await until(lambda: mic_captured() > 0, 10, "the device delivers audio")
        player = pulse.play(speech_wav)
        await until(lambda: player.poll() is not None, 30, "paplay finishes")
        assert player.returncode == 0, player.stderr.read() if player.stderr else b""
        await asyncio.sleep(0.5)  # the tail still in the device's buffers
        await session.stop()
        report = await asyncio.wait_for(running, 20)
        elapsed = asyncio.get_running_loop().time() - began

    mic = report.audio["mic"]
    assert mic.dropped == mic.unconfirmed == 0
    assert mic.captured == mic.sent == mic.acked
    recorded_pcm_mic = recorded_pcm(record_dir, session.ids.session_id, "mic")
    assert len(recorded_pcm_mic) == mic.captured * 640  # every captured frame, once

    recorded = pcm_array(recorded_pcm_mic)
    score, offset = similarity(recorded, played)
    assert score > 0.9, f"cross-correlation {score:.3f}"
    seconds = len(played) / SAMPLE_RATE
    tolerance = round(seconds) * 320  # one 20 ms frame per second of audio
    span_recorded = active_span(recorded[offset : offset + len(played) + SAMPLE_RATE])
    assert abs(span_recorded - active_span(played)) <= tolerance

    # the file went alongside, as its own stream, untouched
    system = recorded_pcm(record_dir, session.ids.session_id, "system")
    assert system == b"".join(frame.pcm for frame in system_frames)
    assert [f.seq for f in system_frames] == list(range(len(system_frames)))

    # levels reached the state, for both sources, at a UI's pace
    assert set(session.current.levels) == {"mic", "system"}
    mic_levels = [level for level in levels if level.source == "mic"]
    # the meter ticks on the loop's clock: at most one level per tick over the session's
    # life measured on that same clock (a busy machine measures a longer life), and the
    # last window's level when the source ends
    interval = session.config.level_interval
    assert interval is not None
    ticks = elapsed / interval
    assert 0 < len(mic_levels) <= ticks + 2
    assert max(level.peak_dbfs for level in mic_levels) > -30  # the speech, not silence


def test_devices_are_listed_and_found_by_name_or_index(pulse: PulseServer) -> None:
    devices = list_devices()
    assert devices, "the null sink's monitor should appear as an input"
    assert sum(device.default for device in devices) == 1
    first = devices[0]
    assert find_device(first.index) == first
    assert find_device(first.name) == first
    assert find_device(None).default
    assert first.name in first.describe()


@pytest.mark.parametrize("spec", ["no such device", 999])
async def test_an_unknown_device_names_the_ones_there_are(
    pulse: PulseServer, spec: str | int
) -> None:
    with pytest.raises(AudioDeviceError) as caught:
        find_device(spec)
    message = str(caught.value)
    assert repr(spec) in message
    assert all(device.name in message for device in list_devices())
    assert "--device" in message

    errors: list[Exception] = []
    microphone(spec).subscribe(on_error=errors.append)
    assert len(errors) == 1
    assert isinstance(errors[0], AudioDeviceError)
    assert str(errors[0]) == message


async def test_a_known_tone_comes_back_at_its_frequency(
    pulse: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's 1234 Hz sine source, recorded at 48 kHz stereo, arrives as 16 kHz mono."""
    monkeypatch.setenv("PULSE_SOURCE", "sine")
    frames: list[AudioFrame] = []
    errors: list[Exception] = []
    subscription = microphone(samplerate=48_000, channels=2).subscribe(frames.append, errors.append)
    try:
        await until(lambda: len(frames) >= 50 or bool(errors), 10, "a second of the tone")
    finally:
        subscription.dispose()
    assert not errors
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert all(len(f.samples) == 320 and f.source == "mic" for f in frames)
    samples = np.concatenate([f.samples for f in frames[-50:]]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(samples)
    assert abs(peak_hz - 1234) <= 2
    assert np.sqrt(np.mean(samples**2)) > 1000  # a real signal, not silence


async def test_disposal_stops_capture(pulse: PulseServer) -> None:
    frames: list[AudioFrame] = []
    subscription = microphone().subscribe(frames.append)
    await until(lambda: len(frames) > 5, 10, "capture starts")
    subscription.dispose()
    await asyncio.sleep(0.05)
    after = len(frames)
    await asyncio.sleep(0.3)
    assert len(frames) == after
