"""Two replicas of a function, as Knative runs them: a write on one shows on the other,
and a logout on one ends the token on the other.

Each keeps views and anonymous list pages in memory; the write's invalidation reaches
the other through Redis. ``NEAR_CACHE_SECONDS`` is an hour here, so expiry cannot be
what makes these pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, wait_ready

pytestmark = pytest.mark.e2e


def soon(read: Callable[[], Any], expected: Any, seconds: float = 2.0) -> float:
    """Seconds until ``read()`` returns ``expected``."""
    started = time.monotonic()
    while (seen := read()) != expected:
        assert time.monotonic() - started < seconds, f"still {seen!r}, expected {expected!r}"
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_write_on_one_replica_shows_on_the_other(start_quill: Any, machine_env: dict[str, str]) -> None:
    env = {**machine_env, "NEAR_CACHE_SECONDS": "3600"}
    writer: Running = start_quill("serve", "bundle", env=env)
    reader: Running = start_quill("serve", "bundle", env=env)
    wait_ready(writer)
    wait_ready(reader)
    with httpx.Client(base_url=writer.base_url) as one, httpx.Client(base_url=reader.base_url) as other:
        user = {"user": {"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}}
        token = one.post("/api/users", json=user).json()["user"]["token"]
        auth = {"Authorization": f"Token {token}"}
        article = {"article": {"title": "First", "description": "d", "body": "b"}}
        slug = one.post("/api/articles", json=article, headers=auth).json()["article"]["slug"]

        def title() -> str:
            return str(other.get(f"/api/articles/{slug}").json()["article"]["title"])

        def listed() -> list[str]:
            return [found["title"] for found in other.get("/api/articles").json()["articles"]]

        def bio() -> str:
            return str(other.get("/api/profiles/alice").json()["profile"]["bio"] or "")

        for _ in range(3):  # held in the reader's memory now
            assert (title(), listed(), bio()) == ("First", ["First"], "")

        lags = []
        for round_ in range(5):
            changed = one.put(f"/api/articles/{slug}", json={"article": {"body": f"body {round_}"}}, headers=auth)
            assert changed.status_code == 200
            lags.append(soon(lambda: other.get(f"/api/articles/{slug}").json()["article"]["body"], f"body {round_}"))
            one.post(
                "/api/articles",
                json={"article": {"title": f"New {round_}", "description": "d", "body": "b"}},
                headers=auth,
            )
            lags.append(soon(lambda: listed()[0], f"New {round_}"))
            one.put("/api/user", json={"user": {"bio": f"bio {round_}"}}, headers=auth)
            lags.append(soon(bio, f"bio {round_}"))

        def favorited() -> bool:  # signed in: the flags come from the reader's copy of alice's marks
            return bool(other.get(f"/api/articles/{slug}", headers=auth).json()["article"]["favorited"])

        for _ in range(2):
            assert favorited() is False
        assert one.post(f"/api/articles/{slug}/favorite", headers=auth).status_code == 200
        lags.append(soon(favorited, True))
        assert one.delete(f"/api/articles/{slug}/favorite", headers=auth).status_code == 200
        lags.append(soon(favorited, False))

        bob = {"user": {"username": "bob", "email": "bob@example.com", "password": "correct horse battery"}}
        bob_auth = {"Authorization": f"Token {one.post('/api/users', json=bob).json()['user']['token']}"}

        def following() -> bool:  # bob's marks, as the reader holds them
            return bool(other.get("/api/profiles/alice", headers=bob_auth).json()["profile"]["following"])

        for _ in range(2):
            assert following() is False
        assert one.post("/api/profiles/alice/follow", headers=bob_auth).status_code == 200
        lags.append(soon(following, True))
        assert one.delete("/api/profiles/alice/follow", headers=bob_auth).status_code == 200
        lags.append(soon(following, False))
        assert max(lags) < 2.0

        # A signed-in read on the reader makes it remember the session as live;
        # logging out on the writer must end that token on the reader too.
        assert other.get("/api/user", headers=auth).status_code == 200
        assert other.get("/api/user", headers=auth).status_code == 200
        assert one.post("/api/users/logout", headers=auth).status_code in (200, 204)
        soon(lambda: other.get("/api/user", headers=auth).status_code, 401)
    # Each replica logged every request as one JSON line with the request's fields.
    finished = [line for line in reader.log_lines() if line["event"] == "request_finished"]
    assert {"/api/articles/{slug}", "/api/articles", "/api/profiles/{username}"} <= {line["route"] for line in finished}
    assert all(line["level"] == "info" and len(line["request_id"]) == 16 for line in finished)
