"""What a function imports before its first request: cold start is mostly imports.

Each check runs in a fresh interpreter, so nothing the test session imported counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_WATCHED = (
    "redis",
    "yaml",
    "argon2",
    "prometheus_client",
    "jwt",
    "cryptography",
    "cryptography.hazmat.primitives.serialization",
    "quill_tools",
    "quill_tools.events",
    "quill_tools.bench",
)
_PROBE = """
import json, sys
{setup}
print(json.dumps(sorted(name for name in {watched!r} if name in sys.modules)))
"""


def _imported(setup: str, env: dict[str, str] | None = None) -> set[str]:
    code = _PROBE.format(setup=setup, watched=_WATCHED)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=None if env is None else {**os.environ, **env},
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("function", ["posts", "profile", "login", "search", "outbox"])
def test_a_single_function_starts_without_redis_yaml_argon2_prometheus_or_jwt(function: str) -> None:
    """Redis is imported on the first call that uses it, yaml only by the bundle's
    routing table, argon2 on the first password hashed, prometheus_client on the first
    scrape, PyJWT and cryptography on the first token or key."""
    assert _imported(f"from quill.serving import create_app; create_app({function!r})") == set()


def test_the_jwks_needs_cryptography_but_not_pyjwt(tmp_path: Path) -> None:
    """The JWKS is login's first request behind the gateway: it loads the key, not every
    algorithm PyJWT knows, nor cryptography's PEM parsers (a key in Ed25519's fixed form).
    The first token issued then brings PyJWT."""
    env = {"JWT_DEV_KEY_PATH": str(tmp_path / "dev.pem")}
    made = _imported("from quill.auth import tokens; assert tokens.jwks()['keys']", env)  # makes the dev key
    assert made == {"cryptography", "cryptography.hazmat.primitives.serialization"}
    served = _imported("from quill.auth import tokens; assert tokens.jwks()['keys']", env)
    assert served == {"cryptography"}
    issued = _imported(
        "from datetime import datetime, timedelta, timezone\n"
        "from quill.auth import tokens\n"
        "token = tokens.issue_access_token(1, 's', datetime.now(timezone.utc) + timedelta(hours=1))\n"
        "assert tokens.decode_access_token(token).user_id == 1",
        env,
    )
    assert issued == {"cryptography", "cryptography.hazmat.primitives.serialization", "jwt"}  # PyJWT's own


def test_quill_serve_does_not_build_the_other_commands() -> None:
    """The image's command has serve and migrate alone; the full one (quill_tools.cli) hands
    them to it before building the parsers of events, bench and deploy."""
    runtime = _imported("from quill.cli import build_parser; build_parser().parse_args(['serve', 'posts'])")
    assert runtime == set()
    tools = _imported(
        "import quill.cli; quill.cli.main = lambda argv: None\n"
        "from quill_tools.cli import main; main(['serve', 'posts'])"
    )
    assert tools == {"quill_tools"}
    full = _imported("from quill_tools.cli import build_parser; build_parser().parse_args(['serve', 'posts'])")
    assert {"quill_tools.events", "quill_tools.bench"} <= full


def test_quill_serve_configures_uvicorn_without_websockets() -> None:
    """No function speaks WebSocket; uvicorn's default would import the websockets
    package on every cold start. The server is configured, not run: uvicorn.run is
    replaced by loading the very Config it would build."""
    setup = """
import uvicorn
from quill import cli
def load_only(app, **options):
    uvicorn.Config(app, **options).load()
uvicorn.run = load_only
cli.serve_app(lambda scope, receive, send: None, "posts", "127.0.0.1", 0)
"""
    report = "print(json.dumps([name for name in ('websockets', 'wsproto') if name in sys.modules]))"
    code = f"import json, sys\n{setup}\n{report}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1]) == []
