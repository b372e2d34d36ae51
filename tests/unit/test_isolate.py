"""isolate: a raising subscriber is detached and reported; the stream and others go on."""

from __future__ import annotations

from reactivex.subject import Subject

from operators.isolate import isolate


def test_a_raising_subscriber_is_detached_and_the_others_go_on() -> None:
    reported: list[Exception] = []
    source: Subject[int] = Subject()
    guarded = source.pipe(isolate(reported.append))
    healthy: list[int] = []

    def fragile(item: int) -> None:
        if item == 2:
            raise ValueError("a bug in a callback")

    guarded.subscribe(fragile)
    guarded.subscribe(healthy.append)
    for item in (1, 2, 3):
        source.on_next(item)  # would raise into the producer without isolate

    assert healthy == [1, 2, 3]
    assert [str(e) for e in reported] == ["a bug in a callback"]


def test_without_isolation_the_producer_would_see_the_error() -> None:
    source: Subject[int] = Subject()

    def fragile(_: int) -> None:
        raise ValueError("boom")

    source.subscribe(fragile)
    try:
        source.on_next(1)
    except ValueError:
        raised = True
    else:
        raised = False
    assert raised  # the reason `isolate` exists


def test_errors_and_completion_pass_through() -> None:
    source: Subject[int] = Subject()
    seen: list[str] = []
    source.pipe(isolate(lambda e: None)).subscribe(
        on_error=lambda e: seen.append(f"error {e}"), on_completed=lambda: seen.append("done")
    )
    source.on_error(RuntimeError("upstream"))
    assert seen == ["error upstream"]
