"""Files stay where they belong: hostile session ids all land inside the record dir, each in
a directory no other id maps to, and nothing that exists is truncated."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from aiohttp import ClientSession

from backend.record_path import session_dir, session_dir_name
from backend.recording import recorded_pcm
from tests.conftest import BackendFactory
from tests.integration.fuzzing import valid_start
from tests.security.polling import until_true
from tests.security.test_ownership import messages_until

# the backend takes ids of up to 128 characters; longer ones are refused at `start`
HOSTILE = ["..", "../../x", ".", "a/b", "a_b", "x" * 128, "x" * 127 + "y", "ünï/cödé", "\u202e"]


def test_hostile_ids_map_to_distinct_children_of_the_root(tmp_path: Path) -> None:
    ids = [*HOSTILE, "x" * 200, "x" * 199 + "y"]
    dirs = [session_dir(tmp_path, session_id) for session_id in ids]
    assert all(path.parent == tmp_path for path in dirs)
    assert len({path.name for path in dirs}) == len(ids)
    assert all(not name.startswith(".") for name in map(session_dir_name, HOSTILE))
    assert session_dir(tmp_path, "a/b", 1) not in dirs


async def test_hostile_ids_record_inside_the_record_dir_and_truncate_nothing(
    tmp_path: Path, make_backend: BackendFactory
) -> None:
    outer = tmp_path / "outer"
    root = outer / "records"
    root.mkdir(parents=True)
    bait = outer / "system.wav"  # what `..` once overwrote
    bait.write_bytes(b"keep me")
    async with make_backend(record_dir=root) as backend:
        async with ClientSession() as http:
            for number, session_id in enumerate(HOSTILE):
                ws = await http.ws_connect(backend.url)
                await ws.send_str(valid_start(session_id, v03=False))
                await messages_until(ws, "streaming")
                pcm = bytes([number + 1]) * 640
                audio = {"type": "audio", "data": base64.b64encode(pcm).decode()}
                await ws.send_str(json.dumps(audio))
                await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
                await messages_until(ws, "final_summary")
                await ws.close()
        await until_true(lambda: not backend.store.sessions)
    assert bait.read_bytes() == b"keep me"
    assert sorted(p.name for p in outer.iterdir()) == ["records", "system.wav"]
    assert len(list(root.iterdir())) == len(HOSTILE)
    for number, session_id in enumerate(HOSTILE):
        assert recorded_pcm(root, session_id) == bytes([number + 1]) * 640
