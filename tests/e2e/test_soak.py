"""Soak: the mixed scenario at a steady rate for ``QUILL_SOAK_SECONDS`` (600 in `tox -e soak`),
with the outbox, broker and consumers running. Zero errors, flat memory, stable
connection counts, and the outbox drained at the end.

Not part of the default run (it takes minutes): `tox -e soak`, or `pytest -m soak`.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from quill_tools.bench.load import mixed, seed
from tests.e2e.conftest import Running, wait_ready

pytestmark = [pytest.mark.soak, pytest.mark.e2e]

SECONDS = float(os.environ.get("QUILL_SOAK_SECONDS", "600"))
USERS = int(os.environ.get("QUILL_SOAK_USERS", "100"))
WARM_UP = min(60.0, SECONDS / 5)
REPORT = Path(os.environ.get("QUILL_SOAK_REPORT", "bench-results/soak.json"))


def _sample(running: Running, database_url: str, stop: threading.Event, samples: list[dict[str, Any]]) -> None:
    process = psutil.Process(running.process.pid)
    started = time.monotonic()
    while not stop.wait(5.0):
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name LIKE 'quill-%%' AND datname = current_database()"
            ).fetchone()
        samples.append(
            {
                "t": round(time.monotonic() - started, 1),
                "rss_mib": process.memory_info().rss / 2**20,
                "connections": row[0] if row else 0,
            }
        )


def test_soak_mixed_scenario(start_quill: Any, machine_env: dict[str, str]) -> None:
    running: Running = start_quill(
        "dev", env={**machine_env, "RATE_LIMIT_WRITES": "0", "RATE_LIMIT_LOGIN_IP": "0", "LOG_LEVEL": "warning"}
    )
    wait_ready(running)
    accounts = asyncio.run(seed(running.base_url, users=min(USERS, 50), articles_per_user=3))
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(running, machine_env["DATABASE_URL"], stop, samples))
    sampler.start()
    try:
        result = asyncio.run(mixed(running.base_url, accounts, users=USERS, seconds=SECONDS, think=1.0))
    finally:
        stop.set()
        sampler.join()

    deadline = time.monotonic() + 30
    while True:  # the outbox relay (every 5 s in quill dev) and the broker drain what is left
        with psycopg.connect(machine_env["DATABASE_URL"]) as conn:
            pending = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
            undelivered = conn.execute("SELECT count(*) FROM broker_deliveries WHERE state = 'pending'").fetchone()
            dead = conn.execute("SELECT count(*) FROM broker_deliveries WHERE dead_lettering").fetchone()
        if (pending and undelivered and pending[0] == 0 and undelivered[0] == 0) or time.monotonic() > deadline:
            break
        time.sleep(1)

    warm = [s for s in samples if s["t"] >= WARM_UP]
    growth = (warm[-1]["rss_mib"] - warm[0]["rss_mib"]) / warm[0]["rss_mib"] if len(warm) >= 2 else 0.0
    connections = [s["connections"] for s in warm] or [0]
    report = {
        "seconds": SECONDS,
        "virtual_users": USERS,
        **result.report(),
        "rss_mib_after_warm_up": warm[0]["rss_mib"] if warm else None,
        "rss_mib_at_end": warm[-1]["rss_mib"] if warm else None,
        "rss_growth": growth,
        "connections_min_max": [min(connections), max(connections)],
        "outbox_pending_at_end": pending[0] if pending else None,
        "deliveries_pending_at_end": undelivered[0] if undelivered else None,
        "dead_lettered": dead[0] if dead else None,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))

    assert result.errors == 0, result.error_samples
    assert growth < 0.10
    assert max(connections) - min(connections) <= 3
    assert report["outbox_pending_at_end"] == 0
    assert report["deliveries_pending_at_end"] == 0
    assert report["dead_lettered"] == 0
