"""Sessions outlive the backend process that held them: several `serve` instances behind
HAProxy share their sessions in Redis. Real redis-server, real HAProxy, real processes."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from pipeline.protocol import ServerEvent, Status
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.deploy.conftest import Deployment
from tests.integration.test_session import chirp, fast


async def health(port: int) -> dict[str, int]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            return json.loads(await response.text())  # type: ignore[no-any-return]


async def holder(deployment: Deployment) -> int:
    """The index of the instance with the session's live connection (waits for one)."""
    while True:
        counts = [(await health(serve.port))["connections"] for serve in deployment.serves]
        if sorted(counts) == [0, 1]:
            return counts.index(1)
        await asyncio.sleep(0.05)


async def test_a_killed_instance_s_session_resumes_on_another(two_instances: Deployment) -> None:
    deployment = two_instances
    seconds = 6.0
    session = Session(fast(deployment.proxy.url), from_samples(chirp(seconds), realtime=True))
    events: list[ServerEvent] = []
    session.events.subscribe(events.append)
    running = asyncio.get_running_loop().create_task(session.run())
    await holder(deployment)
    await asyncio.sleep(seconds / 3)
    await deployment.serves[await holder(deployment)].kill()
    report = await asyncio.wait_for(running, 60)
    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    print([e for e in events if isinstance(e, Status)])
    assert report.resets == 0 and report.resumes >= 1
    assert report.summary is not None
    received = report.summary.json["sources"]
    print(received, report)
