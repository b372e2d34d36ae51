"""How many finals a resumed client has: counted on the session, carried in `start`,
read by the backend, and what the backend then sends again. No socket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backend.config import BackendConfig
from backend.replay import finals_to_replay
from backend.session_state import MemoryLog, Saved, SavedSource
from backend.store import REPLAYED, BackendSession
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds
from pipeline.link import Carryover, LinkProtocol, SendStart
from pipeline.outbox import Outbox
from pipeline.protocol import Start, Status, decode_finals_received, encode_start
from tests.security.labeller import Labeller


def test_start_carries_the_finals_received_only_when_given() -> None:
    plain = json.loads(encode_start(Start(session_id="s", attempt_id="a", connection_id="c")))
    assert "finals_received" not in plain
    counted = Start(
        session_id="s", attempt_id="a", connection_id="c", finals_received={"system": 17}
    )
    assert json.loads(encode_start(counted))["finals_received"] == {"system": 17}
    none_yet = Start(session_id="s", attempt_id="a", connection_id="c", finals_received={})
    assert json.loads(encode_start(none_yet))["finals_received"] == {}  # "none", not absent


def test_the_backend_reads_back_what_the_client_encoded() -> None:
    start = Start(
        session_id="s", attempt_id="a", connection_id="c", finals_received={"system": 3, "mic": 0}
    )
    assert decode_finals_received(json.loads(encode_start(start))) == {"system": 3, "mic": 0}
    assert decode_finals_received({"finals_received": {"microphone": 2}}) == {"mic": 2}
    assert decode_finals_received({"finals_received": {"elsewhere": 2}}) == {}


@pytest.mark.parametrize(
    "value",
    [None, [], "17", 17, {"system": -1}, {"system": 1.5}, {"system": True}, {"system": "3"}],
)
def test_a_count_that_is_not_one_is_as_if_absent(value: object) -> None:
    body: dict[str, Any] = {} if value is None else {"finals_received": value}
    assert decode_finals_received(body) is None


def link(memo: Carryover) -> LinkProtocol:
    config = SessionConfig(url="ws://127.0.0.1:1/ws")
    ids = SessionIds(session_id="s", attempt_id="a")
    return LinkProtocol(config, ids, Outbox(), memo, connection_id="c", clock=lambda: 0.0)


def start_of(proto: LinkProtocol) -> Start:
    proto.opened()
    actions = proto.event_received(Status(state="connected"))
    send = actions[-1]
    assert isinstance(send, SendStart)
    return send.start


def test_a_resume_says_how_many_finals_came_and_a_new_backend_session_counts_afresh() -> None:
    memo = Carryover()
    first = link(memo)
    assert start_of(first).finals_received is None  # nothing to resume yet
    first.event_received(Status(state="streaming", resumed=False))
    for source in ("system", "system", "mic"):
        memo.final_received(source)

    resuming = link(memo)
    assert start_of(resuming).finals_received == {"system": 2, "mic": 1}
    resuming.event_received(Status(state="streaming", resumed=True, next_seq={}))
    memo.final_received("system")
    assert memo.finals_received == {"system": 3, "mic": 1}

    reset = link(memo)
    assert start_of(reset).finals_received == {"system": 3, "mic": 1}
    reset.event_received(Status(state="streaming", resumed=False))  # its finals count from 1
    assert memo.finals_received == {}
    assert start_of(link(memo)).finals_received == {}


def test_a_v02_client_says_nothing_of_finals() -> None:
    memo = Carryover(streamed=True, finals_received={"system": 4})
    config = SessionConfig(url="ws://127.0.0.1:1/ws", protocol="0.2")
    ids = SessionIds(session_id="s", attempt_id="a")
    proto = LinkProtocol(config, ids, Outbox(), memo, connection_id="c", clock=lambda: 0.0)
    assert start_of(proto).finals_received is None


def finals(source: str, count: int) -> list[dict[str, Any]]:
    return [
        {"type": "asr_final", "source": source, "segment_id": f"{source}-{n}", "t1": float(n)}
        for n in range(1, count + 1)
    ]


def ids(replayed: list[dict[str, Any]]) -> list[str]:
    return [final["segment_id"] for final in replayed]


KEPT = {"system": finals("system", 5), "mic": finals("mic", 3)}


def test_only_the_finals_after_those_received_are_sent_again() -> None:
    replayed = finals_to_replay(KEPT, {"system": 5, "mic": 3}, {"system": 3, "mic": 3})
    assert ids(replayed) == ["system-4", "system-5"]
    # a source the client does not name: it has none of its finals
    assert ids(finals_to_replay(KEPT, {"system": 5, "mic": 3}, {"system": 5})) == [
        "mic-1",
        "mic-2",
        "mic-3",
    ]


def test_a_final_not_yet_released_is_not_sent_ahead_of_its_turn() -> None:
    # system-5 is recognised but still being kept (shared store): it goes out by itself
    assert ids(finals_to_replay(KEPT, {"system": 4, "mic": 3}, {"system": 2, "mic": 3})) == [
        "system-3",
        "system-4",
    ]


def test_a_client_claiming_more_than_was_sent_gets_nothing_extra() -> None:
    lying = {"system": 10**18, "mic": 4}
    assert finals_to_replay(KEPT, {"system": 5, "mic": 3}, lying) == []
    assert finals_to_replay({}, {}, lying) == []  # nothing recognised yet


async def test_a_session_taken_up_from_the_shared_store_replays_after_the_count() -> None:
    # what another instance left in the store: six finals sent; then a resume here
    def taken_up() -> BackendSession:
        session = BackendSession("s", True, BackendConfig(), Labeller, None)
        source = SavedSource(next_seq=300, keep_from=300, frame_bytes=640)
        source.finals = finals("system", 6)
        session.restore(Saved(MemoryLog(), {"system": source}))
        return session

    counted, uncounted = taken_up(), taken_up()
    try:
        replayed = counted.attach(object(), lambda message: None, {"system": 1})
        assert ids(replayed) == ["system-2", "system-3", "system-4", "system-5", "system-6"]
        # a client that does not count: the last few, as before
        legacy = uncounted.attach(object(), lambda message: None)
        assert ids(legacy) == [f"system-{n}" for n in range(7 - REPLAYED, 7)]
    finally:
        await counted.close()
        await uncounted.close()
