"""Regenerate speech.wav and speech.txt: English sentences spoken by Debian's `flite`.

    python backend/samples/make_speech.py

The recording is 16 kHz mono PCM16 with a pause between sentences, and its length is a
whole number of 20 ms frames, so tests can stream it frame by frame without a remainder.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from pipeline.audio import FRAME_SAMPLES as FRAME
from pipeline.audio import SAMPLE_RATE as RATE

VOICE = "rms"  # the flite voice pocketsphinx recognises best
LEAD_S, PAUSE_S, TAIL_S = 0.5, 1.2, 1.0
SENTENCES = (
    "The weather is nice today and we will go for a walk in the park.",
    "Please send the report to the team before the meeting on Monday.",
    "I would like a cup of coffee with milk and no sugar.",
    "The train to the city leaves at nine in the morning.",
    "We need to buy bread, eggs and fresh fruit from the market.",
    "She opened the window because the room was too warm.",
    "My brother is reading a book about the history of music.",
    "Can you help me find the keys to the car?",
    "The children played in the garden until it was dark.",
    "Thank you for coming, and have a good evening.",
)
HERE = Path(__file__).resolve().parent


def speak(text: str, workdir: Path) -> np.ndarray:
    """One sentence as int16 samples at 16 kHz."""
    out = workdir / "sentence.wav"
    subprocess.run(["flite", "-voice", VOICE, "-t", text, "-o", str(out)], check=True)
    with wave.open(str(out), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
            raise SystemExit(f"flite gave {wav.getparams()}, expected 16 kHz mono 16-bit")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype="<i2")


def main() -> None:
    parts = [silence(LEAD_S)]
    with tempfile.TemporaryDirectory() as tmp:
        for index, sentence in enumerate(SENTENCES):
            if index:
                parts.append(silence(PAUSE_S))
            parts.append(speak(sentence, Path(tmp)))
    parts.append(silence(TAIL_S))
    audio = np.concatenate(parts)
    audio = np.concatenate([audio, silence((-len(audio) % FRAME) / RATE)])
    assert len(audio) % FRAME == 0
    with wave.open(str(HERE / "speech.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(audio.tobytes())
    (HERE / "speech.txt").write_text("\n".join(SENTENCES) + "\n")
    print(f"speech.wav: {len(audio) / RATE:.2f} s, {len(SENTENCES)} sentences")


if __name__ == "__main__":
    main()
