"""A real deployment on loopback: redis-server, HAProxy and `serve` processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.deploy.deploy import HAProxy, Redis, Serve, free_ports


@dataclass
class Deployment:
    redis: Redis
    serves: list[Serve]
    proxy: HAProxy

    @property
    def record_dirs(self) -> list[Path]:
        return [serve.record_dir for serve in self.serves if serve.record_dir is not None]


def record_dir(tmp_path: Path, index: int) -> Path:
    """Each instance records into a directory of its own, as on separate machines."""
    return tmp_path / f"record-{index}"


async def deploy(tmp_path: Path, instances: int, *options: str) -> Deployment:
    redis_port, proxy_port, *ports = free_ports(2 + instances)
    redis = Redis(redis_port, tmp_path / "redis")
    await redis.start()
    serves = [
        Serve(port, redis.url, options, log=tmp_path / f"serve-{i}.log",
              record_dir=record_dir(tmp_path, i))
        for i, port in enumerate(ports)
    ]  # fmt: skip
    proxy = HAProxy(proxy_port, ports, tmp_path / "haproxy")
    deployment = Deployment(redis, serves, proxy)
    try:
        await asyncio.gather(*(serve.start() for serve in serves))  # in parallel: faster
        await proxy.start()
    except BaseException:
        await undeploy(deployment)
        raise
    return deployment


async def undeploy(deployment: Deployment) -> None:
    await deployment.proxy.stop()
    await asyncio.gather(*(serve.stop() for serve in deployment.serves))
    await deployment.redis.stop()


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two `serve --asr none` instances behind HAProxy, one Redis."""
    deployment = await deploy(tmp_path, 2, "--asr", "none", "--shutdown-grace", "1")
    try:
        yield deployment
    finally:
        await undeploy(deployment)


SPEECH_OPTIONS = ("--asr", "pocketsphinx", "--asr-decoders", "1", "--shutdown-grace", "5")


@pytest.fixture
async def speech_instances(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two `serve --asr pocketsphinx` instances behind HAProxy, one Redis."""
    deployment = await deploy(tmp_path, 2, *SPEECH_OPTIONS)
    try:
        yield deployment
    finally:
        await undeploy(deployment)


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[Redis]:
    (port,) = free_ports(1)
    redis = Redis(port, tmp_path / "redis")
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()
