"""``tox -e browser``: a real RealWorld frontend in Debian's Chromium against ``quill dev``.

One ``quill dev`` (its own database, Redis prefix and CORS origin) and one static server on 127.0.0.1 serve a
module; the journey (``journey.mjs``, playwright-core) runs once and each of its steps is one test here. The
frontend comes from the environment (``harness.py``); without one, only the self-check runs and the journey
tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser import harness
from tests.conftest import Servers, free_port
from tests.e2e.conftest import QUILL, Running, stop, wait_ready

pytestmark = pytest.mark.browser

# What the journey reports, in order; a step it does not report fails here.
STEPS = (
    "home: global feed and tags",
    "sign up",
    "settings: bio and image",
    "log out, log in",
    "new article, shown rendered",
    "edit it and remove a tag",
    "two comments, delete one",
    "second user: favorite, follow, feed, unfavorite",
    "tag filter",
    "pagination over more than one page",
    "profile tabs",
    "delete the article",
    "error: taken email",
    "error: taken username",
    "error: wrong password",
    "error: short password",
)
SELFCHECK_STEPS = (
    "page loads, outside requests blocked",
    "CORS: GET /api/tags",
    "CORS: preflighted request, error readable",
)
# A stable port for Quill, so that the frontend built for its URL stays cached between runs.
API_PORT = int(os.environ.get("QUILL_BROWSER_API_PORT", "18431"))
OUT = Path(os.environ.get("QUILL_BROWSER_OUT", Path(__file__).resolve().parents[2] / ".browser-results"))
SELFCHECK_PAGE = (
    b"<!doctype html><title>self-check</title><p>self-check</p>"
    b'<img src="http://quill-outside.invalid/pixel.png" alt="">'
    b'<script>new WebSocket("ws://quill-outside.invalid/socket")</script>'
)


@dataclass(frozen=True)
class Stack:
    api: str
    frontend: str


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As uvicorn binds: a previous run's connections in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _start(stack: ExitStack, servers: Servers, site: Path | None, work: Path, port: int) -> Stack:
    """The static server first (its origin is Quill's one allowed CORS origin), then ``quill dev``."""
    pages = {"/__quill_browser/selfcheck.html": ("text/html", SELFCHECK_PAGE)}
    frontend = stack.enter_context(harness.static_server(site or work, pages=pages))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "REDIS_PREFIX": f"quill-browser:{secrets.token_hex(4)}:",
        "JWT_DEV_KEY_PATH": str(work / "dev-key.pem"),
        "CORS_ALLOW_ORIGINS": frontend,
    }
    log = work / "quill-dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [QUILL, "dev", "--port", str(port)], env=env, cwd=work, stdout=sink, stderr=subprocess.STDOUT
        )
    running = Running(process, f"http://127.0.0.1:{port}", log)
    stack.callback(stop, running)
    wait_ready(running)
    harness.log(f"quill dev on {running.base_url} (log {log}); frontend on {frontend}")
    return Stack(api=running.base_url, frontend=frontend)


def _node(script: str, env: dict[str, str], results: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert Path(harness.CHROMIUM).exists(), f"{harness.CHROMIUM} is missing: apt-get install chromium"
    full = {
        **os.environ,
        **env,
        "PLAYWRIGHT_CORE": str(harness.playwright_core()),
        "CHROMIUM": harness.CHROMIUM,
        "SCREENSHOTS": str(OUT / "screenshots"),
        "RESULTS": str(results),
    }
    shutil.rmtree(OUT / "screenshots", ignore_errors=True)
    harness.log(f"node {script}  (screenshots of failed steps go to {OUT / 'screenshots'})")
    done = subprocess.run([node, str(harness.HERE / script)], env=full, timeout=600, check=False)
    sys.stdout.flush()
    if not results.is_file():
        pytest.fail(f"{script} exited {done.returncode} without results")
    report: dict[str, Any] = json.loads(results.read_text())
    return report


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["steps"]}


@pytest.fixture(scope="module")
def selfcheck(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("browser-selfcheck")
    with ExitStack() as stack:
        running = _start(stack, servers, None, work, free_port())
        env = {"PAGE_URL": running.frontend + "/__quill_browser/selfcheck.html", "API_URL": running.api}
        yield _by_name(_node("selfcheck.mjs", env, work / "results.json"))


@pytest.fixture(scope="module")
def journey(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    spec = harness.FrontendSpec.from_env()
    if spec is None:
        pytest.skip("no frontend to drive: set QUILL_BROWSER_FRONTEND (tests/browser/README.md)")
    work = tmp_path_factory.mktemp("browser-journey")
    port = API_PORT if _port_free(API_PORT) else free_port()
    site = harness.built_frontend(spec, f"http://127.0.0.1:{port}")
    with ExitStack() as stack:
        running = _start(stack, servers, site, work, port)
        env = {
            "FRONTEND_URL": running.frontend + "/",
            "API_URL": running.api,
            "AVATAR_URL": running.frontend + harness.AVATAR_PATH,
            "RUN": secrets.token_hex(3),
        }
        yield _by_name(_node("journey.mjs", env, work / "results.json"))


def _assert_step(report: dict[str, dict[str, Any]], name: str) -> None:
    step = report.get(name)
    assert step is not None, f"the journey did not report the step {name!r}"
    detail = "\n".join(step["problems"])
    if step["screenshot"]:
        detail += f"\nscreenshot: {step['screenshot']}"
    assert step["ok"], f"{name} ({step['seconds']:.2f} s) at {step['url']}:\n{detail}"


@pytest.mark.parametrize("name", SELFCHECK_STEPS)
def test_selfcheck(selfcheck: dict[str, dict[str, Any]], name: str) -> None:
    _assert_step(selfcheck, name)


@pytest.mark.parametrize("name", STEPS)
def test_journey(journey: dict[str, dict[str, Any]], name: str) -> None:
    _assert_step(journey, name)


def test_journey_reports_exactly_these_steps(journey: dict[str, dict[str, Any]]) -> None:
    assert tuple(journey) == STEPS
