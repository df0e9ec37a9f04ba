"""App time: the CPU one request costs inside the ASGI app, called in a loop.

Under wrk on two shared cores, requests/s moves with the machine (the same route has
swung by half between back-to-back runs); the time a request spends in the app does
not, so this is the figure to judge a change to the request path by. Each case runs in
a fresh interpreter on real PostgreSQL and Redis, with the floor's app beside Quill's,
in interleaved passes; the report keeps every pass's median and the best of them.

Run as a module, it is that fresh interpreter: ``python -m quill_tools.bench.apptime``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CASES", "run"]

# name -> (function target, path, signed in); {slug} and {username} are filled from the
# seed: two accounts with an article each, following each other. The signed-in
# cases are issue 16's reads: their figure beside the anonymous one's is the steady form
# of ``warm``'s signed-in / anonymous ratio.
CASES: dict[str, tuple[str, str, bool]] = {
    "floor": ("floor", "/", False),
    "liveness": ("posts", "/health/liveness", False),
    "article": ("posts", "/api/articles/{slug}", False),
    "list": ("posts", "/api/articles?limit=20", False),
    "profile_anonymous": ("profile", "/api/profiles/{username}", False),
    "list_signed_in": ("posts", "/api/articles?limit=20", True),
    "feed": ("posts", "/api/articles/feed?limit=20", True),
    "user": ("login", "/api/user", True),
}


def run(admin_url: str, redis_url: str, *, passes: int = 3, rounds: int = 7, calls: int = 5000) -> dict[str, Any]:
    from quill_tools.bench import baselines
    from quill_tools.bench.harness import migrated_scratch, start_quill
    from quill_tools.bench.load import seed

    results: dict[str, Any] = {"passes": passes, "rounds": rounds, "calls_per_round": calls, "cases": {}}
    with migrated_scratch(admin_url, redis_url, "apptime") as scratch:
        baselines.write(scratch.folder)
        with start_quill(["serve", "bundle"], scratch.env, scratch.folder) as bundle:
            account = asyncio.run(seed(bundle.base_url, users=2, articles_per_user=1, follows=1))[0]
        env = {**os.environ, **scratch.env, "LOG_LEVEL": "warning"}
        samples: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(passes):
            for name, (target, path, signed_in) in CASES.items():
                argv = [sys.executable, "-m", "quill_tools.bench.apptime", target, path.format(**account)]
                argv += [str(scratch.folder), str(rounds), str(calls), account["token"] if signed_in else ""]
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)  # noqa: S603
                samples[name].append(json.loads(done.stdout.strip().splitlines()[-1])["median_us"])
    for name, medians in samples.items():
        results["cases"][name] = {"best_us": min(medians), "pass_medians_us": medians}
    floor = results["cases"]["floor"]["best_us"]
    for case in results["cases"].values():
        case["x_floor"] = case["best_us"] / floor
    return results


async def _loop(app: Any, path: str, rounds: int, calls: int, token: str) -> list[float]:
    route, _, query = path.partition("?")
    headers = [(b"host", b"quill_tools.bench")]
    if token:
        headers.append((b"authorization", f"Token {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("quill_tools.bench", 80),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(calls // 2):  # fills the caches, warms the pools
        await app(dict(scope), receive, send)
    if set(statuses) != {200}:
        raise SystemExit(f"{path} answered {sorted(set(statuses))}, not only 200")
    per_call: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            await app(dict(scope), receive, send)
        per_call.append((time.perf_counter() - started) / calls * 1e6)
    return per_call


def _main(target: str, path: str, folder: str, rounds: int, calls: int, token: str = "") -> None:
    if target == "floor":
        from functions_framework.aio import create_asgi_app

        app = create_asgi_app(target="floor", source=str(Path(folder) / "floor.py"))  # type: ignore[no-untyped-call]
    else:
        from quill.serving import aclose_all, create_app

        app = create_app(target)

    async def measure() -> list[float]:
        try:
            return await _loop(app, path, rounds, calls, token)
        finally:
            if target != "floor":
                await aclose_all()

    per_call = asyncio.run(measure())
    print(json.dumps({"median_us": statistics.median(per_call), "rounds_us": per_call}), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), *sys.argv[6:7])
