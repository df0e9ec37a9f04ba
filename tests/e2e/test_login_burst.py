"""A burst of logins on a real ``login`` process stays inside its Knative Service's memory limit."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import psutil
import pytest

from quill_tools.deploy.spec import by_name
from tests.e2e.conftest import Running, wait_ready

pytestmark = pytest.mark.e2e

_UNITS = {"Mi": 1024**2, "Gi": 1024**3}


def _bytes(quantity: str) -> int:
    return int(quantity[:-2]) * _UNITS[quantity[-2:]]


def test_50_concurrent_logins_keep_rss_under_the_memory_limit(start_quill: Any, machine_env: dict[str, str]) -> None:
    env = {**machine_env, "RATE_LIMIT_LOGIN_ACCOUNT": "0", "RATE_LIMIT_LOGIN_IP": "0", "LOG_LEVEL": "warning"}
    login: Running = start_quill("serve", "login", env=env)
    wait_ready(login)
    user = {"username": "burst", "email": "burst@example.com", "password": "correct horse battery"}
    assert httpx.post(login.base_url + "/api/users", json={"user": user}).status_code == 201

    process = psutil.Process(login.process.pid)
    peak, done = process.memory_info().rss, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(0.01)

    async def burst() -> list[int]:
        body = {"user": {"email": user["email"], "password": user["password"]}}
        async with httpx.AsyncClient(base_url=login.base_url, timeout=30) as client:
            answers = await asyncio.gather(*(client.post("/api/users/login", json=body) for _ in range(50)))
        return [answer.status_code for answer in answers]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        statuses = asyncio.run(burst())
    finally:
        done.set()
        sampler.join()

    assert statuses == [200] * 50
    print(f"login: 50 concurrent logins, peak RSS {peak / 2**20:.0f} MiB")
    limit = _bytes(by_name("login").memory_limit)
    # Two hashes of 19 MiB at a time: far below the limit, whatever the node's CPU count.
    assert peak < limit, f"peak RSS {peak / 2**20:.0f} MiB over the limit {limit / 2**20:.0f} MiB"
