"""Abuse a real server over TCP: header floods are refused, slow clients starve nobody."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, wait_ready

pytestmark = pytest.mark.e2e


def _exchange(port: int, payload: bytes, wait: float = 5.0) -> bytes:
    """Send a raw request; return the response's head and as much body as arrives within ``wait``."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.settimeout(wait)
        connection.sendall(payload)
        answer = connection.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
        )
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body


@pytest.fixture
def posts(start_quill: Any, machine_env: dict[str, str]) -> Running:
    running: Running = start_quill("serve", "posts", env=machine_env)
    wait_ready(running)
    return running


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n",
        b"".join(b"X-H%d: a\r\n" % number for number in range(5000)),
        b"".join(b"X-H%d: %s\r\n" % (number, b"a" * 8000) for number in range(20)),
    ],
    ids=["one-2MB-header", "5000-headers", "160KB-of-headers"],
)
def test_header_floods_are_refused_with_431(posts: Running, headers: bytes) -> None:
    port = int(posts.base_url.rsplit(":", 1)[1])
    answer = _exchange(port, b"GET /api/tags HTTP/1.1\r\nHost: quill\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")
    assert b'"headers"' in answer


def test_a_slow_client_does_not_starve_the_others(posts: Running) -> None:
    port = int(posts.base_url.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    try:
        for connection in slow:
            connection.sendall(b"POST /api/articles HTTP/1.1\r\nHost: quill\r\nContent-Length: 100000\r\n\r\n{")
        started = time.monotonic()
        for _ in range(20):
            assert httpx.get(posts.base_url + "/api/tags", timeout=5).status_code == 200
        assert time.monotonic() - started < 5
    finally:
        for connection in slow:
            connection.close()


def test_a_declared_oversized_body_is_refused_before_it_is_sent(posts: Running) -> None:
    port = int(posts.base_url.rsplit(":", 1)[1])
    answer = _exchange(
        port,
        b"POST /api/articles HTTP/1.1\r\nHost: quill\r\nAuthorization: Token x.y.z\r\n"
        b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{",
    )
    assert answer.startswith(b"HTTP/1.1 401")  # 401 first (precedence), and no waiting for 50 MB
