"""``pip install .`` (not editable) gives a working ``quill dev``: the wheel carries what the
code reads beside it (function entries, knative/routing.yaml, eventing/), so nothing is
looked up in a checkout. Built from a copy of the source, installed into a fresh venv with
pip's own configuration, started with no DATABASE_URL or REDIS_URL (embedded servers)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import venv
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Running, wait_ready

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# Not part of a source tree: the checkout's venvs, builds and caches, and the tests.
_LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv*", ".tox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".quill", "tests", "wheels"
)


def _install(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=_LEFT_OUT)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[embedded]"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0 and "No matching distribution" in done.stderr:
        pytest.skip(f"pip cannot reach the dependencies here:\n{done.stderr[-2000:]}")
    assert done.returncode == 0, done.stderr[-4000:]
    return env_dir / "bin" / "quill"


def test_a_plain_pip_install_runs_quill_dev(tmp_path: Path) -> None:
    quill = _install(tmp_path)
    port = free_port()
    log = tmp_path / "quill-dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(quill), "dev", "--port", str(port)],
            # No DATABASE_URL or REDIS_URL. The sbin folders: the embedded PostgreSQL, run as
            # root, adds a user of its own with useradd on a machine that has none yet.
            env={"PATH": str(quill.parent) + ":/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)},
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Running(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(running, timeout=60)
        user = {"username": "ann", "email": "ann@example.com", "password": "correct horse battery staple"}
        answer = httpx.post(running.base_url + "/api/users", json={"user": user}, timeout=10)
        assert answer.status_code == 201, answer.text
        assert answer.json()["user"]["username"] == "ann"
        assert "dev_0001_local_broker" in running.output()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    assert code == 0, running.output()
