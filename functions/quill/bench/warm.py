"""Warm load: requests/s and latency per route at several concurrencies, beside the floor.

The client runs in several processes (one asyncio loop each) so it is not the
bottleneck; its own ceiling is measured against a bare Starlette app in the same run.
The floor is a trivial functions-framework function; every Quill figure is also given
as a ratio to it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from quill.bench import baselines
from quill.bench.harness import percentile, running, scratch_database, start_quill
from quill.bench.load import seed

__all__ = ["ROUTES", "run"]

ROUTES: tuple[str, ...] = (
    "article",
    "profile_anonymous",
    "profile_signed_in",
    "list",
    "tag",
    "feed",
    "create",
    "comment",
    "login",
)


def _request(route: str, account: dict[str, str], sequence: int) -> tuple[str, str, dict[str, str], Any]:
    auth = {"Authorization": f"Token {account['token']}"}
    if route == "floor":
        return "GET", "/", {}, None
    if route == "article":
        return "GET", f"/api/articles/{account['slug']}", {}, None
    if route == "profile_anonymous":
        return "GET", f"/api/profiles/{account['username']}", {}, None
    if route == "profile_signed_in":
        return "GET", f"/api/profiles/{account['username']}", auth, None
    if route == "list":
        return "GET", "/api/articles?limit=20", {}, None
    if route == "tag":
        return "GET", "/api/articles?tag=topic1&limit=20", {}, None
    if route == "feed":
        return "GET", "/api/articles/feed", auth, None
    if route == "create":
        body = {"article": {"title": f"Load {os.getpid()} {sequence}", "description": "d", "body": "b"}}
        return "POST", "/api/articles", auth, body
    if route == "comment":
        return "POST", f"/api/articles/{account['slug']}/comments", auth, {"comment": {"body": "hi"}}
    body = {"user": {"email": f"{account['username']}@example.com", "password": "password123"}}
    return "POST", "/api/users/login", {}, body


def _client_process(
    base: str, route: str, connections: int, seconds: float, accounts: list[dict[str, str]], out: Any
) -> None:
    async def main() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

            async def loop(number: int) -> None:
                nonlocal errors
                sequence = 0
                while time.perf_counter() < deadline:
                    sequence += 1
                    method, path, headers, body = _request(route, accounts[number % len(accounts)], sequence)
                    started = time.perf_counter()
                    try:
                        response = await client.request(method, path, headers=headers, json=body)
                        if response.status_code >= 400:
                            errors += 1
                    except httpx.HTTPError:
                        errors += 1
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(loop(number) for number in range(connections)))
        return len(latencies), errors, latencies

    out.put(asyncio.run(main()))


def _measure(base: str, route: str, concurrency: int, seconds: float, accounts: list[dict[str, str]]) -> dict[str, Any]:
    processes = max(1, min(concurrency, os.cpu_count() or 1))
    per_process = [concurrency // processes + (1 if n < concurrency % processes else 0) for n in range(processes)]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_client_process, args=(base, route, count, seconds, accounts, queue))
        for count in per_process
    ]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [latency * 1000 for _, _, values in results for latency in values]
    return {
        "requests_per_second": sum(count for count, _, _ in results) / seconds,
        "errors": sum(errors for _, errors, _ in results),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
    }


def run(
    admin_url: str,
    redis_url: str,
    *,
    concurrencies: tuple[int, ...] = (1, 32, 128),
    seconds: float = 5.0,
    routes: tuple[str, ...] = ROUTES,
) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds_per_cell": seconds, "routes": {}}
    with scratch_database(admin_url) as database_url, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"bench-warm-{os.getpid()}:",
            "RATE_LIMIT_WRITES": "0",
            "RATE_LIMIT_LOGIN_IP": "0",
            "RATE_LIMIT_LOGIN_ACCOUNT": "0",
            "JWT_DEV_KEY_PATH": str(folder / "dev.pem"),
        }
        from quill.migrate import migrate

        migrate(database_url)
        with start_quill(["serve", "bundle"], env, folder) as quill:
            accounts = asyncio.run(seed(quill.base_url, users=20, articles_per_user=2))
            results["baselines"] = reference = {
                name: _measure_all(argv, concurrencies, seconds, accounts)
                for name, argv in baselines.write(folder).items()
            }
            for route in routes:
                results["routes"][route] = {}
                for concurrency in concurrencies:
                    cell = _measure(quill.base_url, route, concurrency, seconds, accounts)
                    floor = reference["floor"][str(concurrency)]["requests_per_second"]
                    cell["vs_floor"] = cell["requests_per_second"] / floor if floor else float("nan")
                    results["routes"][route][str(concurrency)] = cell
    return results


def _measure_all(
    argv: list[str], concurrencies: tuple[int, ...], seconds: float, accounts: list[dict[str, str]]
) -> dict[str, Any]:
    with running(argv, {}) as server:
        return {str(c): _measure(server.base_url, "floor", c, seconds, accounts) for c in concurrencies}
