"""Cold start of each function target, beside baselines measured in the same run.

- the floor, ceiling, clients and clients_gc_off baselines of ``quill_tools.bench.baselines``;
- each Quill target: ``quill serve <target>``, exactly as its Knative Service starts it,
  with the image's own ``quill`` command (``quill.cli``), not the one pip writes.

Wall time from exec to the first 200 on the readiness path and on a real route, the
median of ``runs`` starts (and the spread), and RSS after the first request. Ratios to
the floor are what to compare across machines; the absolute times are this machine's.

Every start reads bytecode compiled beforehand, as the image's do (its build runs
``compileall``, and pip compiles the libraries it installs): with
``PYTHONDONTWRITEBYTECODE`` set (tox, CI, this machine), nothing else would, and each
start would compile Quill's sources again, ~25 ms that no deployed start pays.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

import quill
from quill.routing import FUNCTIONS_DIR
from quill_tools.bench import baselines
from quill_tools.bench.harness import scratch_database, spawn, wait_until_ok

__all__ = ["IMAGE_ENTRY", "TARGETS", "compile_sources", "import_times", "run"]

# The image's ``quill`` (the Dockerfile writes it): serve and migrate alone. The console
# script pip writes is quill_tools.cli, which imports more before it hands serve over.
IMAGE_ENTRY = "import sys\n\nfrom quill.cli import main\n\nsys.exit(main())\n"

# target -> a real route to ask for after readiness
TARGETS = {
    "login": "/.well-known/jwks.json",
    "profile": "/api/profiles/nobody",
    "posts": "/api/articles",
    "cache": "/health/liveness",
    "search": "/health/liveness",
    "importer": "/health/liveness",
    "deadletter": "/health/liveness",
    "outbox": "/health/liveness",
}


def _start(client: httpx.Client, argv: list[str], env: dict[str, str], ready: str, real: str) -> dict[str, float]:
    """One start, timed with a ``client`` made before the clock starts (making one costs
    ~20 ms, which would otherwise be counted in every target's first route)."""
    started = time.perf_counter()
    process, base = spawn(argv, env)
    try:
        wait_until_ok(base + ready, process, poll=0.002, client=client)
        to_ready = time.perf_counter() - started
        status = client.get(base + real, timeout=5).status_code
        to_real = time.perf_counter() - started
        rss = psutil.Process(process.pid).memory_info().rss / 2**20
    finally:
        process.terminate()
        process.wait()
    if status >= 500:
        raise RuntimeError(f"{argv}: {real} answered {status}")
    return {"ready_ms": to_ready * 1000, "first_route_ms": to_real * 1000, "rss_mib": rss}


def compile_sources(*folders: Path) -> None:
    """Write the bytecode of every module under ``folders``, the step of the image's build
    (``python -m compileall``); pip has already done it for the libraries."""
    for folder in folders:
        if not compileall.compile_dir(folder, quiet=1):
            raise RuntimeError(f"{folder}: some sources do not compile")


def _summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key in ("ready_ms", "first_route_ms", "rss_mib"):
        values = [sample[key] for sample in samples]
        result[key] = statistics.median(values)
        result[f"{key}_spread"] = [min(values), max(values)]
    return result


def import_times(target: str, env: dict[str, str], top: int = 10) -> list[dict[str, Any]]:
    """The modules with the largest cumulative import time (``python -X importtime``)."""
    code = f"from quill.serving import create_app; create_app({target!r})"
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-X", "importtime", "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    rows: list[dict[str, Any]] = []
    for line in result.stderr.splitlines():
        fields = [part.strip() for part in line.partition(":")[2].split("|")]
        if len(fields) != 3 or not fields[0].isdigit():
            continue  # the header line
        own, cumulative, name = fields
        rows.append({"module": name, "cumulative_ms": int(cumulative) / 1000, "self_ms": int(own) / 1000})
    return sorted(rows, key=lambda row: row["cumulative_ms"], reverse=True)[:top]


def run(admin_url: str, redis_url: str, *, runs: int = 7, targets: list[str] | None = None) -> dict[str, Any]:
    chosen = targets or list(TARGETS)
    with scratch_database(admin_url) as database_url, tempfile.TemporaryDirectory() as scratch:
        from quill.migrate import migrate

        migrate(database_url)
        folder = Path(scratch)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "warning",
            "JWT_DEV_KEY_PATH": str(folder / "dev.pem"),
        }
        plans = {name: (argv, "/", "/") for name, argv in baselines.write(folder, baselines.COLD_START_NAMES).items()}
        (folder / "quill").write_text(IMAGE_ENTRY)
        command = [sys.executable, str(folder / "quill"), "serve"]
        compile_sources(Path(quill.__file__).parent, FUNCTIONS_DIR, folder)
        for target in chosen:
            plans[target] = ([*command, target, "--port"], "/health/readiness", TARGETS[target])
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in plans}
        with httpx.Client(timeout=1.0) as client:
            for _ in range(runs):  # interleaved, so machine noise spreads over every target alike
                for name, (argv, ready, real) in plans.items():
                    samples[name].append(_start(client, argv, env, ready, real))
        results = {name: _summarise(values) for name, values in samples.items()}
        floor = results["floor"]
        for result in results.values():
            result["ready_vs_floor"] = result["ready_ms"] / floor["ready_ms"]
            result["first_route_vs_floor"] = result["first_route_ms"] / floor["first_route_ms"]
        imports = import_times("posts", env)
    return {"runs": runs, "targets": results, "import_time_top10_posts": imports}
