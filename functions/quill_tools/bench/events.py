"""Events through ``quill dev``'s local broker and the outbox.

- broker: import events POSTed to the ingress at a fixed concurrency; throughput is
  events delivered per second, latency is accept (row stored) to delivered (2xx) per
  event, read from the broker's own tables.
- outbox: articles created through the API once the broker is idle, first one at a
  time (50 ms apart: each event alone), then back to back; latency is the outbox row's
  commit to the ``search`` function's 2xx, so it includes the after-commit publish, the
  broker hop and the consumer's transaction. Back to back, it also includes the wait of
  ``quill dev``'s worker for a lull in the API's requests (``devworker.ApiActivity``).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from quill_tools.bench.harness import scratch_database, start_quill, summary

__all__ = ["run"]

_BROKER_LATENCY = """
SELECT extract(epoch FROM d.updated_at - e.received_at) AS seconds, e.received_at, d.updated_at
FROM broker_deliveries d JOIN broker_events e ON e.id = d.event_pk
WHERE d.trigger = %s AND d.state = 'delivered' AND NOT d.dead_lettering
"""
_OUTBOX_LATENCY = """
SELECT extract(epoch FROM d.updated_at - o.created_at) AS seconds
FROM outbox o
JOIN broker_events e ON e.event ->> 'id' = o.event_id
JOIN broker_deliveries d ON d.event_pk = e.id AND d.trigger = 'search' AND d.state = 'delivered'
WHERE o.type = 'io.quill.article.created.v1' AND o.source = '/quill/posts'
  AND o.id > %s AND o.id <= %s
"""
# Between two creates measured alone: far longer than the worker's wait for a lull.
_APART_SECONDS = 0.05


async def _send_imports(base_url: str, count: int, concurrency: int) -> float:
    headers_base = {"ce-specversion": "1.0", "ce-type": "io.quill.article.import.requested.v1", "ce-source": "/bench"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            body = {"author": "bench", "title": f"Imported {number}", "description": "d", "body": "b"}
            headers = {**headers_base, "ce-id": str(uuid.uuid4()), "content-type": "application/json"}
            response = await client.post(f"{base_url}/_broker/quill/default", headers=headers, content=json.dumps(body))
            response.raise_for_status()

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return loop.time() - started


def _wait_settled(database_url: str, expected: int, trigger: str, within: float = 300) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE state <> 'pending') FROM broker_deliveries WHERE trigger = %s",
                (trigger,),
            ).fetchone()
        if row and row[0] >= expected:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{trigger}: deliveries did not settle in {within}s")


def run(
    admin_url: str, redis_url: str, *, events: int = 1000, concurrency: int = 16, articles: int = 200
) -> dict[str, Any]:
    with scratch_database(admin_url) as database_url, tempfile.TemporaryDirectory() as workdir:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
            "RATE_LIMIT_WRITES": "0",
            "RATE_LIMIT_LOGIN_IP": "0",
        }
        with start_quill(["dev", "--data", str(Path(workdir) / "data")], env, Path(workdir)) as server:
            client = httpx.Client(base_url=server.base_url, timeout=30)
            token = client.post(
                "/api/users",
                json={"user": {"username": "bench", "email": "bench@example.com", "password": "password123"}},
            ).json()["user"]["token"]

            send_seconds = asyncio.run(_send_imports(server.base_url, events, concurrency))
            _wait_settled(database_url, events, "importer")
            _wait_settled(database_url, events, "search")  # the imported articles' own events

            def create(title: str) -> None:
                client.post(
                    "/api/articles",
                    headers={"Authorization": f"Token {token}"},
                    json={"article": {"title": title, "description": "d", "body": "b"}},
                )

            alone_from = _last_outbox_id(database_url)
            for number in range(articles):
                create(f"Bench {number}")
                time.sleep(_APART_SECONDS)
            back_to_back_from = _last_outbox_id(database_url)
            for number in range(articles):
                create(f"Bench back to back {number}")
            back_to_back_to = _last_outbox_id(database_url)
            _wait_settled(database_url, events + 2 * articles, "search")
            client.close()

        with psycopg.connect(database_url) as conn:
            broker_rows = conn.execute(_BROKER_LATENCY, ("importer",)).fetchall()
            alone_rows = conn.execute(_OUTBOX_LATENCY, (alone_from, back_to_back_from)).fetchall()
            back_to_back_rows = conn.execute(_OUTBOX_LATENCY, (back_to_back_from, back_to_back_to)).fetchall()
            imported = conn.execute("SELECT count(*) FROM articles WHERE title LIKE 'Imported %'").fetchone()

    first = min(row[1] for row in broker_rows)
    last = max(row[2] for row in broker_rows)
    window = (last - first).total_seconds()
    return {
        "broker": {
            "events": events,
            "concurrency": concurrency,
            "imported": imported[0] if imported else 0,
            "accepted_per_second": events / send_seconds,
            "delivered_per_second": len(broker_rows) / window if window else float("nan"),
            "accept_to_delivered_ms": _milliseconds(broker_rows),
        },
        "outbox": {
            "articles": articles,
            "commit_to_consumer_ms": _milliseconds(alone_rows),
            "back_to_back_commit_to_consumer_ms": _milliseconds(back_to_back_rows),
        },
    }


def _milliseconds(rows: list[tuple[Any, ...]]) -> dict[str, float]:
    return {k: v * 1000 if k != "n" else v for k, v in summary([float(row[0]) for row in rows]).items()}


def _last_outbox_id(database_url: str) -> int:
    """Where a phase's outbox rows start or end: by id, which needs no clock (the rows'
    timestamps are the server process's, not PostgreSQL's)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
    return int(row[0]) if row else 0
