"""Shared benchmark plumbing: a throwaway database, a ``quill`` process, percentiles."""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

__all__ = [
    "Scratch",
    "Server",
    "free_port",
    "migrated_scratch",
    "percentile",
    "running",
    "scratch_database",
    "spawn",
    "start_quill",
    "summary",
    "wait_until_ok",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "min": min(values, default=float("nan")),
        "max": max(values, default=float("nan")),
    }


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A fresh database for one run, dropped afterwards."""
    name = f"quill_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield str(psycopg.conninfo.make_conninfo(admin_url, dbname=name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _bench_env(database_url: str, redis_url: str, folder: Path, suite: str) -> dict[str, str]:
    """The environment a benchmarked ``quill`` runs with: its own Redis prefix and dev key,
    and no rate limits (the load comes from one address and a few accounts)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"bench-{suite}-{os.getpid()}:",
        "RATE_LIMIT_WRITES": "0",
        "RATE_LIMIT_LOGIN_IP": "0",
        "RATE_LIMIT_LOGIN_ACCOUNT": "0",
        "JWT_DEV_KEY_PATH": str(folder / "dev.pem"),
    }


@dataclass(frozen=True)
class Scratch:
    database_url: str
    env: dict[str, str]
    folder: Path


@contextmanager
def migrated_scratch(admin_url: str, redis_url: str, suite: str) -> Iterator[Scratch]:
    """A migrated scratch database, a temp folder, and the env a benchmarked quill runs with."""
    import tempfile

    from quill.migrate import migrate

    with scratch_database(admin_url) as database_url, tempfile.TemporaryDirectory() as folder:
        migrate(database_url)
        yield Scratch(database_url, _bench_env(database_url, redis_url, Path(folder), suite), Path(folder))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_until_ok(
    url: str,
    process: subprocess.Popen[bytes],
    *,
    timeout: float = 60,
    poll: float = 0.02,
    client: httpx.Client | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail if the process exits or ``timeout`` passes.
    A timed caller passes its own ``client``: making one takes ~20 ms here (its TLS context)."""
    deadline = time.monotonic() + timeout
    with ExitStack() as stack:
        if client is None:
            client = stack.enter_context(httpx.Client(timeout=1.0))
        while True:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{process.args!r} did not answer 200 on {url}")
            time.sleep(poll)


def spawn(argv: list[str], env: dict[str, str], workdir: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server with a free port appended to ``argv``; return it and its base URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter, scripts and quill command
        [*argv, str(port)],
        env={**os.environ, **env},
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


@contextmanager
def running(
    argv: list[str], env: dict[str, str], workdir: Path | None = None, ready_path: str = "/"
) -> Iterator[Server]:
    """A server for the length of a block, ready (200 on ``ready_path``) when the block starts."""
    process, base_url = spawn(argv, env, workdir)
    server = Server(process, base_url)
    try:
        wait_until_ok(base_url + ready_path, process)
        yield server
    finally:
        server.stop()


def start_quill(
    args: list[str], env: dict[str, str], workdir: Path, ready_path: str = "/health/readiness"
) -> AbstractContextManager[Server]:
    quill = str(Path(sys.executable).with_name("quill"))
    return running([quill, *args, "--port"], {**env, "LOG_LEVEL": "warning"}, workdir, ready_path)
