"""Sessions outlive the backend process that held them: several `serve` instances behind
HAProxy share their sessions in Redis. Real redis-server, real HAProxy, real processes."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import numpy as np

from backend.config import BackendConfig
from pipeline.audio import BYTES_PER_SECOND, FRAME_SAMPLES
from pipeline.protocol import Ack, AsrFinal, ServerEvent
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.asr.speech import speech_pcm
from tests.deploy.conftest import Deployment
from tests.deploy.one_copy import check_one_transcript, check_recorded_once
from tests.integration.test_session import chirp, fast
from tests.security.polling import until_true

TAKEN_OVER = "session taken over by another instance; this copy stops"
BUSY = "session store unavailable"
LATE = 2.0  # seconds before Redis is back that a new session begins
SPOKEN = 14.0  # the first sentences of the bundled recording


async def connections(port: int) -> int:
    url = f"http://127.0.0.1:{port}/healthz"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return int((await response.json())["connections"])


async def holder(deployment: Deployment, among: list[int] | None = None) -> int:
    """The index of the instance holding the session's live connection (waits for one)."""
    among = among if among is not None else list(range(len(deployment.serves)))
    while True:
        counts = [await connections(deployment.serves[i].port) for i in among]
        if sorted(counts) == [0] * (len(among) - 1) + [1]:
            return among[counts.index(1)]
        await asyncio.sleep(0.05)


def check_complete(report: SessionReport, sent: bytes, reconnects: int = 1) -> None:
    """Every frame delivered once, every reconnect a resume, the backend holds every byte
    sent (`received_s` is the backend's byte count over BYTES_PER_SECOND)."""
    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    assert report.resets == 0 and report.resumes == report.reconnects >= reconnects
    assert report.summary is not None
    (counts,) = report.summary.json["sources"].values()
    assert counts["received_s"] == round(len(sent) / BYTES_PER_SECOND, 3)
    assert counts["gaps"] == 0


async def test_a_killed_instance_s_session_resumes_on_another(two_instances: Deployment) -> None:
    seconds, samples = 4.0, chirp(4.0)
    proxy_url = two_instances.proxy.url
    session = Session(fast(proxy_url), from_samples(samples, realtime=True))
    running = asyncio.get_running_loop().create_task(session.run())
    owner = await holder(two_instances)
    await asyncio.sleep(seconds / 3)
    await two_instances.serves[owner].kill()
    report = await asyncio.wait_for(running, 60)
    check_complete(report, samples.tobytes())
    assert report.resumes == 1
    # what the killed one recorded but never acknowledged, the other recorded again: once
    check_recorded_once(two_instances.record_dirs, session.ids.session_id, samples.tobytes())


async def test_a_frozen_owner_cannot_write_after_another_took_over(
    speech_instances: Deployment,
) -> None:
    deployment, sent = speech_instances, speech_pcm(SPOKEN)
    samples = np.frombuffer(sent, dtype=np.int16)
    # a heartbeat of 2 s finds the frozen owner within 3 s, and a loop that stalls under
    # the suite's load for half a second (a pong due in 0.5 s with 1 s) moves no session
    config = fast(deployment.proxy.url, heartbeat=2.0)
    session = Session(config, from_samples(samples, realtime=True))
    events: list[ServerEvent] = []
    session.events.subscribe(events.append)
    running = asyncio.get_running_loop().create_task(session.run())
    await until_true(lambda: any(isinstance(e, AsrFinal) for e in events), 0.05)
    old = await holder(deployment)  # the instance holding it now, which the freeze is for
    deployment.serves[old].signal(signal.SIGSTOP)  # half dead: holds the socket, silent
    new = 1 - old
    await holder(deployment, [new])  # the client resumed on the other instance
    deployment.serves[old].signal(signal.SIGCONT)  # it wakes up believing it owns it
    report = await asyncio.wait_for(running, SPOKEN + 60)
    check_complete(report, sent)
    old_log, new_log = deployment.serves[old].log, deployment.serves[new].log
    assert old_log is not None and new_log is not None
    # the stale copy reads what was in its socket, writes it, and the token refuses it
    await asyncio.wait_for(until_true(lambda: TAKEN_OVER in old_log.read_text(), 0.05), 30)
    assert old_log.read_text().count(TAKEN_OVER) == 1 and TAKEN_OVER not in new_log.read_text()
    check_recorded_once(deployment.record_dirs, session.ids.session_id, sent)
    check_one_transcript(report, events)


async def test_redis_down_for_ten_seconds_loses_no_acknowledged_frame(
    two_instances: Deployment,
) -> None:
    """Acks stop while Redis is down and a new session is refused as busy; once it is back
    the instance holding the session dies, and the next one finds every acked frame."""
    outage, samples, late_samples = 10.0, chirp(16.0), chirp(1.0)
    url, logs = two_instances.proxy.url, [s.log for s in two_instances.serves if s.log]
    session = Session(fast(url), from_samples(samples, realtime=True))
    phase = ["before"]
    acks: dict[str, list[int]] = {"before": [], "down": [], "settled": [], "after": []}
    session.events.subscribe(lambda e: acks[phase[0]].append(e.seq) if isinstance(e, Ack) else None)
    loop = asyncio.get_running_loop()
    running = loop.create_task(session.run())
    owner = await holder(two_instances)
    await asyncio.sleep(1.0)
    await two_instances.redis.stop()
    phase[0] = "down"
    await asyncio.sleep(10 * BackendConfig.ack_interval)  # acks of frames already kept
    phase[0] = "settled"
    await asyncio.sleep(outage - 10 * BackendConfig.ack_interval - LATE)
    # a session that begins now (ending within its client's stop timeout of the restart)
    late = Session(fast(url), from_samples(late_samples, realtime=False))
    late_running = loop.create_task(late.run())
    await asyncio.sleep(LATE)
    assert any(BUSY in log.read_text() for log in logs)
    assert not late_running.done()  # refused as busy: its client keeps trying
    phase[0] = "after"
    await two_instances.redis.start()  # the append-only file brings back every write
    await until_true(lambda: bool(acks["after"]), 0.02)
    # the late session ends first: killed while it stops, the instance holding it would
    # take its final summary along (the client would say so: `errors.SummaryLost`)
    late_report = await asyncio.wait_for(late_running, 60)
    assert not running.done()
    await two_instances.serves[owner].kill()  # only Redis has the session now
    report = await asyncio.wait_for(running, 60)
    check_complete(report, samples.tobytes())
    assert acks["before"] and acks["settled"] == []  # nothing acked that Redis did not hold
    assert max(acks["after"]) == len(samples) // FRAME_SAMPLES - 1  # the last frame's seq
    check_recorded_once(two_instances.record_dirs, session.ids.session_id, samples.tobytes())
    assert late_report.outcome == "completed" and late_report.frames_lost == 0, late_report
    assert late_report.summary is not None
    late_counts = late_report.summary.json["sources"]["system"]
    assert late_counts["received_s"] == round(late_samples.nbytes / BYTES_PER_SECOND, 3)
