"""What a real server answers at its edge, over TCP: the client address Quill alone decides,
response headers, and the JSON error format where uvicorn or functions-framework would
answer in plain text (findings F3, F7 and F9)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, wait_ready
from tests.e2e.test_abuse_over_tcp import _exchange

pytestmark = pytest.mark.e2e


def _port(running: Running) -> int:
    return int(running.base_url.rsplit(":", 1)[1])


def _login_statuses(running: Running, forwarded: list[str]) -> list[int]:
    body = {"user": {"email": "nobody@example.com", "password": "wrong-password"}}
    return [
        httpx.post(running.base_url + "/api/users/login", json=body, headers={"X-Forwarded-For": address}).status_code
        for address in forwarded
    ]


@pytest.mark.parametrize("hops", ["0", "1"])
def test_x_forwarded_for_counts_only_as_far_as_trusted_proxy_hops(
    start_quill: Any, machine_env: dict[str, str], hops: str
) -> None:
    """F3: with no trusted hop a rotating X-Forwarded-For is one client (the peer)."""
    env = {**machine_env, "TRUSTED_PROXY_HOPS": hops, "RATE_LIMIT_LOGIN_IP": "5/60", "RATE_LIMIT_LOGIN_ACCOUNT": "0"}
    login: Running = start_quill("serve", "login", env=env)
    wait_ready(login)

    rotating = _login_statuses(login, [f"198.51.100.{n}" for n in range(8)])
    # One proxy hop, then the pod's own proxies (Knative's queue-proxy appends 127.0.0.1).
    behind_proxies = _login_statuses(login, ["203.0.113.9, 127.0.0.1, 127.0.0.1"] * 6)

    if hops == "0":
        assert rotating == [401] * 5 + [429] * 3
    else:
        assert rotating == [401] * 8
        assert behind_proxies == [401] * 5 + [429]


def test_responses_carry_nosniff_no_store_on_tokens_and_no_server_banner(
    start_quill: Any, machine_env: dict[str, str]
) -> None:
    """F7."""
    bundle: Running = start_quill("serve", "bundle", env=machine_env)
    wait_ready(bundle)
    user = {"user": {"username": "edge", "email": "edge@example.com", "password": "correct horse battery"}}
    registered = httpx.post(bundle.base_url + "/api/users", json=user)
    token = registered.json()["user"]["token"]
    answers = {
        "register": registered,
        "login": httpx.post(bundle.base_url + "/api/users/login", json=user),
        "current user": httpx.get(bundle.base_url + "/api/user", headers={"Authorization": f"Token {token}"}),
        "update user": httpx.put(
            bundle.base_url + "/api/user", json={"user": {"bio": "b"}}, headers={"Authorization": f"Token {token}"}
        ),
        "refresh": httpx.post(
            bundle.base_url + "/api/users/refresh",
            json={"user": {"refreshToken": registered.headers["x-refresh-token"]}},
        ),
    }
    others = {
        "tags": httpx.get(bundle.base_url + "/api/tags"),
        "not found": httpx.get(bundle.base_url + "/api/articles/nope"),
        "liveness": httpx.get(bundle.base_url + "/health/liveness"),
    }
    for name, answer in {**answers, **others}.items():
        assert answer.status_code < 500, name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert "server" not in answer.headers, name
    for name, answer in answers.items():
        assert answer.headers["cache-control"] == "no-store", name


@pytest.fixture
def bundle(start_quill: Any, machine_env: dict[str, str]) -> Running:
    running: Running = start_quill("serve", "bundle", env=machine_env)
    wait_ready(running)
    return running


def _json_error(answer: bytes) -> tuple[str, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/json; charset=utf-8", lines[0]
    return lines[0], headers, json.loads(body)


def test_a_request_line_too_long_to_parse_is_a_json_400(bundle: Running) -> None:
    """F9: uvicorn answered text/plain."""
    status, headers, body = _json_error(
        _exchange(_port(bundle), b"GET /api/articles?tag=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: q\r\n\r\n")
    )
    assert status.startswith("HTTP/1.1 400")
    assert headers["x-content-type-options"] == "nosniff"
    assert "request" in body["errors"]


def test_a_method_the_framework_does_not_route_is_a_json_405_with_a_truthful_allow(bundle: Running) -> None:
    """F9: TRACE got text/plain with an Allow naming PATCH, which is 405 itself."""
    status, headers, body = _json_error(_exchange(_port(bundle), b"TRACE /api/articles HTTP/1.1\r\nHost: q\r\n\r\n"))
    assert status.startswith("HTTP/1.1 405")
    assert set(headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert "method" in body["errors"]
    for method in headers["allow"].split(", "):
        assert httpx.request(method, bundle.base_url + "/api/articles").status_code != 405, method
    patch = httpx.patch(bundle.base_url + "/api/articles")
    assert patch.status_code == 405
    assert "PATCH" not in patch.headers["allow"]


def test_the_paths_the_framework_keeps_for_itself_answer_json(bundle: Running) -> None:
    for path in ("/robots.txt", "/favicon.ico"):
        answer = httpx.get(bundle.base_url + path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
        assert answer.json() == {"errors": {"route": ["not found"]}}
