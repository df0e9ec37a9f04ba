"""Schemathesis fuzzes every documented operation against a running ``quill dev``.

Any 5xx, any response the document does not describe, and any schema-violating
request that is accepted fails the test. CI runs a bounded budget; set
``QUILL_FUZZ_EXAMPLES`` for a larger one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, wait_ready

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)


# No links reach these operations, so the stateful phase has nothing to chain.
STATELESS = ("--phases", "examples,coverage,fuzzing")


def _schemathesis(base_url: str, token: str, *selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            str(ROOT / "docs" / "openapi.yml"),
            "--url",
            base_url,
            "--header",
            f"Authorization: Token {token}",
            *selection,
            "--checks",
            CHECKS,
            "--max-examples",
            os.environ.get("QUILL_FUZZ_EXAMPLES", "12"),
            "--workers",
            "1",
            "--suppress-health-check",
            "all",
            "--seed",
            os.environ.get("QUILL_FUZZ_SEED", "20261121"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_fuzzing_the_openapi_document_finds_no_failure(start_quill: Any, machine_env: dict[str, str]) -> None:
    env = {**machine_env, "RATE_LIMIT_LOGIN_ACCOUNT": "0", "RATE_LIMIT_LOGIN_IP": "0", "RATE_LIMIT_WRITES": "0"}
    env["LOG_LEVEL"] = "warning"
    running: Running = start_quill("dev", env=env)
    wait_ready(running)

    def token(name: str) -> str:
        registered = httpx.post(
            running.base_url + "/api/users",
            json={"user": {"username": name, "email": f"{name}@example.com", "password": "password123"}},
        )
        return str(registered.json()["user"]["token"])

    runs = [
        # every RealWorld operation and extension under /api, but logging out
        _schemathesis(
            running.base_url + "/api",
            token("fuzzer"),
            "--exclude-operation-id",
            "Logout",
            "--exclude-tag",
            "Operations",
            "--exclude-operation-id",
            "GetJwks",
        ),
        # logout on its own session: after the first call the token is revoked (401, documented)
        _schemathesis(running.base_url + "/api", token("leaver"), "--include-operation-id", "Logout", *STATELESS),
        # the operations served at the root: health, metrics, version, JWKS
        _schemathesis(
            running.base_url,
            token("operator"),
            "--include-tag",
            "Operations",
            "--include-operation-id",
            "GetJwks",
            *STATELESS,
        ),
    ]

    for result in runs:
        summary = result.stdout[-3000:]
        print(summary)
        assert result.returncode == 0, summary
        assert " passed" in result.stdout
        assert "Server error" not in result.stdout
    # LOG_LEVEL=warning: a 500 would still log its request_failed line at error level.
    assert not [line for line in running.log_lines() if line["level"] in {"error", "critical"}]
