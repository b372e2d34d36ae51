"""coalesce in virtual time, as marble diagrams: the latest of each burst, at most once per
interval, at once after a quiet spell, the held one at the end; nothing lost."""

from __future__ import annotations

from operators.coalesce import coalesce
from tests.unit.vtime import marbles


def test_the_docstring_diagram() -> None:
    with marbles() as m:
        source = m.cold("-a-b-c-----------d--e-|")
        expected = m.exp("-a-----c---------d----(e,|)")
        assert m.start(source.pipe(coalesce(6))) == expected


def test_a_steady_stream_comes_out_once_per_interval_the_latest_each_time() -> None:
    with marbles() as m:
        source = m.cold("a-b-c-d-e-f-g--|")
        expected = m.exp("a------d------g|")
        assert m.start(source.pipe(coalesce(7))) == expected


def test_a_value_after_a_quiet_spell_comes_out_at_once() -> None:
    with marbles() as m:
        source = m.cold("a-----b-----c-|")
        expected = m.exp("a-----b-----c-|")
        assert m.start(source.pipe(coalesce(3))) == expected


def test_errors_pass_and_disposal_cancels_the_held_value() -> None:
    with marbles() as m:
        source = m.cold("a-b-#")
        expected = m.exp("a---#")
        assert m.start(source.pipe(coalesce(5))) == expected
    with marbles() as m:
        source = m.cold("a-b" + "-" * 900)  # disposed at 1000, before b's turn
        assert m.start(source.pipe(coalesce(2000))) == m.exp("a")
