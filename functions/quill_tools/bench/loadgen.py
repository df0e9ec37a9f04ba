"""Load generators: ``wrk`` (C, epoll) when it is installed, else a multi-process Python client.

Both take the same plan: a list of requests cycled through by every connection, an
optional think time between one connection's requests, and a duration. ``wrk`` is
driven by a generated Lua script (the auth header and bodies come from the plan) and
reports through its ``done`` hook as one JSON line. Its latency is measured from the
request's first byte, so think time never counts as latency.

The Python client is kept so the suites run where ``wrk`` is not installed (CI smoke
runs); on 2 cores it saturates near 1,000 requests/s, which the report says.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from quill_tools.bench.harness import percentile

__all__ = ["Plan", "Request", "client_name", "measure", "steal_pct"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    # A JSON body; "{n}" in it becomes a text no other request of any run has (titles, say):
    # a title a previous cell already used would cost a create a second try for its slug.
    body: str | None = None


@dataclass(frozen=True)
class Plan:
    requests: tuple[Request, ...]
    # Each request is picked at random with these weights; none: cycled in order.
    weights: tuple[int, ...] | None = None
    # A connection waits a random 0.5-1.5 x this between requests (a virtual user).
    think_ms: int = 0
    # Each wrk thread (Python: each connection) starts the cycle at a random request, new
    # each run, instead of the first: the threads and the runs of a plan whose requests may
    # each be made once (a favorite, on a backend that refuses a second) ask for others.
    random_start: bool = False


def client_name() -> str:
    """``wrk`` if it is on PATH, unless ``QUILL_BENCH_CLIENT=python`` asks for the fallback."""
    if os.environ.get("QUILL_BENCH_CLIENT", "") == "python" or not shutil.which("wrk"):
        return "python"
    return "wrk"


def measure(base_url: str, plan: Plan, *, connections: int, seconds: float, warmup: float = 0.0) -> dict[str, Any]:
    """Requests/s, p50/p95/p99 (ms), errors (non-2xx/3xx or socket errors) and the CPU
    stolen from this machine meanwhile (``steal_pct``), after ``warmup`` seconds of the
    same load that are not recorded."""
    if warmup > 0:
        measure(base_url, plan, connections=connections, seconds=warmup)
    before = psutil.cpu_times()
    if client_name() == "wrk":
        cell = _with_wrk(base_url, plan, connections, seconds)
    else:
        cell = _with_python(base_url, plan, connections, seconds)
    cell["steal_pct"] = steal_pct(before, psutil.cpu_times())
    return cell


def steal_pct(before: Any, after: Any) -> float:
    """The share (%) of the machine's CPU time between two ``psutil.cpu_times()`` that the
    hypervisor gave to other guests (Linux's ``steal``; 0 where it is not counted). A cell
    measured under steal ran on less machine than its neighbours: on these shared hosts
    it has reached a quarter of a second's CPU, as much as the gaps the targets judge."""
    # guest and guest_nice are already counted in user and nice.
    fields = [name for name in after._fields if name not in ("guest", "guest_nice")]
    spent = sum(getattr(after, name) - getattr(before, name) for name in fields)
    stolen = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    return float(100 * stolen / spent) if spent > 0 else 0.0


def _lua_string(text: str) -> str:
    if not text.isascii():
        raise ValueError(f"the wrk script takes ASCII only: {text!r}")
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


def _lua_request(request: Request) -> str:
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in request.headers)
    if request.body is not None:
        headers = ", ".join(filter(None, [headers, '["Content-Type"] = "application/json"']))
    body = _lua_string(request.body) if request.body is not None else "nil"
    return f"{{{_lua_string(request.method)}, {_lua_string(request.path)}, {{{headers}}}, {body}}}"


# LuaJIT allows a function at most 65,536 constants (each distinct path, header and body
# is one), so a long plan is added to its table by functions of this many requests each
# (";" first: Lua would read "(" after "end)()" as a call).
_LUA_CHUNK = 2_000


def _lua_requests(requests: tuple[Request, ...]) -> str:
    """Lua statements that fill ``requests`` with the plan's, in order."""
    return "\n".join(
        ";(function()\n  local add = table.insert\n"
        + "\n".join(f"  add(requests, {_lua_request(request)})" for request in requests[start : start + _LUA_CHUNK])
        + "\nend)()"
        for start in range(0, len(requests), _LUA_CHUNK)
    )


_SCRIPT = """
local requests = {}
%(requests)s
local run = "%(run)s"
local weights = %(weights)s
local think = %(think)d
local random_start = %(random_start)s
local counter = 0
local next_thread = 0
local total = 0
for _, w in ipairs(weights) do total = total + w end

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  math.randomseed(1000 + thread_number)
  if random_start then
    math.randomseed(tonumber(run, 16) + thread_number)
    counter = math.random(#requests) - 1
  end
end

local function pick()
  if total == 0 then
    counter = counter + 1
    return requests[(counter %% #requests) + 1]
  end
  local roll = math.random() * total
  for i, w in ipairs(weights) do
    roll = roll - w
    if roll < 0 then return requests[i] end
  end
  return requests[#requests]
end

function request()
  local r = pick()
  local body = r[4]
  if body then
    counter = counter + 1
    body = string.gsub(body, "{n}", run .. "-" .. thread_number .. "-" .. counter)
  end
  return wrk.format(r[1], r[2], r[3], body)
end

if think > 0 then
  function delay()
    return math.floor(think * (0.5 + math.random()))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'QUILL {"requests": %%d, "duration_us": %%d, "status_errors": %%d, "socket_errors": %%d,' ..
    ' "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _with_wrk(base_url: str, plan: Plan, connections: int, seconds: float) -> dict[str, Any]:
    script = _SCRIPT % {
        "requests": _lua_requests(plan.requests),
        "weights": "{" + ", ".join(str(w) for w in plan.weights or ()) + "}",
        "think": plan.think_ms,
        "random_start": "true" if plan.random_start else "false",
        "run": secrets.token_hex(4),
    }
    threads = max(1, min(connections, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.lua"
        path.write_text(script, encoding="ascii")
        completed = subprocess.run(  # noqa: S603 - wrk from PATH, our own script
            [
                shutil.which("wrk") or "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(path),
                base_url,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("QUILL ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    raw = json.loads(line.removeprefix("QUILL "))
    return {
        "requests_per_second": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "errors": raw["status_errors"] + raw["socket_errors"],
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def _client_process(base: str, plan: Plan, connections: int, seconds: float, seed: int, run: str, out: Any) -> None:
    async def main() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

            async def loop(number: int) -> None:
                nonlocal errors
                rng = random.Random(seed * 1000 + number)  # noqa: S311 - load shape, not security
                sequence = 0
                if plan.random_start:
                    sequence = random.Random(f"{run}-{seed}-{number}").randrange(len(plan.requests))  # noqa: S311
                if plan.think_ms:
                    await asyncio.sleep(rng.random() * plan.think_ms / 1000)
                while time.perf_counter() < deadline:
                    sequence += 1
                    if plan.weights:
                        request = rng.choices(plan.requests, plan.weights)[0]
                    else:
                        request = plan.requests[(number + sequence) % len(plan.requests)]
                    body = request.body.replace("{n}", f"{run}-{seed}-{number}-{sequence}") if request.body else None
                    headers = dict(request.headers)
                    if body is not None:
                        headers["Content-Type"] = "application/json"
                    started = time.perf_counter()
                    try:
                        response = await client.request(request.method, request.path, headers=headers, content=body)
                        errors += response.status_code >= 400
                    except httpx.HTTPError:
                        errors += 1
                    latencies.append(time.perf_counter() - started)
                    if plan.think_ms:
                        await asyncio.sleep(plan.think_ms * (0.5 + rng.random()) / 1000)

            await asyncio.gather(*(loop(number) for number in range(connections)))
        return len(latencies), errors, latencies

    out.put(asyncio.run(main()))


def _with_python(base_url: str, plan: Plan, connections: int, seconds: float) -> dict[str, Any]:
    processes = max(1, min(connections, os.cpu_count() or 1))
    shares = [connections // processes + (1 if n < connections % processes else 0) for n in range(processes)]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    run = secrets.token_hex(4)
    workers = [
        context.Process(target=_client_process, args=(base_url, plan, share, seconds, number, run, queue))
        for number, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [latency * 1000 for _, _, values in results for latency in values]
    return {
        "requests_per_second": sum(count for count, _, _ in results) / seconds,
        "requests": len(latencies),
        "errors": sum(errors for _, errors, _ in results),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies, default=float("nan")),
    }
