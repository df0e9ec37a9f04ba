"""Events end to end through ``quill dev``: real broker, real HTTP, the same YAML as the cluster."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import QUILL, Running, wait_ready

pytestmark = pytest.mark.e2e


def _until(check: Any, timeout: float = 5.0) -> float:
    """Seconds until ``check()`` is true."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def _quill(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [QUILL, *args],
        cwd=cwd,
        env={**env, "LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_search_cache_import_dead_letter_and_replay(
    start_quill: Any, machine_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    running: Running = start_quill("dev", env=machine_env)
    wait_ready(running)
    api = httpx.Client(base_url=running.base_url, timeout=10)
    request.addfinalizer(api.close)
    token = api.post(
        "/api/users", json={"user": {"username": "writer", "email": "writer@example.com", "password": "password123"}}
    ).json()["user"]["token"]
    auth = {"Authorization": f"Token {token}"}

    # create -> findable with ?q= within a second (search function, via the broker)
    slug = api.post(
        "/api/articles", headers=auth, json={"article": {"title": "Zeppelins at dawn", "description": "d", "body": "b"}}
    ).json()["article"]["slug"]
    found_after = _until(lambda: api.get("/api/articles", params={"q": "zeppelins"}).json()["articlesCount"] == 1, 1.0)

    # bio change -> no cached article shows the old author
    assert api.get(f"/api/articles/{slug}").json()["article"]["author"]["bio"] is None  # cached now
    api.put("/api/user", headers=auth, json={"user": {"bio": "Airship pilot"}})
    assert api.get(f"/api/articles/{slug}").json()["article"]["author"]["bio"] == "Airship pilot"

    # an outside producer imports an article for an author who does not exist yet: parked
    data = {"author": "historian", "title": "The first flight", "description": "d", "body": "b"}
    sent = _quill(
        tmp_path, machine_env, "events", "send", "io.quill.article.import.requested.v1", "--data", json.dumps(data)
    )
    assert "HTTP 202" in sent
    _until(lambda: "The first flight" in _quill(tmp_path, machine_env, "events", "dead-letters"), 10)
    listing = _quill(tmp_path, machine_env, "events", "dead-letters")
    assert "error=422" in listing

    # once the author exists, a replay imports it, exactly once
    api.post(
        "/api/users", json={"user": {"username": "historian", "email": "h@example.com", "password": "password123"}}
    )
    assert "1 replayed" in _quill(tmp_path, machine_env, "events", "replay", "--all")
    _until(lambda: api.get("/api/articles", params={"author": "historian"}).json()["articlesCount"] == 1, 5)
    assert "no dead letters" in _quill(tmp_path, machine_env, "events", "dead-letters")
    assert "nothing to replay" not in _quill(tmp_path, machine_env, "events", "dead-letters", "--all")

    tail = _quill(tmp_path, machine_env, "events", "tail", "--once", "--all")
    assert "io.quill.article.created.v1" in tail
    assert "-> search: delivered" in tail
    assert "-> importer: dead-lettered" in tail
    print(f"article findable by ?q= after {found_after * 1000:.0f} ms")


def test_events_accepted_before_a_crash_are_delivered_after_the_restart(
    start_quill: Any, machine_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    import psycopg

    from tests.conftest import free_port

    port = free_port()
    first: Running = start_quill("dev", env=machine_env, port=port)
    wait_ready(first)
    api = httpx.Client(base_url=first.base_url, timeout=10)
    request.addfinalizer(api.close)
    api.post(
        "/api/users", json={"user": {"username": "writer", "email": "writer@example.com", "password": "password123"}}
    )
    first.process.kill()  # a crash: no clean shutdown
    first.process.wait()
    event = {
        "specversion": "1.0",
        "id": "accepted-before-the-crash",
        "source": "/test",
        "type": "io.quill.article.import.requested.v1",
        "datacontenttype": "application/json",
        "data": {"author": "writer", "title": "Survivor", "description": "d", "body": "b"},
    }
    with psycopg.connect(machine_env["DATABASE_URL"], autocommit=True) as conn:
        # what the ingress had stored (and acknowledged with 202) when the process died
        row = conn.execute(
            "INSERT INTO broker_events (broker, event) VALUES ('default', %s) RETURNING id", (json.dumps(event),)
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO broker_deliveries (event_pk, trigger, subscriber) VALUES (%s, 'importer', %s)",
            (row[0], f"{first.base_url}/_functions/importer/"),
        )

    second: Running = start_quill("dev", env=machine_env, port=port)
    wait_ready(second)

    _until(lambda: api.get("/api/articles", params={"author": "writer"}).json()["articlesCount"] == 1, 10)


def test_the_ingress_refuses_an_event_postgresql_cannot_store_with_a_400(
    start_quill: Any, machine_env: dict[str, str]
) -> None:
    running: Running = start_quill("dev", env=machine_env)
    wait_ready(running)
    event = {
        "specversion": "1.0",
        "id": "nul",
        "source": "/test",
        "type": "io.quill.test.v1",
        "data": {"text": "a\u0000b"},
    }
    headers = {"Content-Type": "application/cloudevents+json"}
    with httpx.Client(base_url=running.base_url, timeout=10) as client:
        refused = client.post("/_broker/quill/default", content=json.dumps(event), headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"errors": {"event": ["has data that cannot be stored"]}}
        event |= {"id": "fine", "data": {"text": "ab"}}
        assert client.post("/_broker/quill/default", content=json.dumps(event), headers=headers).status_code == 202
