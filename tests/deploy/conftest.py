"""A real deployment on loopback: redis-server, HAProxy and `serve` processes."""

from __future__ import annotations

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


async def deploy(tmp_path: Path, instances: int, *options: str) -> Deployment:
    redis_port, proxy_port, *ports = free_ports(2 + instances)
    redis = Redis(redis_port, tmp_path / "redis")
    await redis.start()
    serves = [
        Serve(port, redis.url, options, log=tmp_path / f"serve-{i}.log")
        for i, port in enumerate(ports)
    ]
    for serve in serves:
        await serve.start()
    proxy = HAProxy(proxy_port, ports, tmp_path / "haproxy")
    await proxy.start()
    return Deployment(redis, serves, proxy)


async def undeploy(deployment: Deployment) -> None:
    await deployment.proxy.stop()
    for serve in deployment.serves:
        await serve.stop()
    await deployment.redis.stop()


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two `serve --asr none` instances behind HAProxy, one Redis."""
    deployment = await deploy(tmp_path, 2, "--asr", "none", "--shutdown-grace", "1")
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
