"""The README's promise: ``quill dev`` serves the whole API on one port."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, stop, wait_ready

pytestmark = pytest.mark.e2e


def _walk_through(base_url: str) -> None:
    """The README's curl walk-through: register, log in, create, list."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        registered = client.post(
            "/api/users", json={"user": {"username": "e2e", "email": "e2e@example.com", "password": "password123"}}
        )
        assert registered.status_code == 201, registered.text
        login = client.post("/api/users/login", json={"user": {"email": "e2e@example.com", "password": "password123"}})
        token = login.json()["user"]["token"]
        headers = {"Authorization": f"Token {token}"}
        created = client.post(
            "/api/articles",
            headers=headers,
            json={"article": {"title": "From the outside", "description": "d", "body": "b", "tagList": ["e2e"]}},
        )
        assert created.status_code == 201, created.text
        listing = client.get("/api/articles", params={"tag": "e2e"}).json()
        assert listing["articlesCount"] == 1
        assert listing["articles"][0]["slug"] == "from-the-outside"
        assert client.get("/api/tags").json() == {"tags": ["e2e"]}
        assert client.get("/version").json()["function"] == "bundle"


def test_quill_dev_with_given_servers_serves_every_route(start_quill: Any, machine_env: dict[str, str]) -> None:
    running: Running = start_quill("dev", env=machine_env)
    wait_ready(running)

    _walk_through(running.base_url)

    assert stop(running) == 0
    assert "migrations applied" in running.output()
    assert "listening on http://127.0.0.1:" in running.output()


def test_quill_dev_on_a_bare_machine_starts_embedded_servers_and_keeps_data(start_quill: Any, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}  # no DATABASE_URL, no REDIS_URL

    first: Running = start_quill("dev", "--data", str(tmp_path / "data"), env=env)
    wait_ready(first, timeout=120)
    _walk_through(first.base_url)
    assert stop(first) == 0

    second: Running = start_quill("dev", "--data", str(tmp_path / "data"), env=env)
    wait_ready(second, timeout=120)
    assert httpx.get(second.base_url + "/api/articles").json()["articlesCount"] == 1
    assert "none (up to date)" in second.output()
    assert stop(second) == 0
    assert (tmp_path / "data" / "pgdata").is_dir()


def _processes_of(folder: Path) -> list[int]:
    """Processes that run in ``folder`` or name it: PostgreSQL's (they work in their data
    directory, the postmaster has it in ``-D``) and redis-server's (``--dir``, ``--unixsocket``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if cwd.startswith(str(folder)) or str(folder) in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_quill_dev_stops_its_embedded_servers_on_sigterm_and_sigint(
    start_quill: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    data = tmp_path / "data"
    running: Running = start_quill("dev", "--data", str(data), env={"HOME": str(tmp_path)})
    try:
        wait_ready(running, timeout=120)
        servers = [pid for pid in _processes_of(data) if pid != running.process.pid]
        assert len(servers) >= 2, "expected a postgres and a redis-server working in the data folder"

        running.process.send_signal(signum)
        code = running.process.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _processes_of(data) and time.monotonic() < deadline:
            time.sleep(0.1)

        assert _processes_of(data) == []
        assert code == 0
    finally:
        for pid in _processes_of(data):
            os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (_stat(int(entry.name)) or ("", 0, 0))[1] == pid
    ]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """A process's state, parent and niceness, from ``/proc/<pid>/stat``; None once it is gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[16])


def _worker_of(running: Running) -> int:
    from quill_tools.devworker import NICENESS

    deadline = time.monotonic() + 10  # it lowers its priority as it starts, after the server is ready
    while True:
        stats = {pid: _stat(pid) or ("Z", 0, 0) for pid in _children(running.process.pid)}
        workers = [pid for pid, (state, _, niceness) in stats.items() if niceness == NICENESS and state != "Z"]
        if workers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(workers) == 1, f"expected one worker at niceness {NICENESS}: {workers}"
    return workers[0]


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stat = _stat(pid)
        if stat is None or stat[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def _write_and_find(client: httpx.Client, username: str, title: str, word: str) -> None:
    """Register ``username``, create an article titled ``title``; return once ``?q=word``
    finds it (the ``search`` function indexed it, through the broker), at most 10 s later."""
    token = client.post(
        "/api/users",
        json={"user": {"username": username, "email": f"{username}@example.com", "password": "password123"}},
    ).json()["user"]["token"]
    created = client.post(
        "/api/articles",
        headers={"Authorization": f"Token {token}"},
        json={"article": {"title": title, "description": "d", "body": "b"}},
    )
    assert created.status_code == 201, created.text
    _until_found(client, word)


def _until_found(client: httpx.Client, word: str) -> None:
    deadline = time.monotonic() + 10
    while client.get("/api/articles", params={"q": word}).json()["articlesCount"] == 0:
        assert time.monotonic() < deadline, f"no article found by ?q={word}: the worker did not deliver"
        time.sleep(0.05)


def test_quill_dev_delivers_events_from_its_worker_process_at_a_lower_priority(
    start_quill: Any, machine_env: dict[str, str]
) -> None:
    """The requests keep the server's process; the deliveries (and the consumers they
    call) run in a niced worker, so a paused worker holds the events back, the server
    still answers, and nothing is lost: the worker delivers them when it resumes."""
    running: Running = start_quill("dev", env=machine_env)
    wait_ready(running)
    worker = _worker_of(running)
    with httpx.Client(base_url=running.base_url, timeout=10) as client:
        token = client.post(
            "/api/users", json={"user": {"username": "w", "email": "w@example.com", "password": "password123"}}
        ).json()["user"]["token"]
        os.kill(worker, signal.SIGSTOP)
        try:
            created = client.post(
                "/api/articles",
                headers={"Authorization": f"Token {token}"},
                json={"article": {"title": "Kites in winter", "description": "d", "body": "b"}},
            )
            assert created.status_code == 201, created.text
            time.sleep(1.0)
            assert client.get("/api/articles", params={"q": "kites"}).json()["articlesCount"] == 0
        finally:
            os.kill(worker, signal.SIGCONT)
        _until_found(client, "kites")

    assert stop(running) == 0
    assert _gone(worker, 1.0)


def test_quill_dev_starts_a_new_worker_when_its_worker_dies(start_quill: Any, machine_env: dict[str, str]) -> None:
    running: Running = start_quill("dev", env=machine_env)
    wait_ready(running)
    first = _worker_of(running)
    os.kill(first, signal.SIGKILL)
    assert _gone(first, 5.0)

    second = _worker_of(running)  # waits for the new one to lower its priority

    assert second != first
    with httpx.Client(base_url=running.base_url, timeout=10) as client:  # and it delivers
        _write_and_find(client, "r", "Second wind", "wind")
    assert stop(running) == 0
    assert "dev_worker_exited" in running.output()


def test_quill_dev_worker_stops_by_itself_when_the_server_is_killed(
    start_quill: Any, machine_env: dict[str, str]
) -> None:
    running: Running = start_quill("dev", env=machine_env)
    wait_ready(running)
    worker = _worker_of(running)
    running.process.kill()
    running.process.wait()
    try:
        assert _gone(worker, 10.0), "the worker outlived its server"
    finally:
        if not _gone(worker, 0):
            os.kill(worker, signal.SIGKILL)


def test_quill_serve_runs_one_function_with_only_its_routes(start_quill: Any, machine_env: dict[str, str]) -> None:
    running: Running = start_quill("serve", "profile", env=machine_env)
    seconds = wait_ready(running)

    assert httpx.get(running.base_url + "/version").json() == {"function": "profile", "version": "0.1.0"}
    assert httpx.get(running.base_url + "/api/articles").status_code == 404
    assert httpx.get(running.base_url + "/api/profiles/nobody").json() == {"errors": {"profile": ["not found"]}}
    assert seconds < 30
    assert stop(running) == 0


def test_quill_serve_unknown_function_fails_with_a_clear_message(start_quill: Any, machine_env: dict[str, str]) -> None:
    running: Running = start_quill("serve", "nope", env=machine_env)
    assert running.process.wait(timeout=30) != 0
    assert "no function 'nope'" in running.output()


def test_bad_configuration_fails_at_start_naming_the_variable(start_quill: Any, machine_env: dict[str, str]) -> None:
    running: Running = start_quill("serve", "posts", env={**machine_env, "DB_POOL_MAX": "many"})
    assert running.process.wait(timeout=30) != 0
    assert "DB_POOL_MAX" in running.output()
