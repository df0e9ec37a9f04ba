"""A ``Plan`` with ``random_start``: each run's threads ask from a new point of the cycle."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from quill_tools.bench.loadgen import Plan, Request, measure

CYCLE = 100_000


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[int]]]:
    """A server that answers 200 and records each path's number."""
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(int(self.path.strip("/") or -1))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("client", ["wrk", "python"])
def test_a_random_start_asks_from_new_points_and_a_plain_plan_from_the_first(
    recorder: tuple[str, list[int]], client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if client == "wrk" and not shutil.which("wrk"):
        pytest.skip("wrk is not installed (apt-get install wrk): the Python client case still runs")
    monkeypatch.setenv("QUILL_BENCH_CLIENT", client)
    url, seen = recorder
    requests = tuple(Request("GET", f"/{number}") for number in range(CYCLE))

    measure(url, Plan(requests), connections=2, seconds=1)
    assert seen
    assert max(seen) < CYCLE // 10  # a plain plan starts at the top: a second covers its first few thousand
    seen.clear()

    measure(url, Plan(requests, random_start=True), connections=2, seconds=1)
    first = set(seen)
    seen.clear()
    measure(url, Plan(requests, random_start=True), connections=2, seconds=1)
    assert max(first | set(seen)) >= CYCLE // 10  # four random starts all in the top tenth: 1 in 10,000
    assert first != set(seen)  # a new run asks from new points
