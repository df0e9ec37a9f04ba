"""Real processes: ``quill dev`` and ``quill serve`` started as a user would, over TCP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from quill.settings import Settings
from tests.conftest import Servers, free_port

QUILL = str(Path(sys.executable).with_name("quill"))


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines the process logged (its other output, such as the banner, skipped)."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


def wait_ready(running: Running, timeout: float = 60) -> float:
    """Seconds until ``/health/readiness`` first answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if running.process.poll() is not None:
            raise AssertionError(f"process exited early:\n{running.output()}")
        try:
            if httpx.get(running.base_url + "/health/readiness", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"not ready after {timeout}s:\n{running.output()}")


def stop(running: Running) -> int:
    running.process.send_signal(signal.SIGINT)
    try:
        return running.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        running.process.kill()
        return running.process.wait()


@pytest.fixture
def start_quill(tmp_path: Path) -> Iterator[object]:
    started: list[Running] = []

    def start(*args: str, env: dict[str, str], port: int | None = None) -> Running:
        port = port or free_port()
        log = tmp_path / f"quill-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [QUILL, *args, "--port", str(port)],
                env={**env, "PATH": os.environ.get("PATH", "")},
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        running = Running(process, f"http://127.0.0.1:{port}", log)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            stop(running)


@pytest.fixture
def machine_env(servers: Servers, settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The session's database (emptied for this test by ``settings``) and a fresh Redis prefix."""
    return {
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "REDIS_PREFIX": settings.redis_prefix,
        "JWT_DEV_KEY_PATH": str(tmp_path / "dev-key.pem"),
        "HOME": str(tmp_path),
    }
