"""The pool of decoder processes: bounded, reused across recognisers, failures contained."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psutil
import pytest

from backend.asr import RecognizerUnavailable
from backend.decoder_pool import DecoderPool, PooledRecognizer, PoolExhausted
from backend.decoder_worker import RecognizerError
from tests.asr.speech import speech_pcm, words


@pytest.fixture
def pool() -> Iterator[DecoderPool]:
    pool = DecoderPool(1)
    yield pool
    pool.close()


def test_the_bound_refuses_a_lease_until_one_is_released(pool: DecoderPool) -> None:
    first = pool.lease()
    with pytest.raises(PoolExhausted, match="recorded but not transcribed"):
        pool.lease()
    first.release()
    first.release()  # idempotent: the count stays right
    pool.lease().release()
    stats = pool.stats()
    assert (stats.refused, stats.leased, stats.peak_leased, stats.started) == (1, 0, 1, 0)


def test_a_process_recognises_and_is_reused(pool: DecoderPool) -> None:
    pcm = speech_pcm(5.0)  # the first sentence, whole
    first = PooledRecognizer(pool)
    finals = [h for h in first.process(pcm) + first.finish() if h.final]
    first.close()
    assert words(finals[0].text)[:4] == ["the", "weather", "is", "nice"]
    (pid,) = pool.worker_pids()

    second = PooledRecognizer(pool)  # the same process (and its decoder), a fresh stream
    again = [h for h in second.process(pcm) + second.finish() if h.final]
    second.close()
    assert [(h.text, h.t0, h.t1) for h in again] == [(h.text, h.t0, h.t1) for h in finals]
    assert pool.worker_pids() == [pid]
    stats = pool.stats()
    assert (stats.started, stats.reused, stats.leased) == (1, 1, 0)


def test_a_dead_process_fails_its_recogniser_and_is_replaced(pool: DecoderPool) -> None:
    doomed = PooledRecognizer(pool)
    doomed.process(speech_pcm(1.0))
    (pid,) = [p.pid for p in psutil.Process().children() if "decoder_worker" in p.cmdline()[2]]
    psutil.Process(pid).kill()
    with pytest.raises(RecognizerError, match="died"):
        doomed.process(speech_pcm(1.0))
    doomed.close()  # gives the lease back; the broken process is not kept
    assert pool.stats().idle == 0

    fresh = PooledRecognizer(pool)
    fresh.process(speech_pcm(1.0))
    fresh.close()
    assert pool.worker_pids()
    assert pool.worker_pids() != [pid]


def test_a_closed_pool_leases_nothing_and_stops_its_processes() -> None:
    pool = DecoderPool(2)
    recognizer = PooledRecognizer(pool)
    recognizer.process(speech_pcm(0.5))
    recognizer.close()
    (pid,) = pool.worker_pids()
    pool.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(RecognizerUnavailable):
        pool.lease()


def test_a_reused_decoder_hears_each_stream_afresh(pool: DecoderPool) -> None:
    """The decoder adapts to a voice as it listens; a new stream must not inherit that."""

    def recognise(pcm: bytes) -> list[tuple[str, float, float]]:
        recognizer = PooledRecognizer(pool)
        hypotheses = recognizer.process(pcm) + recognizer.finish()
        recognizer.close()
        return [(h.text, h.t0, h.t1) for h in hypotheses if h.final]

    speech = speech_pcm(10.0)
    samples = np.frombuffer(speech_pcm(), dtype="<i2")
    reversed_speech = samples[::-1][: 20 * 16_000].tobytes()  # a very different "voice"
    first = recognise(speech)
    recognise(reversed_speech)
    assert recognise(speech) == first
