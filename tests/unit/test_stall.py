"""The v0.2 stall rule: a barrier unanswered for max(1 s, 4 x the round trip) is a stall."""

from __future__ import annotations

import pytest

from pipeline.stall import BarrierWatch


def test_without_a_measured_round_trip_the_floor_applies() -> None:
    watch = BarrierWatch()
    assert watch.bound == 1.0 and not watch.stalled(100.0)  # nothing out: never stalled
    watch.sent(1, now=10.0)
    assert not watch.stalled(10.999)
    assert watch.stalled(11.0)


def test_the_bound_follows_the_measured_round_trip() -> None:
    watch = BarrierWatch()
    watch.sent(1, now=0.0)
    assert watch.answered(1, now=0.5) == [1]
    assert watch.rtt == 0.5 and watch.bound == 2.0
    watch.sent(2, now=1.0)
    assert not watch.stalled(2.9) and watch.stalled(3.0)


def test_a_pong_answers_every_earlier_barrier() -> None:
    watch = BarrierWatch()
    for number in range(1, 5):
        watch.sent(number, now=number * 0.01)
    assert watch.answered(3, now=0.05) == [1, 2, 3]
    assert watch.outstanding == 1
    assert watch.stalled_since() == pytest.approx(0.04 + watch.bound)


def test_the_round_trip_is_smoothed() -> None:
    watch = BarrierWatch()
    watch.sent(1, now=0.0)
    watch.answered(1, now=0.1)
    watch.sent(2, now=1.0)
    watch.answered(2, now=1.9)  # one slow answer moves the estimate by an eighth
    assert watch.rtt == pytest.approx(0.1 + (0.9 - 0.1) / 8)


def test_an_unknown_pong_answers_nothing_and_measures_nothing() -> None:
    watch = BarrierWatch()
    watch.sent(5, now=0.0)
    assert watch.answered(4, now=0.1) == [] and watch.rtt is None
    assert watch.outstanding == 1
