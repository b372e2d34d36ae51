"""A session that lost its socket gives its recogniser to a live session that needs one,
after transcribing what it heard; on resume it gets those finals. Real pocketsphinx, one
decoder for the whole backend."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import ClientSession

from backend.decoder_pool import PocketsphinxRecognizers
from pipeline.config import SessionConfig
from pipeline.protocol import ServerEvent, Status
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.asr.speech import speech_pcm, words
from tests.asr.test_decoder_bound import speech
from tests.conftest import BackendFactory
from tests.integration.fuzzing import valid_start
from tests.security.polling import until_true
from tests.security.test_ownership import messages_until


async def test_a_detached_session_hands_its_recogniser_to_a_live_one(
    make_backend: BackendFactory,
) -> None:
    async with make_backend(asr="pocketsphinx", asr_decoders=1) as backend:
        recognizers = backend.store.recognizers
        assert isinstance(recognizers, PocketsphinxRecognizers)
        async with ClientSession() as http:
            # the donor: 3 s, the first sentence cut short, every frame acknowledged; gone
            ws = await http.ws_connect(backend.url)
            await ws.send_str(valid_start("donor"))
            first = (await messages_until(ws, "streaming"))[-1]
            pcm = speech_pcm(3.0)
            for seq in range(len(pcm) // 640):
                data = base64.b64encode(pcm[seq * 640 : (seq + 1) * 640]).decode()
                await ws.send_str(json.dumps({"type": "audio", "data": data, "seq": seq}))
            acked = -1
            while acked < len(pcm) // 640 - 1:
                acked = (await messages_until(ws, "ack"))[-1]["seq"]
            await ws.close()
            await until_true(lambda: len(backend.store.detached) == 1)
            assert recognizers.pool.stats().leased == 1

            live = Session(
                SessionConfig(url=backend.url), from_samples(speech(6.0), realtime=False)
            )
            events: list[ServerEvent] = []
            live.events.subscribe(events.append)
            report = await asyncio.wait_for(live.run(), 60)

            ws = await http.ws_connect(backend.url)
            resume = {"system": len(pcm) // 640}
            await ws.send_str(valid_start("donor", resume=resume, secret=first["resume_token"]))
            replayed = await messages_until(ws, "streaming")
            replayed += await messages_until(ws, "asr_final")
            await ws.close()

    assert report.outcome == "completed" and report.frames_lost == 0
    assert not [e for e in events if isinstance(e, Status) and e.state == "no_asr_provider"]
    assert words(report.text)[:4] == ["the", "weather", "is", "nice"]
    assert report.summary is not None
    assert report.summary.json["sources"]["system"]["recognizer"] is True
    # the donor's sentence in progress was finished, not lost, and waits for its resume
    assert next(m for m in replayed if m.get("state") == "streaming")["resumed"] is True
    assert words(replayed[-1]["text"])[:3] == ["the", "weather", "is"]
